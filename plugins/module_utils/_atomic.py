# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Files that appear complete or not at all (no Ansible, no Docker SDK).

A file is written under a temporary name in its final directory, flushed and fsynced, then
linked to its final name (which never replaces an existing file) and the directory fsynced.
A crash at any moment leaves the previous state or the complete file; temporary files of
dead writers are removed by later runs.
"""

from __future__ import annotations

import errno
import os
import socket
import time

TEMP_PREFIX = ".persist-partial-"


def _writer_token():
    return "%s.%d" % (socket.gethostname().replace("/", "_"), os.getpid())


def fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicFile:
    """A binary file that gets ``final_path`` only on ``commit()``.

    Use as a context manager: leaving the block without ``commit()`` removes the temporary
    file. ``commit()`` fails with FileExistsError rather than replace an existing file.
    """

    def __init__(self, final_path, mode=0o600):
        self.final_path = final_path
        directory, name = os.path.split(final_path)
        self.directory = directory or "."
        self.temp_path = os.path.join(self.directory, "%s%s.%s" % (TEMP_PREFIX, name, _writer_token()))
        fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        self.file = os.fdopen(fd, "wb", buffering=1 << 20)
        self.committed = False

    def write(self, data):
        self.file.write(data)

    def tell(self):
        return self.file.tell()

    def commit(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        try:
            os.link(self.temp_path, self.final_path)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                raise FileExistsError(errno.EEXIST, "refusing to replace an existing file", self.final_path)
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # File systems without hard links: rename, after checking nothing is in the way.
            if os.path.lexists(self.final_path):
                raise FileExistsError(errno.EEXIST, "refusing to replace an existing file", self.final_path)
            os.rename(self.temp_path, self.final_path)
        else:
            os.unlink(self.temp_path)
        fsync_directory(self.directory)
        self.committed = True

    def abort(self):
        if not self.file.closed:
            try:
                self.file.close()
            except OSError:
                pass  # flushing what is buffered fails again on a full disk; the file goes anyway
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if not self.committed:
            self.abort()


def stale_temporary_files(directory, older_than_seconds, now=None):
    """Temporary files in ``directory`` left by writers that are gone.

    A writer on this host whose process no longer runs is gone at once; one on another host
    (a shared backup directory) only once its file is older than ``older_than_seconds``.
    """
    now = time.time() if now is None else now
    host = socket.gethostname().replace("/", "_")
    stale = []
    for entry in os.scandir(directory):
        if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
            continue
        writer, _dot, pid = entry.name.rpartition(".")
        gone = False
        if pid.isdigit() and writer.endswith("." + host):
            gone = not os.path.exists("/proc/%s" % pid)
        if gone or now - entry.stat(follow_symlinks=False).st_mtime > older_than_seconds:
            stale.append(entry.path)
    return sorted(stale)
