# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""How an archive is cut into S3 parts, and the ETag S3 must then report (pure logic).

S3 gives an object uploaded in one request the MD5 of its bytes as its ETag, and an object
uploaded in N parts the MD5 of the concatenated binary MD5s of its parts, followed by
``-N``. Both are computed by the server from the bytes it received, so an ETag equal to the
one predicted from the local file proves that every byte arrived (as long as the store
computes ETags this way: AWS S3 without SSE-KMS or SSE-C, MinIO, Ceph, moto).
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO, List, Optional, Sequence, Tuple, Union

from ansible_collections.persist.docker.plugins.module_utils._offsite_target import MIB, S3_MAX_PARTS

READ_CHUNK = 1 << 20


def part_size_for(size: int, threshold_mib: int, part_size_mib: int) -> int:
    """The part size in bytes for an archive of ``size`` bytes; 0 means one request (no
    multipart). Parts grow in whole MiB when the configured size would need more than
    S3_MAX_PARTS parts."""
    if size <= threshold_mib * MIB:
        return 0
    part = part_size_mib * MIB
    if -(-size // part) > S3_MAX_PARTS:
        part = -(-size // (S3_MAX_PARTS * MIB)) * MIB
    return part


def part_ranges(size: int, part_size: int) -> List[Tuple[int, int, int]]:
    """``[(number, offset, length)]`` of the parts (numbers from 1); one part when
    ``part_size`` is 0. An empty archive is one empty part."""
    if not part_size:
        return [(1, 0, size)]
    ranges: List[Tuple[int, int, int]] = []
    offset = 0
    while offset < size or not ranges:
        length = min(part_size, size - offset)
        ranges.append((len(ranges) + 1, offset, length))
        offset += length
    return ranges


def predicted_etag(part_md5s: Sequence[bytes], multipart: bool) -> str:
    """The ETag (without quotes) S3 reports for an object with these part MD5 digests
    (bytes); ``multipart`` false: one request, whose ETag is the MD5 itself."""
    if not multipart:
        return part_md5s[0].hex()
    return "%s-%d" % (hashlib.md5(b"".join(part_md5s)).hexdigest(), len(part_md5s))


def plain_etag(etag: Optional[str]) -> str:
    """An ETag as S3 returns it (quoted), without the quotes."""
    return (etag or "").strip().strip('"')


class FileHashes:
    """Reads a local archive once and records the sha256 of the whole and the MD5 of each
    part: what an upload must match before it counts."""

    def __init__(self, size: int, part_size: int) -> None:
        self.size = size
        self.part_size = part_size
        self.ranges = part_ranges(size, part_size)
        self.part_md5s: List[bytes] = []
        self._sha256 = hashlib.sha256()

    def add_part(self, fileobj: BinaryIO, length: int) -> bytes:
        """Hash the next ``length`` bytes of ``fileobj`` (positioned at the part); returns
        the part's MD5 digest."""
        md5 = hashlib.md5()
        left = length
        while left:
            data = fileobj.read(min(READ_CHUNK, left))
            if not data:
                raise IOError("the archive ended %d bytes early; was it changed while it was sent?" % left)
            md5.update(data)
            self._sha256.update(data)
            left -= len(data)
        self.part_md5s.append(md5.digest())
        return md5.digest()

    def hash_all(self, fileobj: BinaryIO) -> FileHashes:
        """Hash every part of ``fileobj`` (from its start) at once."""
        fileobj.seek(0)
        for _number, _offset, length in self.ranges:
            self.add_part(fileobj, length)
        return self

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def etag(self) -> str:
        return predicted_etag(self.part_md5s, bool(self.part_size))


class FileSlice(io.RawIOBase):
    """``length`` bytes of an open file from ``offset``, as a seekable file of their own:
    the body of one part request, streamed from disk so that memory stays flat."""

    def __init__(self, fileobj: BinaryIO, offset: int, length: int) -> None:
        super().__init__()
        self._file = fileobj
        self._offset = offset
        self._length = length
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __len__(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._position

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            position += self._position
        elif whence == io.SEEK_END:
            position += self._length
        self._position = max(0, min(position, self._length))
        return self._position

    def read(self, size: Optional[int] = -1) -> bytes:
        left = self._length - self._position
        if size is None or size < 0 or size > left:
            size = left
        if size <= 0:
            return b""
        self._file.seek(self._offset + self._position)
        data = self._file.read(size)
        self._position += len(data)
        return data

    def readinto(self, buffer: Union[bytearray, memoryview]) -> int:  # type: ignore[override]  # io hands a sliceable buffer, not any Buffer
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
