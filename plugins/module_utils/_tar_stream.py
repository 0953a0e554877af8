# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""A strict push parser for tar streams (pure logic, no Ansible, no Docker SDK).

Bytes are fed in chunks of any size as they arrive from a helper container or an archive
file; the parser calls a handler for each member and for each piece of its content, so
nothing larger than one header (at most ``MAX_EXTENDED`` bytes) is ever buffered.

It reads what GNU tar 1.34 writes with ``--format=posix`` (pax headers, xattrs and ACLs as
SCHILY records, nanosecond times, sparse files in the 1.0 and 0.1 formats), the pax, GNU
and ustar output of Python's ``tarfile``, and GNU long names. Every header is read the way
GNU tar's own read path reads it, and any form that GNU tar could read differently from
this parser is refused with a TarFormatError naming the member (or the header's byte
offset) and the reason: a restore checks what this parser reports, so an entry GNU tar
would see otherwise could slip past the checks. In particular, only one spelling of each
value is accepted: numeric header fields as GNU tar and tarfile write them (octal digits
filling the field but its last byte, which is NUL; base-256 only for values octal cannot
hold), pax numbers as plain decimals, one extended header and at most one long name and
one long link per member, no global headers, no repeated keywords, no NUL bytes in names.

Handler methods: ``member_start(member)``, ``member_data(member, offset, data)`` with the
offset of ``data`` in the member's logical content (holes of sparse files are skipped, not
sent), ``member_end(member)``, and ``archive_end()``.
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections.abc import Sequence
from itertools import islice
from typing import Dict, Iterable, Iterator, List, Optional, Protocol, Set, Tuple, Union, overload

BLOCK = 512
# Bounds on what hostile headers can make the parser hold: an extended header or a long
# name is buffered whole before it is read, and a sparse map lives as long as its member.
MAX_EXTENDED = 1 << 20
MAX_SPARSE_SEGMENTS = 1 << 20

KIND_BY_TYPEFLAG = {
    b"0": "file",
    b"\0": "file",
    b"7": "file",
    b"1": "hardlink",
    b"2": "symlink",
    b"3": "chardev",
    b"4": "blockdev",
    b"5": "dir",
    b"6": "fifo",
}

_POSIX_MAGIC = b"ustar\x0000"
_GNU_MAGIC = b"ustar  \x00"
# The ranges of the C types GNU tar reads each value into; a value outside is an error there.
_ID_MAX = (1 << 32) - 1  # uid_t, gid_t
_DEVICE_MAX = (1 << 31) - 1  # major_t, minor_t (int)
_OFF_MAX = (1 << 63) - 1  # off_t, and time_t for seconds
_CHECKSUM = re.compile(rb"[0-7]{6}\0 ")
_OCTAL = {8: re.compile(rb"[0-7]{7}\0"), 12: re.compile(rb"[0-7]{11}\0")}
# mode, uid, gid, size and mtime (bytes 100 to 148) as GNU tar writes them for any value they
# hold in octal: one match instead of five (_member_from; _number reads any other form).
_OCTAL_FIELDS = re.compile(rb"[0-7]{7}\0[0-7]{7}\0[0-7]{7}\0[0-7]{11}\0[0-7]{11}\0")
_DECIMAL = re.compile(rb"0|[1-9][0-9]{0,18}")
_TIME = re.compile(rb"(-?)(0|[1-9][0-9]{0,18})(?:\.([0-9]{1,9}))?")
_SPARSE_MAP_01 = re.compile(rb"(?:0|[1-9][0-9]{0,18})(?:,(?:0|[1-9][0-9]{0,18}))*")
_SPARSE_1_0 = frozenset(["GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.realsize"])
_SPARSE_0_1 = frozenset(["GNU.sparse.size", "GNU.sparse.numblocks", "GNU.sparse.map"])
# Keywords to which GNU tar gives a meaning this parser does not read (multi-volume,
# incremental and SELinux records): refused rather than ignored.
_UNREAD_KEYWORDS = frozenset([
    "GNU.dumpdir", "GNU.volume.label", "GNU.volume.filename", "GNU.volume.size",
    "GNU.volume.offset", "RHT.security.selinux",
])
# Values GNU tar reads as C strings (cut at the first NUL) where this parser keeps bytes.
_STRING_KEYWORDS = frozenset([
    "path", "linkpath", "uname", "gname", "GNU.sparse.name", "SCHILY.acl.access", "SCHILY.acl.default",
])
_XATTR = "SCHILY.xattr."
# Keywords that are neither xattrs, ACLs nor sparse records.
_PLAIN_KEYWORDS = frozenset(["path", "linkpath", "uname", "gname", "uid", "gid", "size", "mtime", "atime", "ctime"])
_ACL_KEYS = ("SCHILY.acl.access", "SCHILY.acl.default")


class TarFormatError(Exception):
    """The stream is not a tar archive this parser can read exactly as GNU tar reads it."""


class _Bad(Exception):
    """A header field is malformed; the caller adds where (see TarParser._header)."""


class Member:
    """One archive member. ``path`` and ``linkname`` are bytes, as stored; ``xattrs`` maps
    xattr names (and the ACL keys ``SCHILY.acl.access``/``SCHILY.acl.default``) to bytes;
    ``sparse_map`` is None or the member's data segments (a SparseMap); ``pax`` holds the
    member's extended header records, keyword (text) to value (bytes)."""

    __slots__ = (
        "path", "kind", "mode", "uid", "gid", "uname", "gname", "size", "mtime_ns",
        "linkname", "devmajor", "devminor", "xattrs", "sparse_map", "pax",
    )

    path: bytes
    kind: str
    mode: int
    uid: int
    gid: int
    uname: bytes
    gname: bytes
    size: int
    mtime_ns: int
    linkname: bytes
    devmajor: int
    devminor: int
    xattrs: Dict[str, bytes]
    sparse_map: Optional[SparseMap]
    pax: Dict[str, bytes]

    def __repr__(self) -> str:
        return "Member(%r, %s)" % (self.path, self.kind)

    @property
    def shown_path(self) -> str:
        """The path for messages: decoded, with undecodable bytes escaped."""
        return self.path.decode("utf-8", "backslashreplace")


class TarHandler(Protocol):
    """What TarParser calls for each member and at the end (see the module doc); ``data``
    is a piece of the chunk that was fed, not a copy."""

    def member_start(self, member: Member) -> None:
        ...

    def member_data(self, member: Member, offset: int, data: memoryview) -> None:
        ...

    def member_end(self, member: Member) -> None:
        ...

    def archive_end(self) -> None:
        ...


class SparseMap(Sequence):
    """The data segments of a sparse member: a sequence of (offset, length) tuples in
    ascending order, kept as one array of 64-bit integers (16 bytes a segment, where a list
    of tuples would take ten times that) since a map may hold MAX_SPARSE_SEGMENTS of them."""

    __slots__ = ("_numbers",)

    def __init__(self, numbers: Iterable[int] = ()) -> None:
        """``numbers``: offset, length, offset, length, ... (an even count)."""
        self._numbers = numbers if isinstance(numbers, array) else array("q", numbers)

    def __len__(self) -> int:
        return len(self._numbers) // 2

    @overload
    def __getitem__(self, index: int) -> Tuple[int, int]:
        ...

    @overload
    def __getitem__(self, index: slice) -> List[Tuple[int, int]]:
        ...

    def __getitem__(self, index: Union[int, slice]) -> Union[Tuple[int, int], List[Tuple[int, int]]]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("sparse map index out of range")
        return (self._numbers[2 * index], self._numbers[2 * index + 1])

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        return zip(islice(self._numbers, 0, None, 2), islice(self._numbers, 1, None, 2))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(mine == tuple(theirs) for mine, theirs in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so not hashable

    def __repr__(self) -> str:
        return "SparseMap(%r)" % list(self)


def _shown(path: bytes) -> str:
    return bytes(path).decode("utf-8", "backslashreplace")


def _number(field: bytes, what: str, maximum: int, negative: bool = False) -> int:
    """A numeric header field in a form GNU tar and Python's tarfile write: octal digits
    filling all of the field but its last byte, which is NUL; or base-256 for a value octal
    cannot hold (first byte 0x80, or 0xff for a negative value, then big-endian bytes)."""
    lead = field[0]
    if lead in (0x80, 0xFF):
        value = int.from_bytes(field[1:], "big")
        if lead == 0xFF:
            value -= 1 << (8 * (len(field) - 1))
        elif value < 8 ** (len(field) - 1):
            raise _Bad("its %s field is base-256 for a value octal can hold (not as GNU tar writes it)" % what)
    elif _OCTAL[len(field)].fullmatch(field):
        value = int(field[:-1], 8)
    else:
        raise _Bad(
            "its %s field %r is not %d octal digits and a NUL (GNU tar and this parser could read "
            "it differently)" % (what, bytes(field), len(field) - 1)
        )
    if value < 0 and not negative:
        raise _Bad("its %s field is negative" % what)
    if value > maximum or value < -maximum:
        raise _Bad("its %s field %d is out of range" % (what, value))
    return value


def _text(field: bytes) -> bytes:
    return bytes(field.split(b"\0", 1)[0])


def _decimal(value: bytes, what: str, maximum: int) -> int:
    """A pax or sparse-map number: plain decimal digits, no sign, no leading zero."""
    if not _DECIMAL.fullmatch(value) or int(value) > maximum:
        raise _Bad("its %s %r is not a plain decimal number in range" % (what, bytes(value[:40])))
    return int(value)


def _pax_time_ns(value: bytes, what: str) -> int:
    """A pax time (``-``, whole seconds, optionally ``.`` and 1 to 9 digits) in nanoseconds;
    a negative time is the negated absolute value, as GNU tar reads it."""
    match = _TIME.fullmatch(value)
    if match is None or int(match.group(2)) >= _OFF_MAX:
        raise _Bad("its %s %r is not a decimal time with at most 9 fractional digits" % (what, bytes(value[:40])))
    sign, seconds, fraction = match.groups()
    total = int(seconds) * 1000000000 + int((fraction or b"").ljust(9, b"0"))
    return -total if sign else total


def byte_sum(block: bytes) -> int:
    """The sum of the bytes of a tar header (at most 512 bytes), as its checksum counts them.
    Adler-32's low half is 1 plus the sum of the bytes modulo 65521, which is exact for 256
    bytes (at most 65280): two halves summed in C, seven times faster than ``sum(block)``."""
    if len(block) > 2 * 256:
        raise ValueError("byte_sum takes at most 512 bytes, not %d" % len(block))
    return (zlib.adler32(block[:256]) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _checksum_ok(block: bytes) -> bool:
    # The checksum field itself counts as eight spaces; some old tars summed signed chars.
    unsigned = byte_sum(block) - sum(block[148:156]) + 8 * 32
    stored = int(block[148:154], 8)
    if stored == unsigned:
        return True
    high = sum(1 for byte in block if byte > 127) - sum(1 for byte in block[148:156] if byte > 127)
    return stored == unsigned - 256 * high


def pax_records(data: bytes) -> Dict[str, bytes]:
    """The records of an extended header as a {keyword (text): value (bytes)} dict, in
    their order. Refuses (_Bad) anything but a sequence of well-formed records filling the
    data exactly: ``<length> <keyword>=<value>\\n`` with a decimal length (no sign, no
    leading zero) that counts the whole record, one space, a keyword without NUL that does
    not start with a blank, and no keyword twice (GNU tar would apply each in turn)."""
    records = {}
    position = 0
    end = len(data)
    while position < end:
        space = data.find(b" ", position, position + 8)
        digits = data[position:space]
        if space < 0 or not digits.isdigit() or digits.startswith(b"0"):
            raise _Bad("its record at byte %d has no valid length" % position)
        record_end = position + int(digits)
        equals = data.find(b"=", space + 1, record_end - 1)
        if record_end > end or equals < 0 or data[record_end - 1] != 0x0A:
            raise _Bad("its record at byte %d is malformed (length, '=' or newline)" % position)
        raw = data[space + 1:equals]
        if not raw or b"\0" in raw:
            raise _Bad("its record at byte %d has an empty keyword or one with a NUL byte" % position)
        if raw[0] in b" \t":
            raise _Bad("its record at byte %d has more than one blank after its length (GNU tar skips them all)" % position)
        keyword = raw.decode("utf-8", "surrogateescape")
        if keyword in records:
            raise _Bad("it holds keyword %s twice (GNU tar would apply both in turn)" % keyword)
        records[keyword] = data[equals + 1:record_end - 1]
        position = record_end
    return records


def _xattr_name(keyword: str) -> str:
    """GNU tar's decoding of an xattr keyword: %3D is '=' and %25 is '%' (in that spelling
    only); the rest is kept as is."""
    name = keyword[len(_XATTR):]
    if "%" in name:
        name = re.sub("%(3D|25)", lambda match: "=" if match.group(1) == "3D" else "%", name)
    return name


class TarParser:
    """Feed tar bytes with ``feed``; call ``close`` at the end of the input."""

    def __init__(self, handler: TarHandler) -> None:
        self.handler = handler
        self._buffer = bytearray()
        self._need = BLOCK
        self._state = "header"
        self._position = 0  # bytes of the stream consumed so far
        self._header_at = 0  # where the header being read starts
        self._extension: Optional[bytes] = None  # the typeflag of the extension header whose data comes next
        self._extension_size = 0
        self._pending_at: Optional[int] = None  # where the first extension header of the next member starts
        self._extended: Optional[Dict[str, bytes]] = None  # the next member's extended header records
        self._long_name: Optional[bytes] = None
        self._long_link: Optional[bytes] = None
        self._problem: Optional[str] = None  # a refusal that waits for the member's name
        self._member: Optional[Member] = None
        self._stored_left = 0  # bytes of member data still to come
        self._padding_left = 0
        self._sparse: Optional[Tuple[Optional[int], array[int], bytes]] = None  # while a sparse map is read: (count or None, numbers, partial line)
        self._segments: Optional[array[int]] = None  # the sparse map's numbers (offset, length, ...) while its data comes
        self._segment = 0  # index of the sparse segment being filled
        self._segment_left = 0  # its bytes still to come
        self._logical = 0  # logical offset of the next data byte (non-sparse members)
        self.ended = False

    # -- input ---------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        position = 0
        while position < len(view):
            start = position
            if self._state == "data":
                position = self._take_data(view, position)
            elif self._state == "padding":
                step = min(self._padding_left, len(view) - position)
                self._padding_left -= step
                position += step
                if not self._padding_left:
                    self._next_header()
            elif self._state == "trailer":
                tail = bytes(view[position:])
                if any(tail):
                    garbage = self._position + len(tail) - len(tail.lstrip(b"\0"))
                    raise TarFormatError("data follows the end-of-archive marker (at byte %d)" % garbage)
                self._position += len(tail)
                return
            elif not self._buffer and len(view) - position >= self._need:
                # The whole header is in this chunk (the usual case): no buffering.
                position += self._need
                self._position += position - start
                self._dispatch(bytes(view[start:position]))
                continue
            else:
                step = min(self._need - len(self._buffer), len(view) - position)
                self._buffer += view[position:position + step]
                position += step
                if len(self._buffer) == self._need:
                    self._position += position - start
                    block, self._buffer = bytes(self._buffer), bytearray()
                    self._dispatch(block)
                    continue
            self._position += position - start

    def close(self) -> None:
        if self._state == "trailer":
            return
        if self._state == "zero":
            raise TarFormatError("the archive ends after a single zero block (truncated)")
        if self._member is not None:
            raise TarFormatError("the archive ends inside member %s (truncated)" % self._member.shown_path)
        if self._pending_at is not None:
            raise TarFormatError(
                "the archive ends after the extension header at byte %d, before its member (truncated)" % self._pending_at
            )
        raise TarFormatError("the archive ends without its end-of-archive marker (truncated)")

    # -- headers -------------------------------------------------------------------------

    def _next_header(self) -> None:
        self._state, self._need = "header", BLOCK

    def _dispatch(self, block: bytes) -> None:
        if self._state == "header":
            self._header_at = self._position - len(block)
            self._header(block)
        elif self._state == "zero":
            if any(block):
                raise TarFormatError(
                    "a zero block at byte %d is followed by more data (GNU tar would stop reading there)"
                    % (self._position - 2 * BLOCK)
                )
            self._state = "trailer"
            self.ended = True
            self.handler.archive_end()
        elif self._state == "extension":
            self._extension_block(block)
        elif self._state == "sparsemap":
            self._sparse_map_block(block)

    def _header(self, block: bytes) -> None:
        if not any(block):
            if self._pending_at is not None:
                raise TarFormatError(
                    "the extension header at byte %d is followed by the end of the archive, not by a member"
                    % self._pending_at
                )
            self._state = "zero"
            return
        if not _CHECKSUM.fullmatch(block, 148, 156) or not _checksum_ok(block):
            raise TarFormatError(
                "the tar header at byte %d has a bad checksum (corrupt or not a tar archive)" % self._header_at
            )
        try:
            self._read_header(block)
        except _Bad as exc:
            raise TarFormatError("%s is refused: %s" % (self._where(block), exc))

    def _where(self, block: bytes) -> str:
        typeflag = block[156:157]
        if typeflag in (b"x", b"g", b"L", b"K"):
            return "the extension header (type %s) at byte %d" % (typeflag.decode("latin-1"), self._header_at)
        return "member %s (header at byte %d)" % (_shown(_text(block[0:100])), self._header_at)

    def _read_header(self, block: bytes) -> None:
        magic = block[257:265]
        if magic == _POSIX_MAGIC:
            if block[475] == 0 and 48 <= block[476] <= 55 and _star_times(block):
                raise _Bad("GNU tar would read it as a star header (times where the name prefix goes)")
        elif magic == _GNU_MAGIC:
            if any(block[345:500]):
                raise _Bad(
                    "it is an old GNU header with data in the area where ustar keeps the name prefix "
                    "(GNU tar ignores it, other readers take it for a prefix)"
                )
        else:
            raise _Bad("its magic %r is neither POSIX ustar nor GNU tar's" % magic)
        typeflag = block[156:157]
        if typeflag in (b"x", b"L", b"K"):
            self._start_extension(typeflag, _number(block[124:136], "size", _OFF_MAX))
        elif typeflag == b"g":
            raise _Bad("it is a global extended header (GNU tar never writes one here; refused)")
        elif typeflag in KIND_BY_TYPEFLAG:
            self._start_member(block, typeflag, magic == _POSIX_MAGIC)
        else:
            raise _Bad(
                "its tar type %r is not supported (GNU sparse 'S', multi-volume, label and other "
                "special members are not)" % typeflag.decode("latin-1")
            )

    def _start_extension(self, typeflag: bytes, size: int) -> None:
        what = "extended header" if typeflag == b"x" else "long name"
        if size > MAX_EXTENDED:
            raise _Bad("the %s is %d bytes long, more than the %d this reader accepts" % (what, size, MAX_EXTENDED))
        if typeflag != b"x" and not size:
            raise _Bad("the long name is empty (GNU tar would use an empty name)")
        if self._pending_at is None:
            self._pending_at = self._header_at
        self._extension, self._extension_size = typeflag, size
        self._state, self._need = "extension", _padded(size)
        if not size:
            self._extension_block(b"")

    def _extension_block(self, block: bytes) -> None:
        data = block[:self._extension_size]
        typeflag = self._extension
        if typeflag is None:
            raise AssertionError("internal error: the extension state is entered with it (_start_extension)")
        try:
            if typeflag == b"x":
                if self._extended is not None:
                    self._problem = self._problem or (
                        "member %%s has two extended headers in a row (the second at byte %d); GNU tar "
                        "would use only the last, so the archive is refused" % self._header_at
                    )
                self._extended = pax_records(data)
            else:
                # GNU tar writes the name and one NUL, and reads up to the first NUL: the
                # padding after it could only change what one of two readers sees.
                if data[-1:] != b"\0" or b"\0" in data[:-1] or len(data) < 2:
                    raise _Bad("the long name is not a non-empty name followed by exactly one NUL byte")
                what = "long name" if typeflag == b"L" else "long link"
                if (self._long_name if typeflag == b"L" else self._long_link) is not None:
                    self._problem = self._problem or (
                        "member %%s has two %s headers (the second at byte %d); GNU tar would use only "
                        "the last, so the archive is refused" % (what, self._header_at)
                    )
                if typeflag == b"L":
                    self._long_name = data[:-1]
                else:
                    self._long_link = data[:-1]
        except _Bad as exc:
            raise TarFormatError(
                "the extension header (type %s) at byte %d is refused: %s"
                % (typeflag.decode("latin-1"), self._header_at, exc)
            )
        self._next_header()

    def _start_member(self, block: bytes, typeflag: bytes, posix: bool) -> None:
        kind = KIND_BY_TYPEFLAG[typeflag]
        pax = self._extended or {}
        name = _text(block[0:100])
        prefix = _text(block[345:500]) if posix else b""
        if prefix:
            name = prefix + b"/" + name
        long_name, long_link = self._long_name, self._long_link
        # GNU tar writes a sparse member's name in GNU.sparse.name, and the made-up name of its
        # header in path when that is not ASCII; GNU.sparse.name wins in either order.
        path = pax.get("GNU.sparse.name", pax.get("path", long_name if long_name is not None else name))
        if self._problem is not None:
            raise TarFormatError(self._problem % _shown(path))
        self._extended = self._long_name = self._long_link = self._pending_at = None
        try:
            member = self._member_from(block, kind, path, pax, long_name, long_link, posix)
        except _Bad as exc:
            raise TarFormatError("member %s is refused: %s" % (_shown(path), exc))
        self._member = member
        self._logical = 0
        if member.sparse_map is None and "GNU.sparse.major" in pax:
            self._sparse = (None, array("q"), b"")
            self._state, self._need = "sparsemap", BLOCK
            return
        self._begin_data()

    def _member_from(
        self, block: bytes, kind: str, path: bytes, pax: Dict[str, bytes], long_name: Optional[bytes], long_link: Optional[bytes], posix: bool,
    ) -> Member:
        """The member a header and its extension headers describe (see the module doc)."""
        if long_name is not None and ("path" in pax or "GNU.sparse.name" in pax):
            raise _Bad("it has both a long-name header and a name in its extended header")
        if long_link is not None and "linkpath" in pax:
            raise _Bad("it has both a long-link header and a link target in its extended header")
        for keyword, value in pax.items():
            _check_record(keyword, value)
        member = Member()
        member.pax = pax
        member.kind = kind
        if path.endswith(b"/") and kind != "dir":
            raise _Bad("it is a %s whose name ends with a slash (GNU tar would make it a directory)" % kind)
        if kind == "dir" and path not in (b"/", b"./"):
            path = path.rstrip(b"/")
        if not path:
            raise _Bad("its name is empty")
        member.path = path
        member.linkname = pax.get("linkpath", long_link if long_link is not None else _text(block[157:257]))
        if kind == "hardlink" and not member.linkname:
            raise _Bad("it is a hard link without a target (GNU tar would link it to '.')")
        # GNU tar reads every header field even where a pax record overrides it. In octal,
        # only the mode can be out of its range (7 digits hold less than _ID_MAX, 11 less
        # than _OFF_MAX).
        if _OCTAL_FIELDS.fullmatch(block, 100, 148) and int(block[100:107], 8) <= 0o7777:
            member.mode, member.uid, member.gid = int(block[100:107], 8), int(block[108:115], 8), int(block[116:123], 8)
            stored, mtime = int(block[124:135], 8), int(block[136:147], 8)
        else:
            member.mode = _number(block[100:108], "mode", 0o7777)
            member.uid = _number(block[108:116], "uid", _ID_MAX)
            member.gid = _number(block[116:124], "gid", _ID_MAX)
            stored = _number(block[124:136], "size", _OFF_MAX)
            mtime = _number(block[136:148], "mtime", _OFF_MAX, negative=True)
        if "uid" in pax:
            member.uid = _decimal(pax["uid"], "uid", _ID_MAX)
        if "gid" in pax:
            member.gid = _decimal(pax["gid"], "gid", _ID_MAX)
        member.uname = pax.get("uname", _text(block[265:297]))
        member.gname = pax.get("gname", _text(block[297:329]))
        member.mtime_ns = _pax_time_ns(pax["mtime"], "mtime") if "mtime" in pax else mtime * 1000000000
        if kind in ("chardev", "blockdev"):
            member.devmajor = _number(block[329:337], "devmajor", _DEVICE_MAX)
            member.devminor = _number(block[337:345], "devminor", _DEVICE_MAX)
        else:
            member.devmajor = member.devminor = 0
        plain = pax.keys() <= _PLAIN_KEYWORDS
        member.xattrs = {} if plain else _xattrs(pax)
        if "size" in pax:
            stored = _decimal(pax["size"], "size", _OFF_MAX)
        if stored and kind != "file":
            # Readers disagree on whether such data is skipped or read as headers; an
            # archive that relies on either could hide members from a check, so refuse it.
            raise _Bad("it is a %s that carries %d bytes of data; GNU tar never writes that" % (kind, stored))
        member.size = stored
        member.sparse_map = None
        self._stored_left = stored
        self._padding_left = _padded(stored) - stored
        sparse = () if plain else sorted(key for key in pax if key.startswith("GNU.sparse."))
        if sparse:
            self._read_sparse_records(member, pax, set(sparse), kind, posix)
        return member

    def _read_sparse_records(self, member: Member, pax: Dict[str, bytes], keys: Set[str], kind: str, posix: bool) -> None:
        """A sparse member's real size and, for the 0.1 format, its map. GNU tar treats a
        member as sparse when it has a sparse major version or a non-empty 0.1 map, but acts
        on its other sparse records (GNU.sparse.name renames, GNU.sparse.realsize resizes)
        in any case: so sparse records are accepted only as one complete set of the 1.0 or
        the 0.1 format, on a regular file whose own header is POSIX ustar."""
        if kind != "file" or not posix:
            raise _Bad(
                "it carries GNU.sparse records but is not a regular file with a POSIX header, so GNU "
                "tar would not read it as a sparse file yet act on some of the records"
            )
        named = sorted(keys)
        keys.discard("GNU.sparse.name")
        if keys == _SPARSE_1_0:
            if pax["GNU.sparse.major"] != b"1" or pax["GNU.sparse.minor"] != b"0":
                raise _Bad("its sparse format version is not 1.0 or 0.1")
            member.size = _decimal(pax["GNU.sparse.realsize"], "GNU.sparse.realsize", _OFF_MAX)
            return
        if keys != _SPARSE_0_1:
            raise _Bad(
                "its GNU.sparse records (%s) are not the complete set of the 1.0 or the 0.1 sparse "
                "format (GNU tar would still act on some of them)" % ", ".join(named)
            )
        member.size = _decimal(pax["GNU.sparse.size"], "GNU.sparse.size", _OFF_MAX)
        count = _decimal(pax["GNU.sparse.numblocks"], "GNU.sparse.numblocks", MAX_SPARSE_SEGMENTS)
        order = list(pax)
        # GNU tar allocates the map when it reads numblocks: a map before it would be lost.
        if order.index("GNU.sparse.numblocks") > order.index("GNU.sparse.map"):
            raise _Bad("its GNU.sparse.numblocks comes after GNU.sparse.map (GNU tar would drop the map)")
        text = pax["GNU.sparse.map"]
        if not _SPARSE_MAP_01.fullmatch(text):
            raise _Bad("its GNU.sparse.map is not a list of plain decimal numbers")
        numbers = array("q", [int(number) for number in text.split(b",")])
        if not count or len(numbers) != 2 * count:
            raise _Bad("its GNU.sparse.map does not hold GNU.sparse.numblocks (%d) segments" % count)
        self._set_sparse_map(member, numbers)

    def _set_sparse_map(self, member: Member, numbers: array[int]) -> None:
        """Take a sparse map (offset, length, ...) as the member's, if GNU tar reads it as this
        parser does. GNU tar reads each segment's data from a fresh block and sizes the file
        by the last segment: so a map is accepted only as GNU tar writes one, with segments in
        order, each a whole number of blocks but the last that holds data, none empty but the
        last, and the last ending at the real size."""
        count = len(numbers) // 2
        last_data = max((index for index in range(count) if numbers[2 * index + 1]), default=-1)
        end = 0
        data = 0
        for index in range(count):
            offset, length = numbers[2 * index], numbers[2 * index + 1]
            if offset < end:
                raise _Bad("its sparse map has overlapping or unordered segments")
            if not length and index != count - 1:
                raise _Bad("its sparse map has an empty segment before its last (GNU tar writes one only last)")
            if length % BLOCK and index != last_data:
                raise _Bad(
                    "its sparse map has a segment of %d bytes, not whole blocks, before its last (GNU tar "
                    "reads each segment's data from a fresh block)" % length
                )
            end = offset + length
            data += length
        if not count or end != member.size:
            raise _Bad(
                "its sparse map ends at byte %d, not at its size %d (GNU tar would extract a file of "
                "another size)" % (end, member.size)
            )
        if data != self._stored_left:
            raise _Bad(
                "its sparse map holds %d bytes of data, but the member stores %d" % (data, self._stored_left)
            )
        member.sparse_map = SparseMap(numbers)
        self._segments = numbers
        self._segment = -1
        self._segment_left = 0

    def _sparse_map_block(self, block: bytes) -> None:
        """One block of a 1.0 sparse map: decimal lines (the count, then offset and length
        of each segment) at the start of the member's data, padded with NULs to a block."""
        member = self._member
        if member is None or self._sparse is None:
            raise AssertionError("internal error: the sparsemap state is entered with both (_start_member)")
        self._stored_left -= BLOCK
        self._padding_left = _padded(self._stored_left) - self._stored_left
        try:
            if self._stored_left < 0:
                raise _Bad("its sparse map runs past its stored data")
            count, numbers, partial = self._sparse
            text = partial + block
            start = 0
            while count is None or len(numbers) < 2 * count:
                newline = text.find(b"\n", start)
                if newline < 0:
                    if len(text) - start > 19:
                        raise _Bad("its sparse map has a number longer than 19 digits")
                    self._sparse = (count, numbers, text[start:])
                    return
                if count is None:
                    count = _decimal(text[start:newline], "sparse map count", MAX_SPARSE_SEGMENTS)
                else:
                    numbers.append(_decimal(text[start:newline], "sparse map entry", _OFF_MAX))
                start = newline + 1
            # GNU tar skips the rest of the map's last block: it must hold nothing.
            if any(text[start:]):
                raise _Bad("its sparse map's last block has data after the map")
            self._sparse = None
            self._set_sparse_map(member, numbers)
        except _Bad as exc:
            raise TarFormatError("member %s is refused: %s" % (member.shown_path, exc))
        self._begin_data()

    def _begin_data(self) -> None:
        if self._member is None:
            raise AssertionError("internal error: called once a member's header is read")
        self.handler.member_start(self._member)
        if self._stored_left:
            self._state = "data"
        else:
            self._finish_member()

    # -- member data ---------------------------------------------------------------------

    def _take_data(self, view: memoryview, position: int) -> int:
        step = min(self._stored_left, len(view) - position)
        member = self._member
        if member is None:
            raise AssertionError("internal error: the data state is entered with a member (_begin_data)")
        if member.sparse_map is None:
            self.handler.member_data(member, self._logical, view[position:position + step])
            self._logical += step
        else:
            numbers = self._segments
            if numbers is None:
                raise AssertionError("internal error: set with the member's sparse map (_set_sparse_map)")
            done = 0
            while done < step:
                while not self._segment_left:
                    self._segment += 1
                    self._segment_left = numbers[2 * self._segment + 1]
                length = numbers[2 * self._segment + 1]
                offset = numbers[2 * self._segment] + length - self._segment_left
                take = min(self._segment_left, step - done)
                self.handler.member_data(member, offset, view[position + done:position + done + take])
                done += take
                self._segment_left -= take
        self._stored_left -= step
        if not self._stored_left:
            self._finish_member()
        return position + step

    def _finish_member(self) -> None:
        if self._member is None:
            raise AssertionError("internal error: called at the end of a member's data")
        self.handler.member_end(self._member)
        self._member = None
        if self._padding_left:
            self._state = "padding"
        else:
            self._next_header()


def _star_times(block: bytes) -> bool:
    """GNU tar's test for a star header: octal times, each ending in a space, at 476 and 488."""
    return all(48 <= block[start] <= 55 and block[start + 11] == 32 for start in (476, 488))


def _check_record(keyword: str, value: bytes) -> None:
    """Refuse a record GNU tar would read differently from this parser (see pax_records)."""
    if keyword in _STRING_KEYWORDS:
        if b"\0" in value:
            raise _Bad("its %s record holds a NUL byte (GNU tar would cut the value there)" % keyword)
        if not value and keyword in ("path", "linkpath", "GNU.sparse.name"):
            raise _Bad("its %s record is empty" % keyword)
    elif keyword in ("atime", "ctime"):
        _pax_time_ns(value, keyword)
    elif keyword in _UNREAD_KEYWORDS:
        raise _Bad("its extended header holds %s, which GNU tar acts on and this parser does not read" % keyword)


def _xattrs(pax: Dict[str, bytes]) -> Dict[str, bytes]:
    xattrs = {}
    for keyword, value in pax.items():
        if keyword.startswith(_XATTR):
            name = _xattr_name(keyword)
            if not name or name in _ACL_KEYS:
                raise _Bad("its extended header holds an xattr named %r" % name)
            if name in xattrs:
                raise _Bad("its extended header holds xattr %s twice (in two spellings)" % name)
            xattrs[name] = value
        elif keyword in _ACL_KEYS:
            xattrs[keyword] = value
    return xattrs


def _padded(size: int) -> int:
    return (size + BLOCK - 1) // BLOCK * BLOCK
