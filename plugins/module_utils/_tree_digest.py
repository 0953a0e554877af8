# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The tree digest: one sha256 over a canonical record of every entry (pure logic).

Fed by the tar parser, from an archive or from a live volume streamed by a helper running
GNU tar with ``--sort=name``, it gives the same digest for the same tree. Each entry's
record holds its path, type, permission bits, owner, size, content hash, link target (for
hard links, the first name of the file), device numbers, xattrs and ACLs, and modification
time in nanoseconds. The root directory's modification time is left out: staging a restore
inside the volume changes it.

Records are hashed in the order ``--sort=name`` produces (depth first, names compared as
bytes), which is checked as they come, so nothing is held in memory but the current entry.

Two versions exist; they differ only in the content hash of regular files:

* version 2 (written since holes became free): the file is cut into 4 KiB blocks; blocks
  that are all zeros (holes, or zeros written out) count by their absence, and each maximal
  run of other blocks is recorded as its offset, length and sha256. Holes cost nothing, so
  a hostile archive claiming a petabyte sparse file, or a volume holding one, is digested in
  time proportional to its data; and it does not matter where a file system keeps holes.
* version 1 (archives written before): the sha256 of the whole content, holes read as
  zeros. Hashing holes costs time, so a version-1 digest refuses to hash more than
  V1_HOLE_BUDGET bytes of holes in one tree.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Callable, List, Optional, Union

from ansible_collections.persist.docker.plugins.module_utils._member_safety import CanonicalOrder, SafetyChecker, normalize

if TYPE_CHECKING:
    from ansible_collections.persist.docker.plugins.module_utils._tar_stream import Member

CURRENT_VERSION = 2
_VERSION_LINES = {1: b"persist.docker tree digest v1\n", 2: b"persist.docker tree digest v2\n"}
SUPPORTED_VERSIONS = tuple(sorted(_VERSION_LINES))
BLOCK = 4096
_ZERO_BLOCK = bytes(BLOCK)
V1_HOLE_BUDGET = 4 << 30
_ZEROS = bytes(1 << 20)


class DigestTooCostly(ValueError):
    """A version-1 digest would hash more zeros than V1_HOLE_BUDGET allows."""


# The type names as they appear in records.
_KINDS = {kind: kind.encode("ascii") for kind in ("file", "hardlink", "symlink", "chardev", "blockdev", "dir", "fifo")}


class _ContentV2:
    """The version-2 content hash of one file (see the module doc). Data arrives in logical
    order with gaps (holes); only the partial blocks at the edges of a gap are filled in."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._position = 0  # logical offset of the next byte
        self._partial = bytearray()  # the current block so far: always position % BLOCK bytes
        self._run: Optional[hashlib._Hash] = None  # sha256 of the current run of non-zero blocks
        self._run_start = 0
        self._run_length = 0

    def update(self, offset: int, data: Union[bytes, memoryview]) -> None:
        if offset > self._position:
            self._zeros(offset - self._position)
        data = bytes(data)  # bytes compare and search at C speed; a memoryview does not
        start = 0
        if self._partial:
            start = min(BLOCK - len(self._partial), len(data))
            self._fill(data[:start])
        whole = start + (len(data) - start) // BLOCK * BLOCK
        if whole > start:
            self._blocks(data, start, whole)
        if whole < len(data):
            self._fill(data[whole:])

    def _fill(self, data: bytes) -> None:
        """Add bytes to the current block; a completed block is judged."""
        self._partial += data
        self._position += len(data)
        if len(self._partial) == BLOCK:
            block, self._partial = bytes(self._partial), bytearray()
            self._judge(block, self._position - BLOCK)

    def _zeros(self, count: int) -> None:
        if self._partial:
            fill = min(BLOCK - len(self._partial), count)
            self._fill(_ZERO_BLOCK[:fill])
            count -= fill
        whole = count - count % BLOCK
        if whole:
            self._end_run()
            self._position += whole
        if count % BLOCK:
            self._fill(_ZERO_BLOCK[:count % BLOCK])

    def _blocks(self, data: bytes, start: int, end: int) -> None:
        """The whole blocks ``data[start:end]``, ``data[start]`` being at the current position
        (a block boundary)."""
        view = memoryview(data)
        while start < end:
            found = data.find(_ZERO_BLOCK, start, end)
            if found < 0:
                found = end
            # The blocks before the one holding ``found`` hold no 4096 zeros in a row; that
            # block is all zeros only if the zeros start on its boundary (a byte before is not 0).
            zero = start + (found - start + BLOCK - 1) // BLOCK * BLOCK
            if zero > start:
                self._add(view[start:zero], self._position)
                self._position += zero - start
            while zero < end and data[zero:zero + BLOCK] == _ZERO_BLOCK:
                self._end_run()
                zero += BLOCK
                self._position += BLOCK
            start = zero

    def _judge(self, block: bytes, position: int) -> None:
        if block == _ZERO_BLOCK[:len(block)]:
            self._end_run()
        else:
            self._add(block, position)

    def _add(self, data: Union[bytes, memoryview], position: int) -> None:
        if self._run is None:
            self._run = hashlib.sha256()
            self._run_start = position
            self._run_length = 0
        self._run.update(data)
        self._run_length += len(data)

    def _end_run(self) -> None:
        if self._run is not None:
            self._hash.update(b"%d %d " % (self._run_start, self._run_length) + self._run.digest() + b"\n")
            self._run = None

    def hexdigest(self, size: int) -> str:
        if self._position < size:
            self._zeros(size - self._position)
        if self._partial:
            block, self._partial = bytes(self._partial), bytearray()
            self._judge(block, self._position - len(block))
        self._end_run()
        return self._hash.hexdigest()


def _whole_content_v2(data: bytes) -> str:
    """The version-2 content hash of a file whose whole content is ``data`` (what _ContentV2
    gives for it, without its block-by-block bookkeeping when no block is zeros)."""
    if data.find(_ZERO_BLOCK) >= 0:  # a block of zeros may be among them
        hasher = _ContentV2()
        hasher.update(0, data)
        return hasher.hexdigest(len(data))
    # One run of data blocks: all of them, but a last partial block that is all zeros.
    tail = len(data) % BLOCK
    end = len(data) - tail if tail and data[-tail:] == _ZERO_BLOCK[:tail] else len(data)
    if not end:
        return hashlib.sha256().hexdigest()
    run = hashlib.sha256(memoryview(data)[:end]).digest()
    return hashlib.sha256(b"0 %d " % end + run + b"\n").hexdigest()


class _WholeContent:
    """The content hash of a file whose data came in one piece, taken at once."""

    def __init__(self, data: bytes) -> None:
        self._hexdigest = _whole_content_v2(data)

    def update(self, offset: int, data: Union[bytes, memoryview]) -> None:
        raise AssertionError("internal error: no data follows a file's whole content")

    def hexdigest(self, size: int) -> str:
        return self._hexdigest


class _ContentV1:
    """The version-1 content hash: the sha256 of the whole content, holes read as zeros;
    ``budget`` is a one-element list of the hole bytes the whole tree may still hash."""

    def __init__(self, budget: List[int]) -> None:
        self._hash = hashlib.sha256()
        self._written = 0
        self._budget = budget

    def update(self, offset: int, data: memoryview) -> None:
        self._fill_zeros(offset)
        self._hash.update(data)
        self._written += len(data)

    def _fill_zeros(self, until: int) -> None:
        missing = until - self._written
        if missing <= 0:
            return
        if missing > self._budget[0]:
            raise DigestTooCostly(
                "the tree holds sparse files with more than %d GiB of holes, which a version-1 tree digest "
                "would hash byte by byte" % (V1_HOLE_BUDGET >> 30))
        self._budget[0] -= missing
        while self._written < until:
            step = min(len(_ZEROS), until - self._written)
            self._hash.update(_ZEROS[:step])
            self._written += step

    def hexdigest(self, size: int) -> str:
        self._fill_zeros(size)
        return self._hash.hexdigest()


class TreeDigest:
    """A tar parser handler that computes the tree digest and counts entries and bytes.

    With a ``checker`` (a SafetyChecker), every member is checked before it is counted, and
    the first unsafe one stops the parse. ``on_record(path, record)`` is called with each
    entry's normalized path and canonical record, in canonical order, for comparisons.
    ``version`` is the digest version (CURRENT_VERSION for anything new; an archive's
    sidecar says which version its digest is).
    """

    def __init__(
        self, checker: Optional[SafetyChecker] = None, on_record: Optional[Callable[[bytes, bytes], None]] = None, version: int = CURRENT_VERSION,
    ) -> None:
        if version not in _VERSION_LINES:
            raise ValueError("tree digest version %r is not one of %s" % (version, ", ".join(map(str, SUPPORTED_VERSIONS))))
        self.checker = checker
        self.on_record = on_record
        self.version = version
        self.entries = 0
        self.bytes = 0
        self._hash = hashlib.sha256(_VERSION_LINES[version])
        self._order = CanonicalOrder()  # used without a checker: a checker enforces the order itself
        self._path: Optional[bytes] = None
        # The current file's content hash: made by its first data, or at its end (no data).
        self._content: Optional[Union[_ContentV2, _ContentV1, _WholeContent]] = None
        self._hole_budget = [V1_HOLE_BUDGET]

    def member_start(self, member: Member) -> None:
        if self.checker is not None:
            path = self.checker.check(member)
        else:
            path = normalize(member.path)
            self._order.advance(path)
        self._path = path

    def _new_content(self) -> Union[_ContentV2, _ContentV1]:
        self._content = _ContentV2() if self.version == 2 else _ContentV1(self._hole_budget)
        return self._content

    def member_data(self, member: Member, offset: int, data: memoryview) -> None:
        if member.kind != "file":
            return
        content = self._content
        if content is None:
            if offset == 0 and len(data) == member.size and self.version == 2:
                self._content = _WholeContent(bytes(data))
                return
            content = self._new_content()
        content.update(offset, data)

    def member_end(self, member: Member) -> None:
        path = self._path
        if path is None:
            raise AssertionError("internal error: set by member_start")
        content = b""
        if member.kind == "file":
            content = (self._content or self._new_content()).hexdigest(member.size).encode("ascii")
            self.bytes += member.size
        if path:
            self.entries += 1
        link = member.linkname if member.kind == "symlink" else b""
        if member.kind == "hardlink":
            link = normalize(member.linkname)
        devices = (member.devmajor, member.devminor) if member.kind in ("chardev", "blockdev") else (0, 0)
        fields = [
            path, _KINDS[member.kind], b"%d" % member.mode, b"%d" % member.uid, b"%d" % member.gid,
            b"%d" % (member.size if member.kind == "file" else 0), content, link,
            b"%d" % devices[0], b"%d" % devices[1], b"%d" % len(member.xattrs),
        ]
        for name in sorted(member.xattrs):
            fields.extend((name.encode("utf-8", "surrogateescape"), member.xattrs[name]))
        fields.append(b"%d" % (member.mtime_ns if path else 0))
        encoded = b"".join([b"%d:%s," % (len(field), field) for field in fields]) + b"\n"
        self._hash.update(encoded)
        if self.on_record is not None:
            self.on_record(path, encoded)
        self._content = None

    def archive_end(self) -> None:
        pass

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
