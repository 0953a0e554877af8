"""Tar archives taken apart, edited and put back together, for the parser's tests.

``Archive`` splits an archive into entries (one header block and the blocks of data after
it) and joins them again with every header checksum recomputed, so an edit is read as the
edit, not as corruption.
"""

from ansible_collections.persist.docker.plugins.module_utils._tar_write import pax_record, ustar_header

BLOCK = 512
EXTENSION_TYPES = (b"x", b"g", b"L", b"K")
FIELDS = {
    "name": (0, 100), "mode": (100, 108), "uid": (108, 116), "gid": (116, 124), "size": (124, 136),
    "mtime": (136, 148), "chksum": (148, 156), "typeflag": (156, 157), "linkname": (157, 257),
    "magic": (257, 265), "uname": (265, 297), "gname": (297, 329), "devmajor": (329, 337),
    "devminor": (337, 345), "prefix": (345, 500),
}
POSIX_MAGIC = b"ustar\x0000"
GNU_MAGIC = b"ustar  \x00"


def padded(size):
    return (size + BLOCK - 1) // BLOCK * BLOCK


def fix_checksum(header):
    """Set the checksum of a header (a bytearray) as GNU tar writes it: 6 octal digits, NUL, space."""
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)


def read_number(field):
    """A numeric field as written by GNU tar or tarfile (octal, or base-256), leniently."""
    if field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * (len(field) - 1))) if field[0] == 0xFF else value
    digits = bytes(field).strip(b"\0 ")
    return int(digits, 8) if digits.isdigit() else 0


class Entry:
    """A header block (a bytearray) and the padded data blocks after it."""

    def __init__(self, header, payload=b""):
        self.header = bytearray(header)
        self.payload = bytes(payload)

    @property
    def typeflag(self):
        return bytes(self.header[156:157])

    @property
    def is_extension(self):
        return self.typeflag in EXTENSION_TYPES

    @property
    def data(self):
        """An extension header's data (its records or long name), without the padding."""
        return self.payload[:read_number(self.header[124:136])]

    def set_data(self, data):
        """Replace an extension header's data, with its size field and padding to match."""
        self.header[124:136] = b"%011o\0" % len(data)
        self.payload = bytes(data) + bytes(padded(len(data)) - len(data))

    def get(self, field):
        start, end = FIELDS[field]
        return bytes(self.header[start:end])

    def set(self, field, value):
        start, end = FIELDS[field]
        self.header[start:end] = bytes(value).ljust(end - start, b"\0")[:end - start]


def extended(records, typeflag=b"x", name=b"./PaxHeaders/member"):
    """An extended header entry from (keyword, value) pairs (keywords as text, surrogate-
    escaped for raw bytes) or from raw record bytes."""
    if not isinstance(records, bytes):
        records = b"".join(pax_record(keyword, value) for keyword, value in records)
    entry = Entry(ustar_header(name, typeflag, 0))
    entry.set_data(records)
    return entry


def long_name(name, typeflag=b"L"):
    """A GNU long-name (L) or long-link (K) entry holding ``name`` and a NUL, as GNU tar writes it."""
    entry = Entry(ustar_header(b"././@LongLink", typeflag, 0))
    entry.set_data(name + b"\0")
    entry.set("magic", GNU_MAGIC)
    return entry


class Archive:
    """An archive as a list of entries and the bytes after the last one (the trailer)."""

    def __init__(self, data):
        self.entries = []
        position = 0
        while position + BLOCK <= len(data):
            header = data[position:position + BLOCK]
            if not any(header):
                break
            end = position + BLOCK + padded(read_number(header[124:136]))
            self.entries.append(Entry(header, data[position + BLOCK:end]))
            position = end
        self.trailer = data[position:]

    def members(self):
        """Indexes of the entries that are members (not extension headers)."""
        return [index for index, entry in enumerate(self.entries) if not entry.is_extension]

    def tobytes(self):
        out = []
        for entry in self.entries:
            fix_checksum(entry.header)
            out += [bytes(entry.header), entry.payload]
        return b"".join(out) + self.trailer
