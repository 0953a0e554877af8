# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Demultiplexing of an attached container's output stream (pure logic).

Without a TTY, the Docker API frames stdout and stderr: an 8-byte header (stream id,
three zero bytes, big-endian payload length) followed by the payload.
"""

from __future__ import annotations

import struct

STDIN = 0
STDOUT = 1
STDERR = 2

_HEADER = struct.Struct(">BxxxL")


class TruncatedStream(Exception):
    """The stream ended inside a frame: the data that arrived is incomplete."""


def _read_exactly(read, size, eof_ok):
    """Read ``size`` bytes with ``read``; None at a clean end of stream when ``eof_ok``."""
    parts = []
    missing = size
    while missing:
        data = read(missing)
        if not data:
            if eof_ok and missing == size:
                return None
            raise TruncatedStream("stream ended %d bytes short of a %d-byte frame header" % (missing, size))
        parts.append(data)
        missing -= len(data)
    return b"".join(parts)


def demultiplex(read, chunk_size=1 << 20):
    """Yield ``(stream_id, data)`` pairs from a framed stream until it ends.

    ``read(n)`` returns at most ``n`` bytes and ``b""`` at the end of the stream. Payloads
    are yielded in pieces of at most ``chunk_size`` bytes, so memory stays bounded whatever
    the frame size. Raises TruncatedStream when the stream stops inside a frame.
    """
    while True:
        header = _read_exactly(read, _HEADER.size, eof_ok=True)
        if header is None:
            return
        stream_id, remaining = _HEADER.unpack(header)
        while remaining:
            data = read(min(remaining, chunk_size))
            if not data:
                raise TruncatedStream("stream ended %d bytes before the end of a frame" % remaining)
            remaining -= len(data)
            yield stream_id, data
