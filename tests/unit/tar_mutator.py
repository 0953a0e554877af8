"""Tar archives taken apart, edited and put back together, for the parser's tests.

``Archive`` splits an archive into entries (one header block and the blocks of data after
it) and joins them again with every header checksum recomputed, so an edit is read as the
edit, not as corruption. ``mutate`` applies seeded, structure-aware mutations aimed at the
header forms two tar readers could read differently (see test_tar_differential.py): extra
or repeated extended headers and records, numbers re-encoded in other spellings, swapped
magic, injected GNU.sparse records, empty names, NUL bytes in values, long names, sizes
cut or blown up, edited sparse maps, and random byte flips in header blocks.
"""

import random

from ansible_collections.persist.docker.plugins.module_utils._tar_write import pax_record, ustar_header

BLOCK = 512
EXTENSION_TYPES = (b"x", b"g", b"L", b"K")
FIELDS = {
    "name": (0, 100), "mode": (100, 108), "uid": (108, 116), "gid": (116, 124), "size": (124, 136),
    "mtime": (136, 148), "chksum": (148, 156), "typeflag": (156, 157), "linkname": (157, 257),
    "magic": (257, 265), "uname": (265, 297), "gname": (297, 329), "devmajor": (329, 337),
    "devminor": (337, 345), "prefix": (345, 500),
}
NUMERIC_FIELDS = ("mode", "uid", "gid", "size", "mtime", "devmajor", "devminor")
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
    try:
        return int(bytes(field).strip(b"\0 "), 8)
    except ValueError:
        return 0


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

    def copy(self):
        return Entry(self.header, self.payload)


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
        self.unfixed = set()  # ids of entries whose checksum is left as it is

    def members(self):
        """Indexes of the entries that are members (not extension headers)."""
        return [index for index, entry in enumerate(self.entries) if not entry.is_extension]

    def extensions_of(self, member):
        """Indexes of the extension entries right before member index ``member``."""
        start = member
        while start and self.entries[start - 1].is_extension:
            start -= 1
        return list(range(start, member))

    def tobytes(self):
        out = []
        for entry in self.entries:
            if id(entry) not in self.unfixed:
                fix_checksum(entry.header)
            out += [bytes(entry.header), entry.payload]
        return b"".join(out) + self.trailer


# -- mutations ---------------------------------------------------------------------------
# Each takes (rng, archive), edits the archive and returns a short description, or None
# when it does not apply. The descriptions make a failing case readable.

NAMES = [b"./injected", b"", b"./a\0b", b"./" + b"n" * 150, b"./dir/", b"/abs", b"./../up", b"./\xff\xfe"]
NUMBERS = [
    b"0", b"5", b" 5", b"+5", b"5 ", b"05", b"0x5", b"1_0", b"-1", b"4294967295", b"4294967296",
    b"99999999999999999999", b"", b"5\0", b"1e3",
]
TIMES = [
    b"1.5", b"-1.5", b"1e9", b"1.0000000001", b"-0.5", b"1.", b".5", b"123abc", b"1700000000.123456789",
    b"-1700000000.000000001", b"9223372036854775807", b"0", b"+5", b"1700000000",
]
RECORDS = [
    ("path", NAMES), ("linkpath", [b"target", b"", b"t\0x", b"../../escape", b"/abs"]),
    ("uid", NUMBERS), ("gid", NUMBERS), ("size", NUMBERS + [b"512", b"100000000000"]),
    ("mtime", TIMES), ("atime", TIMES), ("ctime", TIMES), ("uname", [b"root", b"r\0x"]),
    ("GNU.sparse.name", [b"./renamed", b""]), ("GNU.sparse.major", [b"1", b"0", b"2"]),
    ("GNU.sparse.minor", [b"0", b"1"]), ("GNU.sparse.realsize", [b"1000", b"0", b"99999999999"]),
    ("GNU.sparse.size", [b"1000"]), ("GNU.sparse.map", [b"0,5", b"", b"0,5,10"]),
    ("GNU.sparse.numblocks", [b"1", b"2"]), ("GNU.sparse.offset", [b"0"]), ("GNU.sparse.numbytes", [b"5"]),
    ("SCHILY.xattr.user.new", [b"value", b"", b"a\0b"]), ("SCHILY.xattr.user.a%3Db", [b"v"]),
    ("SCHILY.xattr.user.p%25", [b"v"]), ("SCHILY.xattr.", [b"v"]), ("SCHILY.xattr.user.p%2", [b"v"]),
    ("SCHILY.xattr.SCHILY.acl.access", [b"v"]), ("SCHILY.acl.access", [b"user::rw-\ngroup::r--\nother::r--\n", b"u\0x"]),
    ("hdrcharset", [b"BINARY"]), ("comment", [b"x"]), ("unknown.key", [b"v"]), ("GNU.dumpdir", [b"x"]),
    ("RHT.security.selinux", [b"x"]), ("GNU.volume.label", [b"x"]), ("charset", [b"x"]),
    ("pa\0th", [b"x"]), ("", [b"x"]), ("SCHILY.xattr", [b"v"]),
]


def _pick_member(rng, archive):
    members = archive.members()
    return rng.choice(members) if members else None


def _extended_of(archive, member):
    for index in archive.extensions_of(member):
        if archive.entries[index].typeflag == b"x":
            return index
    return None


def add_record(rng, archive):
    """A record from RECORDS added to a member's extended header (made if it has none)."""
    member = _pick_member(rng, archive)
    if member is None:
        return None
    keyword, values = rng.choice(RECORDS)
    value = rng.choice(values)
    index = _extended_of(archive, member)
    if index is None:
        archive.entries.insert(member, extended([(keyword, value)]))
    else:
        entry = archive.entries[index]
        entry.set_data(entry.data + pax_record(keyword, value))
    return "record %s=%r on entry %d" % (keyword, value, member)


def extra_extended(rng, archive):
    """A second extended header before a member: a copy of its own, or a new one."""
    member = _pick_member(rng, archive)
    if member is None:
        return None
    index = _extended_of(archive, member)
    if index is not None and rng.random() < 0.6:
        archive.entries.insert(index + 1, archive.entries[index].copy())
        return "extended header of entry %d doubled" % member
    keyword, values = rng.choice(RECORDS[:3])
    archive.entries.insert(member, extended([(keyword, rng.choice(values))]))
    return "new extended header (%s) before entry %d" % (keyword, member)


def edit_record(rng, archive):
    """One record of an extended header repeated, given another value, or framed wrongly."""
    indexes = [index for index, entry in enumerate(archive.entries) if entry.typeflag == b"x" and entry.data]
    if not indexes:
        return None
    entry = archive.entries[rng.choice(indexes)]
    records = _split_records(entry.data)
    if not records:
        return None
    which = rng.randrange(len(records))
    record = records[which]
    length, _space, rest = record.partition(b" ")
    keyword, _equals, value = rest[:-1].partition(b"=")
    how = rng.choice(["repeat", "value", "length+1", "length-1", "leading-zero", "tab", "two-spaces",
                      "no-newline", "nul-padding", "nul-in-value", "plus-length"])
    if how == "repeat":
        records.insert(which, record)
    elif how == "value":
        candidates = [values for name, values in RECORDS if name == keyword.decode("utf-8", "surrogateescape")]
        pool = candidates[0] if candidates else NUMBERS + TIMES
        records[which] = pax_record(keyword.decode("utf-8", "surrogateescape"), rng.choice(pool))
    elif how == "length+1":
        records[which] = b"%d %s=%s\n" % (int(length) + 1, keyword, value)
    elif how == "length-1":
        records[which] = b"%d %s=%s\n" % (int(length) - 1, keyword, value)
    elif how == "leading-zero":
        records[which] = b"0" + record
    elif how == "plus-length":
        records[which] = b"+" + record
    elif how == "tab":
        records[which] = length + b"\t" + rest
    elif how == "two-spaces":
        records[which] = b"%d  %s" % (int(length) + 1, rest)
    elif how == "no-newline":
        records[which] = record[:-1] + b" "
    elif how == "nul-padding":
        records.append(bytes(rng.choice([1, 7, 40])))
    else:
        records[which] = pax_record(keyword.decode("utf-8", "surrogateescape"), value[:1] + b"\0" + value[1:])
    entry.set_data(b"".join(records))
    return "record %r of an extended header: %s" % (keyword, how)


def _split_records(data):
    records = []
    position = 0
    while position < len(data):
        space = data.find(b" ", position)
        if space < 0 or not data[position:space].isdigit():
            return records
        length = int(data[position:space])
        if length <= 0:
            return records
        records.append(data[position:position + length])
        position += length
    return records


def _encodings(value, width):
    """Other spellings of a numeric field's value, each (name, bytes of the field's width)."""
    octal = b"%o" % max(value, 0)
    return [
        ("leading-nul", b"\0" + octal.rjust(width - 2, b"0") + b"\0"),
        ("leading-space", b" " + octal.rjust(width - 2, b"0") + b"\0"),
        ("space-terminated", octal.rjust(width - 1, b"0") + b" "),
        ("space-nul", octal.rjust(width - 2, b"0") + b" \0"),
        ("no-terminator", octal.rjust(width, b"0")),
        ("plus", b"+" + octal.rjust(width - 2, b"0") + b"\0"),
        ("left-aligned", octal + b"\0" * (width - len(octal))),
        ("base-64", b"+" + b"A" * (width - 3) + b"B\0"),
        ("base-256", b"\x80" + max(value, 0).to_bytes(width - 1, "big")),
        ("base-256-0x81", b"\x81" + max(value, 0).to_bytes(width - 1, "big")),
        ("base-256-negative", b"\xff" * (width - 1) + b"\x9c"),
        ("all-nul", bytes(width)),
        ("all-space", b" " * width),
        ("0o-prefix", b"0o" + octal.rjust(width - 3, b"0") + b"\0"),
        ("underscore", b"0_" + octal.rjust(width - 3, b"0") + b"\0"),
        ("huge-octal", b"7" * (width - 1) + b"\0"),
        ("huge-base-256", b"\x80" + b"\x00" + b"\x17" + b"\xff" * (width - 3)),
    ]


def renumber(rng, archive):
    """A numeric field of a header (member or extension) spelled another way."""
    if not archive.entries:
        return None
    index = rng.randrange(len(archive.entries))
    entry = archive.entries[index]
    field = rng.choice(NUMERIC_FIELDS)
    start, end = FIELDS[field]
    name, spelling = rng.choice(_encodings(read_number(entry.header[start:end]), end - start))
    entry.header[start:end] = spelling
    return "%s field of entry %d spelled %s" % (field, index, name)


def bad_checksum(rng, archive):
    """The checksum field spelled another way (this header is not recomputed)."""
    if not archive.entries:
        return None
    entry = archive.entries[rng.randrange(len(archive.entries))]
    fix_checksum(entry.header)
    value = int(entry.header[148:154], 8)
    spelling = rng.choice([b"%07o\0" % value, b" %06o\0" % value, b"%06o  " % value, b"%06o \0" % value,
                           b"\0%06o\0" % value, b"%08o" % value])
    entry.header[148:156] = spelling
    archive.unfixed.add(id(entry))
    return "checksum spelled %r" % spelling


def swap_magic(rng, archive):
    """The magic and version of a header changed, with star-like times or prefix bytes."""
    if not archive.entries:
        return None
    index = rng.randrange(len(archive.entries))
    entry = archive.entries[index]
    how = rng.choice(["posix", "gnu", "posix-bad-version", "v7", "star-times", "prefix-bytes"])
    if how == "posix":
        entry.set("magic", POSIX_MAGIC)
    elif how == "gnu":
        entry.set("magic", GNU_MAGIC)
    elif how == "posix-bad-version":
        entry.set("magic", b"ustar\x00  ")
    elif how == "v7":
        entry.set("magic", bytes(8))
    elif how == "star-times":
        entry.header[475] = 0
        entry.header[476:488] = b"14560354321 "
        entry.header[488:500] = b"14560354321 "
    else:
        entry.set("prefix", rng.choice([b"pre", b"./pre/fix", b"\xff"]))
    return "entry %d: %s" % (index, how)


def edit_name(rng, archive):
    """A member's name or link field emptied, slashed, filled without NUL, or replaced."""
    member = _pick_member(rng, archive)
    if member is None:
        return None
    entry = archive.entries[member]
    field = rng.choice(["name", "name", "linkname"])
    current = entry.get(field).split(b"\0", 1)[0]
    how = rng.choice(["empty", "slash", "full", "dotdot", "nul-inside", "other"])
    value = {
        "empty": b"", "slash": current + b"/", "full": (current + b"x" * 100)[:100], "dotdot": b"../x",
        "nul-inside": current[:3] + b"\0" + b"tail", "other": b"./other",
    }[how]
    entry.set(field, value)
    return "%s of entry %d: %s" % (field, member, how)


def retype(rng, archive):
    """A header's typeflag changed."""
    if not archive.entries:
        return None
    index = rng.randrange(len(archive.entries))
    typeflag = rng.choice([b"0", b"\0", b"7", b"1", b"2", b"3", b"4", b"5", b"6", b"S", b"g", b"x", b"X", b"L", b"K", b"V", b"D", b"A"])
    archive.entries[index].header[156:157] = typeflag
    return "typeflag of entry %d set to %r" % (index, typeflag)


def add_long_name(rng, archive):
    """A GNU long-name or long-link header before a member, well formed or not."""
    member = _pick_member(rng, archive)
    if member is None:
        return None
    typeflag = rng.choice([b"L", b"K"])
    how = rng.choice(["plain", "long", "empty", "no-nul", "garbage-after-nul", "nul-inside", "twice"])
    name = {"long": b"./" + b"l" * 300, "nul-inside": b"./a\0b"}.get(how, b"./long-named")
    entry = long_name(name, typeflag)
    if how == "empty":
        entry.set_data(b"")
    elif how == "no-nul":
        entry.set_data(name)
        entry.payload = name + b"Z" * (padded(len(name)) - len(name))
    elif how == "garbage-after-nul":
        entry.set_data(name + b"\0garbage")
    archive.entries.insert(member, entry)
    if how == "twice":
        archive.entries.insert(member, long_name(b"./first", typeflag))
    return "%r header (%s) before entry %d" % (typeflag, how, member)


def resize(rng, archive):
    """A header's size field made larger, smaller or huge (data left as it was)."""
    if not archive.entries:
        return None
    index = rng.randrange(len(archive.entries))
    entry = archive.entries[index]
    size = read_number(entry.header[124:136])
    new = rng.choice([size + 1, size - 1, size + BLOCK, size - BLOCK, 0, 100 * 10 ** 9, 8 ** 11 - 1])
    if new < 0:
        return None
    entry.header[124:136] = b"%011o\0" % new if new < 8 ** 11 else b"\x80" + new.to_bytes(11, "big")
    return "size of entry %d set to %d (was %d)" % (index, new, size)


def flip_bytes(rng, archive):
    """Random bytes of a header block changed (its checksum is then recomputed), or of the
    first data block of an extension header or sparse map."""
    if not archive.entries:
        return None
    index = rng.randrange(len(archive.entries))
    entry = archive.entries[index]
    in_payload = entry.payload and rng.random() < 0.3
    target = bytearray(entry.payload) if in_payload else entry.header
    flips = []
    for _flip in range(rng.choice([1, 1, 2, 3])):
        position = rng.randrange(min(len(target), BLOCK))
        value = rng.choice([0, 0x20, 0x2F, 0x30, 0x37, 0x0A, 0x3D, 0x80, 0xFF, rng.randrange(256)])
        target[position] = value
        flips.append((position, value))
    if in_payload:
        entry.payload = bytes(target)
    return "bytes of entry %d %s set: %s" % (index, "data" if in_payload else "header", flips)


def _sparse_members(archive):
    """(member index, extended header index, "1.0" or "0.1") of each sparse member."""
    found = []
    for index in archive.members():
        for extension in archive.extensions_of(index):
            data = archive.entries[extension].data
            if b"GNU.sparse.major=" in data:
                found.append((index, extension, "1.0"))
            elif b"GNU.sparse.map=" in data:
                found.append((index, extension, "0.1"))
    return found


def _edit_numbers(rng, count, numbers):
    """A sparse map's count and numbers (both as text) edited one way; returns the new
    count, numbers, text to add after them, and how."""
    how = rng.choice(["count+1", "count-1", "huge-count", "leading-zero", "overlap", "garbage-after",
                      "long-number", "offset-past-end", "plus", "split-unaligned", "drop-last", "empty-first"])
    extra = []
    value = int(count) if count.isdigit() else 0
    if how == "count+1":
        count = b"%d" % (value + 1)
    elif how == "count-1" and value:
        count = b"%d" % (value - 1)
    elif how == "huge-count":
        count = b"%d" % (1 << 21)
    elif how == "leading-zero" and numbers:
        numbers[0] = b"0" + numbers[0]
    elif how == "overlap" and len(numbers) >= 4:
        numbers[2] = numbers[0]
    elif how == "long-number" and numbers:
        numbers[0] = b"1" * 25
    elif how == "offset-past-end" and numbers:
        numbers[0] = b"99999999999"
    elif how == "plus" and numbers:
        numbers[0] = b"+" + numbers[0]
    elif how == "split-unaligned" and len(numbers) >= 2 and numbers[1].isdigit() and int(numbers[1]) > 1:
        # The same data, as two segments where the first does not fill whole blocks.
        offset, length = int(numbers[0]), int(numbers[1])
        cut = rng.randrange(1, length)
        numbers[:2] = [b"%d" % offset, b"%d" % cut, b"%d" % (offset + cut), b"%d" % (length - cut)]
        count = b"%d" % (value + 1)
    elif how == "drop-last" and len(numbers) >= 2:
        numbers = numbers[:-2]
        count = b"%d" % (value - 1)
    elif how == "empty-first" and numbers:
        numbers[:0] = [numbers[0], b"0"]
        count = b"%d" % (value + 1)
    elif how == "garbage-after":
        extra = [b"7"]
    return count, numbers, extra, how


def edit_sparse_map(rng, archive):
    """The sparse map of a sparse member (1.0: at the start of its data; 0.1: in its
    extended header) edited: its count, numbers, their spelling, data after it."""
    candidates = _sparse_members(archive)
    if not candidates:
        return None
    index, extension, version = rng.choice(candidates)
    if version == "1.0":
        entry = archive.entries[index]
        lines = entry.payload[:BLOCK].split(b"\n")
        count = lines[0]
        size = int(count) if count.isdigit() else 0
        rest = b"\n".join(lines[1 + 2 * size:])
        count, numbers, extra, how = _edit_numbers(rng, count, lines[1:1 + 2 * size])
        text = b"\n".join([count] + numbers + extra) + b"\n" + rest
        entry.payload = text[:BLOCK].ljust(BLOCK, b"\0") + entry.payload[BLOCK:]
    else:
        entry = archive.entries[extension]
        records = _split_records(entry.data)
        values = {}
        for record in records:
            keyword, _equals, value = record.partition(b" ")[2][:-1].partition(b"=")
            values[keyword] = value
        count, numbers, extra, how = _edit_numbers(
            rng, values.get(b"GNU.sparse.numblocks", b""), values.get(b"GNU.sparse.map", b"").split(b","))
        replaced = {b"GNU.sparse.numblocks": count, b"GNU.sparse.map": b",".join(numbers + extra)}
        entry.set_data(b"".join(
            pax_record(keyword.decode("utf-8", "surrogateescape"), replaced[keyword]) if keyword in replaced else record
            for keyword, record in ((record.partition(b" ")[2].partition(b"=")[0], record) for record in records)
        ))
    return "%s sparse map of entry %d: %s" % (version, index, how)


def edit_stream(rng, archive):
    """The archive cut short, its trailer dropped or followed by junk, a lone zero block
    between entries, an entry removed, or a global header added."""
    how = rng.choice(["truncate", "no-trailer", "junk-after", "zero-block-inside", "drop-entry", "global", "swap"])
    if how == "truncate":
        data = archive.tobytes()
        cut = rng.randrange(1, len(data))
        replacement = Archive(data[:cut])
        archive.entries, archive.trailer = replacement.entries, replacement.trailer
        return "archive cut at byte %d" % cut
    if how == "no-trailer":
        archive.trailer = b""
    elif how == "junk-after":
        archive.trailer += b"junk"
    elif how == "zero-block-inside" and archive.entries:
        index = rng.randrange(len(archive.entries))
        archive.entries[index].payload += bytes(BLOCK)
    elif how == "drop-entry" and archive.entries:
        del archive.entries[rng.randrange(len(archive.entries))]
    elif how == "global":
        archive.entries.insert(0, extended([("path", b"./global"), ("uid", b"7")], typeflag=b"g"))
    elif how == "swap" and len(archive.entries) > 1:
        index = rng.randrange(len(archive.entries) - 1)
        entries = archive.entries
        entries[index], entries[index + 1] = entries[index + 1], entries[index]
    return how


# Mutations and how often each is drawn: byte flips and record edits reach the most forms.
MUTATIONS = [
    (add_record, 5), (extra_extended, 2), (edit_record, 4), (renumber, 4), (bad_checksum, 1),
    (swap_magic, 2), (edit_name, 2), (retype, 2), (add_long_name, 2), (resize, 2), (flip_bytes, 6),
    (edit_sparse_map, 4), (edit_stream, 2),
]


def mutate(data, seed):
    """``data`` with one to three mutations drawn with ``random.Random(seed)``, and their
    descriptions. The same data and seed always give the same result."""
    rng = random.Random(seed)
    archive = Archive(data)
    functions = [function for function, _weight in MUTATIONS]
    weights = [weight for _function, weight in MUTATIONS]
    done = []
    for _round in range(rng.choice([1, 1, 2, 3])):
        function = rng.choices(functions, weights)[0]
        description = function(rng, archive)
        if description is not None:
            done.append("%s: %s" % (function.__name__, description))
    return archive.tobytes(), done
