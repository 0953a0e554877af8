# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The co-located fast path: a helper's bulk data through a FIFO instead of the API stream.

Every byte that crosses the Docker API costs the engine and its shim about 5 CPU-seconds per
GiB. When this module runs on the engine's own host, a helper can hand its tar stream over a
FIFO instead. That is allowed only when it is proved: the module makes a fresh private (0700)
directory with a random token in it, and a helper that bind-mounts that directory must read
the token back. Remote and rootless engines, and a module running in a container with the
engine's socket, fail the proof and keep the API stream.

The directory is bound only into this run's helpers, holds FIFOs (never data at rest), and
is removed when the run ends; a directory of a killed run is removed by the next run.
"""

from __future__ import annotations

import binascii
import errno
import fcntl
import os
import select
import shutil
import tempfile
import time

FAST_MOUNT = "/persist-fast"
DIRECTORY_PREFIX = "persist-fast-"
TOKEN_FILE = "token"
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
_POLL_MS = 100


def _grow_pipe(fd):
    """A larger pipe buffer means fewer wake-ups (best effort: the system may cap it)."""
    try:
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


def _blocking(fd):
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)


class FastPath:
    """A private directory of this process that helpers can bind-mount at FAST_MOUNT."""

    def __init__(self, owner):
        self.directory = tempfile.mkdtemp(prefix="%s%s-" % (DIRECTORY_PREFIX, owner))
        self.token = binascii.hexlify(os.urandom(16)).decode("ascii")
        descriptor = os.open(os.path.join(self.directory, TOKEN_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as token:
            token.write(self.token)
        self._count = 0

    def proof_command(self):
        """The command of the helper that proves the directory is the engine's too."""
        return ["cat", FAST_MOUNT + "/" + TOKEN_FILE]

    def proved_by(self, output):
        return output.strip() == self.token.encode("ascii")

    def fifo(self):
        """(path here, path in the helper) of a new FIFO."""
        self._count += 1
        name = "stream-%d" % self._count
        os.mkfifo(os.path.join(self.directory, name), 0o600)
        return os.path.join(self.directory, name), FAST_MOUNT + "/" + name

    def close(self):
        shutil.rmtree(self.directory, ignore_errors=True)


def output_to(command, container_fifo):
    """``command`` with its stdout sent into the FIFO (the shell opens it, then execs)."""
    return ["sh", "-c", 'exec "$@" >"$0"', container_fifo] + list(command)


def input_from(command, container_fifo):
    """``command`` with its stdin taken from the FIFO."""
    return ["sh", "-c", 'exec "$@" <"$0"', container_fifo] + list(command)


def read_fifo(path, alive, chunk=1 << 20):
    """Yield what the helper writes into the FIFO at ``path`` until it closes it. Waits for the
    helper to open it, and stops waiting when ``alive()`` says the helper is gone (then
    whoever reads its exit status reports why)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _grow_pipe(descriptor)
        poller = select.poll()
        poller.register(descriptor, select.POLLIN | select.POLLHUP)
        # Until a writer opened the FIFO, a read would say end of file: wait for one.
        while not poller.poll(_POLL_MS):
            if not alive():
                return
        _blocking(descriptor)
        while True:
            data = os.read(descriptor, chunk)
            if not data:
                return
            yield data
    finally:
        os.close(descriptor)


def open_for_writing(path, alive):
    """A blocking file descriptor writing into the FIFO at ``path`` once the helper opened it
    for reading, or None when ``alive()`` says the helper ended first."""
    while True:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if not alive():
                return None
            time.sleep(0.005)
            continue
        _blocking(descriptor)
        _grow_pipe(descriptor)
        return descriptor


def write_all(descriptor, data):
    """Write all of ``data``; BrokenPipeError when the helper stopped reading."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def reap_directories(owner_is_gone):
    """Remove fast-path directories of runs that are gone (killed before their cleanup);
    ``owner_is_gone(owner)`` decides from the owner part of the name."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(DIRECTORY_PREFIX):
            continue
        owner = name[len(DIRECTORY_PREFIX):].rsplit("-", 1)[0].replace("_", "/")
        if owner_is_gone(owner):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
