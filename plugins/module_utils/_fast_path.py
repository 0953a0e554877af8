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
engine's socket, fail the proof and keep the API stream. The proof costs no container of its
own when a short helper (a listing) runs before the first bulk one: that helper carries it
(FastPath.carrying_proof).

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
import struct
import tempfile
import termios
import time

FAST_MOUNT = "/persist-fast"
DIRECTORY_PREFIX = "persist-fast-"
TOKEN_FILE = "token"
# Hex digits of the token.
TOKEN_LENGTH = 32
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
        self.token = binascii.hexlify(os.urandom(TOKEN_LENGTH // 2)).decode("ascii")
        descriptor = os.open(os.path.join(self.directory, TOKEN_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as token:
            token.write(self.token)
        self._count = 0

    @staticmethod
    def carrying_proof(command):
        """``command`` in a helper that bind-mounts the directory at FAST_MOUNT: the helper
        first prints the token it reads there, padded or cut to TOKEN_LENGTH characters (all
        blanks when it reads none), then runs ``command``. Any short helper can carry the
        proof this way, so that proving costs no container of its own."""
        return ["sh", "-c", _PRINT_TOKEN, FAST_MOUNT + "/" + TOKEN_FILE] + list(command)

    def proved_by(self, printed):
        """Whether ``printed``, the first TOKEN_LENGTH bytes of a helper's output under
        carrying_proof, is this directory's token."""
        return printed == self.token.encode("ascii")

    def fifo(self):
        """(path here, path in the helper) of a new FIFO."""
        self._count += 1
        name = "stream-%d" % self._count
        os.mkfifo(os.path.join(self.directory, name), 0o600)
        return os.path.join(self.directory, name), FAST_MOUNT + "/" + name

    def close(self):
        shutil.rmtree(self.directory, ignore_errors=True)


_PRINT_TOKEN = 'token=$(cat "$0" 2>/dev/null) || token=; printf "%%-%d.%ds" "$token"; exec "$@"' % (TOKEN_LENGTH, TOKEN_LENGTH)


# The helper's shell opens its end of the FIFO while it holds the FIFO open for reading and
# writing on descriptor 3, then closes that: its open never waits for the module's end. The
# module opens its end before the helper starts (open_reader, open_writer); should the module
# die first, the helper reads an early end of file, or its writes fail, and it ends. A FIFO
# that nobody holds open loses what is in it: the module closes its writing end only once the
# helper read everything (wait_until_read).
_OPEN_WITHOUT_WAITING = 'exec 3<>"$0" && exec "$@" %s"$0" 3<&-'


def output_to(command, container_fifo):
    """``command`` with its stdout sent into the FIFO (the shell opens it, then execs)."""
    return ["sh", "-c", _OPEN_WITHOUT_WAITING % ">", container_fifo] + list(command)


def input_from(command, container_fifo):
    """``command`` with its stdin taken from the FIFO."""
    return ["sh", "-c", _OPEN_WITHOUT_WAITING % "<", container_fifo] + list(command)


def relaying(command, output_fifo, input_fifo):
    """``command`` with its stdout sent into one FIFO and its stdin taken from another, both
    opened without waiting as above: the module hands what it reads from the first, checked,
    into the second."""
    return ["sh", "-c", 'exec 3<>"$0" 4<>"$1" && input=$1 && shift && exec "$@" >"$0" <"$input" 3<&- 4<&-',
            output_fifo, input_fifo] + list(command)


def open_reader(path):
    """Open the FIFO at ``path`` for reading, before the helper that writes it starts: its
    open never waits then, and should this process die, the helper's writes fail at once."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    _grow_pipe(descriptor)
    return descriptor


def read_fifo(descriptor, alive, chunk=1 << 20):
    """Yield what the helper writes into the FIFO open at ``descriptor`` (see open_reader)
    until it closes it; close the descriptor. Waits for the helper to open its end, and stops
    waiting when ``alive()`` says the helper is gone (then whoever reads its exit status
    reports why)."""
    try:
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


def open_writer(path):
    """Open the FIFO at ``path`` for writing, before the helper that reads it starts. It is
    opened for reading and writing (Linux allows it on a FIFO), so that neither open waits;
    the helper sees the end of its input when this descriptor is closed, by this process or
    by its death."""
    descriptor = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    _grow_pipe(descriptor)
    return descriptor


def write_all(descriptor, data, alive):
    """Write all of ``data`` into the FIFO of open_writer; BrokenPipeError when the helper is
    gone (nothing reads what stays in the pipe then)."""
    view = memoryview(data)
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    while view:
        try:
            view = view[os.write(descriptor, view):]
        except BlockingIOError:
            while not poller.poll(_POLL_MS):
                if not alive():
                    raise BrokenPipeError(errno.EPIPE, "the helper stopped reading")


def wait_until_read(descriptor, alive):
    """Wait until the helper has read everything written into the FIFO of open_writer, or
    ``alive()`` says it is gone. Closing the writing end earlier, before a slow helper opened
    its own, would leave nobody holding the FIFO open: the kernel would drop what is in it,
    and the helper would read an empty input."""
    while _unread(descriptor) and alive():
        time.sleep(0.005)


def _unread(descriptor):
    return struct.unpack("i", fcntl.ioctl(descriptor, termios.FIONREAD, b"\0\0\0\0"))[0]


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
