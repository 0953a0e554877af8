# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""A push parser for tar streams (pure logic, no Ansible, no Docker SDK).

Bytes are fed in chunks of any size as they arrive from a helper container or an archive
file; the parser calls a handler for each member and for each piece of its content, so
nothing larger than one header is ever buffered. It reads what GNU tar writes with
``--format=posix`` (pax headers, xattrs and ACLs as SCHILY records, nanosecond times,
sparse files in the 0.1 and 1.0 formats) and the older ustar/GNU long-name headers, and
refuses anything it cannot read exactly, naming the member.

Handler methods: ``member_start(member)``, ``member_data(member, offset, data)`` with the
offset of ``data`` in the member's logical content (holes of sparse files are skipped, not
sent), ``member_end(member)``, and ``archive_end()``.
"""

from __future__ import annotations

BLOCK = 512

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


class TarFormatError(Exception):
    """The stream is not a tar archive this parser can read exactly."""


class Member:
    """One archive member. ``path`` and ``linkname`` are bytes, as stored."""

    __slots__ = (
        "path", "kind", "mode", "uid", "gid", "uname", "gname", "size", "mtime_ns",
        "linkname", "devmajor", "devminor", "xattrs", "sparse_map", "pax",
    )

    def __repr__(self):
        return "Member(%r, %s)" % (self.path, self.kind)

    @property
    def shown_path(self):
        """The path for messages: decoded, with undecodable bytes escaped."""
        return self.path.decode("utf-8", "backslashreplace")


def _number(field, what):
    """A numeric header field: octal text, or base-256 when the high bit is set."""
    if field[:1] and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            value -= 1 << (8 * (len(field) - 1) + 6)
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarFormatError("invalid %s field %r in a tar header" % (what, bytes(field)))


def _text(field):
    return bytes(field.split(b"\0", 1)[0])


def _checksum_ok(block):
    stored = _number(block[148:156], "checksum")
    # The checksum field itself counts as eight spaces.
    unsigned = sum(block) - sum(block[148:156]) + 8 * 32
    if stored == unsigned:
        return True
    # Some old tars summed signed chars.
    high = sum(1 for byte in bytes(block[:148]) + bytes(block[156:]) if byte > 127)
    return stored == unsigned - 256 * high


def parse_pax_records(data):
    """The records of a pax extended header as a {keyword (str): value (bytes)} dict."""
    records = {}
    position = 0
    data = bytes(data)
    while position < len(data):
        if data[position] == 0:  # padding after the last record
            break
        space = data.find(b" ", position)
        try:
            length = int(data[position:space])
        except ValueError:
            raise TarFormatError("malformed pax header record at byte %d" % position)
        record = data[position:position + length]
        if length <= space - position or not record.endswith(b"\n") or b"=" not in record:
            raise TarFormatError("malformed pax header record at byte %d" % position)
        keyword, value = record[space - position + 1:-1].split(b"=", 1)
        records[keyword.decode("utf-8", "surrogateescape")] = value
        position += length
    return records


def _pax_time_ns(value):
    text = value.decode("ascii", "replace")
    negative = text.startswith("-")
    seconds, _dot, fraction = text.lstrip("-").partition(".")
    try:
        total = int(seconds or "0") * 1000000000 + int((fraction + "000000000")[:9])
    except ValueError:
        raise TarFormatError("invalid pax time %r" % text)
    return -total if negative else total


class TarParser:
    """Feed tar bytes with ``feed``; call ``close`` at the end of the input."""

    def __init__(self, handler):
        self.handler = handler
        self._buffer = bytearray()
        self._need = BLOCK
        self._state = "header"
        self._global_pax = {}
        self._pax = {}
        self._long_name = None
        self._long_link = None
        self._member = None
        self._stored_left = 0  # bytes of member data still to come
        self._padding_left = 0
        self._segments = []  # sparse (offset, length) pairs still to fill
        self._logical = 0  # logical offset of the next data byte
        self.ended = False

    # -- input ---------------------------------------------------------------------------

    def feed(self, data):
        view = memoryview(data)
        position = 0
        while position < len(view):
            if self._state == "data":
                position = self._take_data(view, position)
            elif self._state == "padding":
                step = min(self._padding_left, len(view) - position)
                self._padding_left -= step
                position += step
                if not self._padding_left:
                    self._next_header()
            elif self._state == "trailer":
                if any(view[position:]):
                    raise TarFormatError("data follows the end-of-archive marker")
                return
            elif not self._buffer and len(view) - position >= self._need:
                # The whole header is in this chunk (the usual case): no buffering.
                end = position + self._need
                block = bytes(view[position:end])
                position = end
                self._dispatch(block)
            else:
                step = min(self._need - len(self._buffer), len(view) - position)
                self._buffer += view[position:position + step]
                position += step
                if len(self._buffer) == self._need:
                    block, self._buffer = bytes(self._buffer), bytearray()
                    self._dispatch(block)

    def close(self):
        if self._state == "trailer":
            return
        if self._state == "zero":
            raise TarFormatError("the archive ends after a single zero block (truncated)")
        if self._member is not None:
            raise TarFormatError("the archive ends inside member %s (truncated)" % self._member.shown_path)
        raise TarFormatError("the archive ends without its end-of-archive marker (truncated)")

    # -- headers -------------------------------------------------------------------------

    def _next_header(self):
        self._state, self._need = "header", BLOCK

    def _dispatch(self, block):
        if self._state == "header":
            self._header(block)
        elif self._state == "zero":
            if any(block):
                raise TarFormatError("a zero block inside the archive is followed by more data")
            self._state = "trailer"
            self.ended = True
            self.handler.archive_end()
        elif self._state == "pax":
            self._pax_block(block)
        elif self._state == "longname":
            self._long_block(block)
        elif self._state == "sparsemap":
            self._sparse_map_block(block)

    def _header(self, block):
        if not any(block):
            self._state = "zero"
            return
        if not _checksum_ok(block):
            raise TarFormatError("a tar header has a bad checksum (corrupt or not a tar archive)")
        typeflag = block[156:157]
        size = _number(block[124:136], "size")
        if typeflag in (b"x", b"g"):
            self._pending_type = typeflag
            self._state, self._need = "pax", _padded(size)
            self._pending_size = size
            if size == 0:
                self._pax_block(b"")
            return
        if typeflag in (b"L", b"K"):
            self._pending_type = typeflag
            self._state, self._need = "longname", _padded(size)
            self._pending_size = size
            return
        if typeflag not in KIND_BY_TYPEFLAG:
            name = _text(block[0:100]).decode("utf-8", "backslashreplace")
            raise TarFormatError(
                "member %s has tar type %r, which is not supported (sparse GNU 'S', "
                "multi-volume and label members are not)" % (name, typeflag.decode("latin-1"))
            )
        self._start_member(block, typeflag, size)

    def _pax_block(self, block):
        records = parse_pax_records(block[:self._pending_size])
        if self._pending_type == b"g":
            self._global_pax.update(records)
        else:
            self._pax.update(records)
        self._next_header()

    def _long_block(self, block):
        value = bytes(block[:self._pending_size]).rstrip(b"\0")
        if self._pending_type == b"L":
            self._long_name = value
        else:
            self._long_link = value
        self._next_header()

    def _start_member(self, block, typeflag, stored_size):
        pax = dict(self._global_pax)
        pax.update(self._pax)
        self._pax = {}
        member = Member()
        member.pax = pax
        member.kind = KIND_BY_TYPEFLAG[typeflag]
        prefix = _text(block[345:500]) if block[257:262] == b"ustar" else b""
        name = _text(block[0:100])
        path = self._long_name or ((prefix + b"/" + name) if prefix else name)
        path = pax.get("path", path)
        if b"\0" in path:
            raise TarFormatError("a member name contains a NUL byte")
        member.path = path.rstrip(b"/") if member.kind == "dir" and path not in (b"/", b"./") else path
        member.linkname = pax.get("linkpath", self._long_link or _text(block[157:257]))
        self._long_name = self._long_link = None
        member.mode = _number(block[100:108], "mode") & 0o7777
        member.uid = int(pax["uid"]) if "uid" in pax else _number(block[108:116], "uid")
        member.gid = int(pax["gid"]) if "gid" in pax else _number(block[116:124], "gid")
        member.uname = pax.get("uname", _text(block[265:297]))
        member.gname = pax.get("gname", _text(block[297:329]))
        if "mtime" in pax:
            member.mtime_ns = _pax_time_ns(pax["mtime"])
        else:
            member.mtime_ns = _number(block[136:148], "mtime") * 1000000000
        if member.kind in ("chardev", "blockdev"):
            member.devmajor = _number(block[329:337], "devmajor")
            member.devminor = _number(block[337:345], "devminor")
        else:
            member.devmajor = member.devminor = 0
        member.xattrs = {}
        for key, value in pax.items():
            if key.startswith("SCHILY.xattr."):
                member.xattrs[key[len("SCHILY.xattr."):]] = value
            elif key in ("SCHILY.acl.access", "SCHILY.acl.default"):
                member.xattrs[key] = value
        if "size" in pax:
            stored_size = int(pax["size"])
        if stored_size and member.kind != "file":
            # Readers disagree on whether such data is skipped or read as headers; an
            # archive that relies on either could hide members from a check, so refuse it.
            raise TarFormatError(
                "member %s is a %s that carries %d bytes of data; GNU tar never writes that, "
                "so the archive is refused" % (member.shown_path, member.kind, stored_size)
            )
        member.size = stored_size
        member.sparse_map = None
        self._member = member
        self._stored_left = stored_size
        self._padding_left = _padded(stored_size) - stored_size
        self._logical = 0
        sparse_major = pax.get("GNU.sparse.major")
        if sparse_major is not None or "GNU.sparse.map" in pax:
            self._start_sparse(member, pax, sparse_major)
            return
        self.handler.member_start(member)
        self._after_header_of_member()

    def _start_sparse(self, member, pax, major):
        if "GNU.sparse.name" in pax:
            member.path = pax["GNU.sparse.name"]
        realsize = pax.get("GNU.sparse.realsize", pax.get("GNU.sparse.size"))
        if realsize is None:
            raise TarFormatError("sparse member %s has no real size" % member.shown_path)
        member.size = int(realsize)
        if major == b"1":
            self._sparse_numbers = []
            self._sparse_text = b""
            self._state, self._need = "sparsemap", BLOCK
            return
        if major not in (None, b"0") or "GNU.sparse.map" not in pax:
            raise TarFormatError("sparse member %s uses a sparse format that is not supported" % member.shown_path)
        numbers = [int(n) for n in pax["GNU.sparse.map"].split(b",") if n]
        self._set_sparse_map(member, numbers)

    def _sparse_map_block(self, block):
        self._stored_left -= BLOCK
        self._padding_left = _padded(self._stored_left) - self._stored_left
        text = self._sparse_text + block
        lines = text.split(b"\n")
        self._sparse_text = lines.pop()
        for line in lines:
            if not line.isdigit():
                raise TarFormatError("the sparse map of %s is malformed" % self._member.shown_path)
            self._sparse_numbers.append(int(line))
        numbers = self._sparse_numbers
        if numbers and len(numbers) >= 1 + 2 * numbers[0]:
            self._set_sparse_map(self._member, numbers[1:1 + 2 * numbers[0]])
        elif self._stored_left < 0:
            raise TarFormatError("the sparse map of %s is cut short" % self._member.shown_path)
        else:
            self._need = BLOCK

    def _set_sparse_map(self, member, numbers):
        if len(numbers) % 2:
            raise TarFormatError("the sparse map of %s is malformed" % member.shown_path)
        segments = list(zip(numbers[::2], numbers[1::2]))
        end = 0
        for offset, length in segments:
            if offset < end or offset + length > member.size:
                raise TarFormatError("the sparse map of %s has overlapping or out-of-range segments" % member.shown_path)
            end = offset + length
        if sum(length for _offset, length in segments) != self._stored_left:
            raise TarFormatError("the sparse map of %s does not match its stored size" % member.shown_path)
        member.sparse_map = segments
        self._segments = [segment for segment in segments if segment[1]]
        self.handler.member_start(member)
        self._after_header_of_member()

    def _after_header_of_member(self):
        if self._stored_left:
            self._state = "data"
        else:
            self._finish_member()

    # -- member data ---------------------------------------------------------------------

    def _take_data(self, view, position):
        step = min(self._stored_left, len(view) - position)
        member = self._member
        if member.sparse_map is None:
            self.handler.member_data(member, self._logical, view[position:position + step])
            self._logical += step
        else:
            done = 0
            while done < step:
                offset, length = self._segments[0]
                take = min(length, step - done)
                self.handler.member_data(member, offset, view[position + done:position + done + take])
                done += take
                if take == length:
                    self._segments.pop(0)
                else:
                    self._segments[0] = (offset + take, length - take)
        self._stored_left -= step
        if not self._stored_left:
            self._finish_member()
        return position + step

    def _finish_member(self):
        self.handler.member_end(self._member)
        self._member = None
        if self._padding_left:
            self._state = "padding"
        else:
            self._next_header()


def _padded(size):
    return (size + BLOCK - 1) // BLOCK * BLOCK
