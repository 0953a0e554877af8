# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Canonical tar serialization of parsed members (pure logic, no Ansible, no Docker SDK).

What a restore or a copy hands to GNU tar for extraction is never the bytes it read: it is
this writer's rendering of the members the parser reported and the safety rules approved.
Each member gets exactly one extended (pax) header holding every attribute that matters
(path, link target, owner, size, nanosecond time, xattrs and ACLs, the sparse map), written
one way only, followed by a ustar header whose fields agree with it. So whatever trick the
original headers played (repeated extended headers, odd number encodings, old GNU fields),
GNU tar can only see what the module checked.

Used as a TarParser handler (after the checks): ``member_start``, ``member_data``,
``member_end`` and ``archive_end`` queue output, which ``drain()`` hands over in order;
``canonical_stream`` wires parser, checker and writer together.
"""

from __future__ import annotations

from typing import Iterable, Iterator, List, Sequence, Tuple, Union

from ansible_collections.persist.docker.plugins.module_utils._member_safety import normalize
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import Member, TarHandler, TarParser, byte_sum

BLOCK = 512
_RECORD = 20 * BLOCK  # GNU tar's default record size: the end of the archive is padded to it
_TYPEFLAGS = {
    "file": b"0", "hardlink": b"1", "symlink": b"2", "chardev": b"3",
    "blockdev": b"4", "dir": b"5", "fifo": b"6",
}
_MAX_OCTAL_8 = 0o7777777
_MAX_OCTAL_12 = 0o77777777777
_ZEROS = bytes(BLOCK)
_MAGIC_AND_NAMES = b"ustar\x0000" + bytes(64)  # magic, version, then uname and gname left empty
_PREFIX_AND_PADDING = bytes(BLOCK - 345)


def pax_record(keyword: str, value: bytes) -> bytes:
    """One extended-header record: ``"<length> <keyword>=<value>\\n"``, the length counting
    itself. ``keyword`` is text, ``value`` bytes."""
    body = b" %s=%s\n" % (keyword.encode("utf-8", "surrogateescape"), value)
    # The length is the body's plus its own digits: as many as the body's length has, or one
    # more when adding them carries into another digit.
    length = len(body) + len(b"%d" % len(body))
    if len(b"%d" % length) + len(body) != length:
        length += 1
    return b"%d%s" % (length, body)


def pax_time(nanoseconds: int) -> bytes:
    """A time in nanoseconds as a pax decimal: whole seconds, a dot, nine digits; negative
    times as the negated absolute value (``-1.500000000`` is 1.5 s before the epoch)."""
    sign = b"-" if nanoseconds < 0 else b""
    seconds, fraction = divmod(abs(nanoseconds), 1000000000)
    return b"%s%d.%09d" % (sign, seconds, fraction)


def _number(value: int, width: int) -> bytes:
    """``value`` for a field no extended-header record can carry (device numbers): octal
    where it fits, else base-256 (a first byte 0x80, then big-endian), as GNU tar writes."""
    if 0 <= value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    return b"\x80" + value.to_bytes(width - 1, "big")


def xattr_keyword(name: str) -> str:
    """The extended-header keyword of xattr ``name``: GNU tar writes '%' as %25 and '=' as
    %3D in it (a record's keyword ends at the first '=')."""
    return "SCHILY.xattr." + name.replace("%", "%25").replace("=", "%3D")


def _field(text: bytes, width: int) -> bytes:
    return text[:width].ljust(width, b"\0")


def _tail(typeflag: bytes, linkname: bytes, devmajor: int, devminor: int) -> bytes:
    """A header's bytes after the checksum: typeflag, link name, magic and version, the empty
    user and group names, device numbers, the empty name prefix and the padding."""
    return b"".join((typeflag, _field(linkname, 100), _MAGIC_AND_NAMES, _number(devmajor, 8), _number(devminor, 8), _PREFIX_AND_PADDING))


def _plain_tail(typeflag: bytes) -> Tuple[bytes, int]:
    tail = _tail(typeflag, b"", 0, 0)
    return tail, byte_sum(tail)


# Most headers have no link name in the ustar fields and no device numbers (the writer puts
# link targets in the extended header): their tails and the tails' byte sums, made once.
_PLAIN_TAILS = {typeflag: _plain_tail(typeflag) for typeflag in (*_TYPEFLAGS.values(), b"x")}


def ustar_header(
    name: bytes, typeflag: bytes, size: int, mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: int = 0, linkname: bytes = b"",
    devmajor: int = 0, devminor: int = 0,
) -> bytes:
    """One 512-byte ustar header with a correct checksum. Numbers that do not fit are 0;
    the caller puts them in an extended header."""
    if len(typeflag) != 1:
        raise ValueError("a tar type flag is one byte, not %r" % typeflag)
    # Up to the checksum field: name, then mode, uid, gid, size and mtime in octal.
    head = b"%s%07o\0%07o\0%07o\0%011o\0%011o\0" % (
        _field(name, 100),
        mode if 0 <= mode <= _MAX_OCTAL_8 else 0,
        uid if 0 <= uid <= _MAX_OCTAL_8 else 0,
        gid if 0 <= gid <= _MAX_OCTAL_8 else 0,
        size if 0 <= size <= _MAX_OCTAL_12 else 0,
        mtime if 0 <= mtime <= _MAX_OCTAL_12 else 0,
    )
    plain = _PLAIN_TAILS.get(typeflag) if not linkname and not devmajor and not devminor else None
    if plain is not None:
        tail, tail_sum = plain
    else:
        tail = _tail(typeflag, linkname, devmajor, devminor)
        tail_sum = byte_sum(tail)
    # The checksum counts its own field as eight spaces.
    return b"%s%06o\0 %s" % (head, byte_sum(head) + tail_sum + 8 * 32, tail)


def _padding(size: int) -> bytes:
    return _ZEROS[:(BLOCK - size % BLOCK) % BLOCK]


def archive_path(path: bytes, directory: bool = False) -> bytes:
    """The name a canonical archive gives a normalized path (b"" is the root), as GNU tar
    names it: ``./`` in front, and a slash after a directory."""
    if not path:
        return b"./"
    return b"./" + path + (b"/" if directory else b"")


def sparse_map_text(segments: Sequence[Tuple[int, int]]) -> bytes:
    """The sparse map of the GNU 1.0 format: the count, then offset and length of each
    segment, one decimal per line, padded with NULs to whole blocks."""
    lines = [b"%d\n" % len(segments)]
    lines.extend(b"%d\n%d\n" % segment for segment in segments)
    text = b"".join(lines)
    return text + _padding(len(text))


class CanonicalWriter:
    """A TarParser handler that re-writes every member it is given (see the module doc).

    It expects members the safety rules approved (paths and hard-link targets that
    normalize); put it after the checker in the handler chain."""

    def __init__(self) -> None:
        self._out: List[Union[bytes, memoryview]] = []
        self._written = 0
        self._data_left = 0

    def drain(self) -> bytes:
        """The output queued since the last call, as one bytes object."""
        out, self._out = self._out, []
        return b"".join(out)

    def _emit(self, data: Union[bytes, memoryview]) -> None:
        self._out.append(data)
        self._written += len(data)

    def member_start(self, member: Member) -> None:
        path = archive_path(normalize(member.path), member.kind == "dir")
        records = []
        stored = 0
        name = path
        if member.kind == "file":
            stored = member.size
            if member.sparse_map is not None:
                map_text = sparse_map_text(member.sparse_map)
                stored = len(map_text) + sum(length for _offset, length in member.sparse_map)
                records += [
                    pax_record("GNU.sparse.major", b"1"),
                    pax_record("GNU.sparse.minor", b"0"),
                    pax_record("GNU.sparse.name", path),
                    pax_record("GNU.sparse.realsize", b"%d" % member.size),
                ]
                name = b"./GNUSparseFile.0/" + path.rsplit(b"/", 1)[-1][:80]
        if member.sparse_map is None:
            records.append(pax_record("path", path))
        if member.kind in ("symlink", "hardlink"):
            link = member.linkname
            if member.kind == "hardlink":
                link = archive_path(normalize(link))
            records.append(pax_record("linkpath", link))
        records += [
            pax_record("uid", b"%d" % member.uid),
            pax_record("gid", b"%d" % member.gid),
            pax_record("mtime", pax_time(member.mtime_ns)),
            pax_record("size", b"%d" % stored),
        ]
        for key in sorted(member.xattrs):
            if key.startswith("SCHILY.acl."):
                records.append(pax_record(key, member.xattrs[key]))
            else:
                records.append(pax_record(xattr_keyword(key), member.xattrs[key]))
        extended = b"".join(records)
        self._emit(ustar_header(b"./PaxHeaders/" + path.rsplit(b"/", 1)[-1][:80], b"x", len(extended)))
        self._emit(extended + _padding(len(extended)))
        self._emit(ustar_header(
            name, _TYPEFLAGS[member.kind], stored, member.mode, member.uid, member.gid,
            member.mtime_ns // 1000000000, b"", member.devmajor, member.devminor,
        ))
        self._data_left = stored
        if member.sparse_map is not None:
            self._emit(map_text)
            self._data_left -= len(map_text)

    def member_data(self, member: Member, offset: int, data: memoryview) -> None:
        self._emit(data)
        self._data_left -= len(data)

    def member_end(self, member: Member) -> None:
        if self._data_left:
            raise ValueError("member %r ended %d bytes short of its stored size" % (member.path, self._data_left))
        if member.kind == "file":
            self._emit(_padding(self._written))

    def archive_end(self) -> None:
        self._emit(_ZEROS * 2)
        self._emit(bytes((_RECORD - self._written % _RECORD) % _RECORD))


class _Tee:
    """A handler that hands every event to ``first``, then to ``writer``."""

    def __init__(self, first: TarHandler, writer: CanonicalWriter) -> None:
        self._first = first
        self._writer = writer

    def member_start(self, member: Member) -> None:
        self._first.member_start(member)
        self._writer.member_start(member)

    def member_data(self, member: Member, offset: int, data: memoryview) -> None:
        self._first.member_data(member, offset, data)
        self._writer.member_data(member, offset, data)

    def member_end(self, member: Member) -> None:
        self._first.member_end(member)
        self._writer.member_end(member)

    def archive_end(self) -> None:
        self._first.archive_end()
        self._writer.archive_end()


def canonical_stream(chunks: Iterable[bytes], approver: TarHandler) -> Iterator[bytes]:
    """Yield the canonical re-serialization of the tar stream ``chunks`` (bytes-like).
    ``approver`` is a TarParser handler that sees each member first (a SafetyChecker, or a
    TreeDigest with one): what it raises for a member stops the stream before any byte of
    that member is yielded. Parse errors raise TarFormatError."""
    writer = CanonicalWriter()
    parser = TarParser(_Tee(approver, writer))
    for chunk in chunks:
        parser.feed(chunk)
        out = writer.drain()
        if out:
            yield out
    parser.close()
    out = writer.drain()
    if out:
        yield out
