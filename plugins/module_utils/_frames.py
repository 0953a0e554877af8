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
from typing import Callable, Iterator, Tuple

STDIN = 0
STDOUT = 1
STDERR = 2

_HEADER = struct.Struct(">BxxxL")


class TruncatedStream(Exception):
    """The stream ended inside a frame: the data that arrived is incomplete."""


def demultiplex(read: Callable[[int], bytes], chunk_size: int = 1 << 20) -> Iterator[Tuple[int, bytes]]:
    """Yield ``(stream_id, data)`` pairs from a framed stream until it ends.

    ``read(n)`` returns at most ``n`` bytes and ``b""`` at the end of the stream. The stream
    is read in blocks of ``chunk_size`` bytes (few system calls, however small the frames)
    and payloads are yielded in pieces of at most ``chunk_size`` bytes, so memory stays
    bounded whatever the frame size. Raises TruncatedStream when the stream stops inside a
    frame.
    """
    block, position = b"", 0
    while True:
        while len(block) - position < _HEADER.size:
            data = read(chunk_size)
            if not data:
                if len(block) == position:
                    return
                raise TruncatedStream(
                    "stream ended %d bytes short of a %d-byte frame header"
                    % (_HEADER.size - (len(block) - position), _HEADER.size)
                )
            block, position = block[position:] + data, 0
        stream_id, remaining = _HEADER.unpack_from(block, position)
        position += _HEADER.size
        while remaining:
            if position == len(block):
                block, position = read(chunk_size), 0
                if not block:
                    raise TruncatedStream("stream ended %d bytes before the end of a frame" % remaining)
            step = min(remaining, len(block) - position)
            yield stream_id, block[position:position + step]
            position += step
            remaining -= step
