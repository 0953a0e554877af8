"""The tar push parser reads GNU tar's output exactly and refuses what it cannot read."""

import os
import subprocess
import tarfile
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarFormatError, TarParser, byte_sum
from tar_mutator import BLOCK, Archive, extended, fix_checksum, long_name, padded
from tarbuild import Recorder, crafted, feed, gnu_tar, info

WEIRD_NAME = b"n\xffame with spaces\nand newline"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    (root / "empty").write_bytes(b"")
    (root / "small").write_bytes(b"hello\n")
    os.setxattr(root / "small", "user.note", b"kept\x00binary")
    (root / "big").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    with open(root / "sparse", "wb") as sparse:
        sparse.truncate(8 * 1024 * 1024)
        sparse.seek(5 * 1024 * 1024)
        sparse.write(b"island")
    deep = root / ("d" * 120) / ("e" * 150)
    deep.mkdir(parents=True)
    (deep / "leaf").write_bytes(b"deep")
    os.link(root / "small", root / "z-hardlink")  # sorts after its first name
    os.symlink("small", root / "relative-link")
    os.symlink("/etc/absolute", root / "absolute-link")
    os.symlink("missing", root / "dangling-link")
    with open(os.path.join(bytes(root), WEIRD_NAME), "wb") as weird:
        weird.write(b"weird")
    os.utime(root / "small", ns=(1, 1700000000123456789))
    return root


def test_parser_reads_every_member_of_a_gnu_tar_archive_with_contents_and_nanosecond_times(tree):
    recorder = feed(Recorder(), gnu_tar(tree), chunk=1000)
    by_path = {member.path: member for member in recorder.members}
    assert recorder.ended
    assert by_path[b"./small"].mtime_ns == 1700000000123456789
    assert by_path[b"./small"].xattrs == {"user.note": b"kept\x00binary"}
    assert bytes(recorder.contents[b"./big"]) == (tree / "big").read_bytes()
    assert bytes(recorder.contents[b"./sparse"]) == (tree / "sparse").read_bytes()
    assert by_path[b"./sparse"].sparse_map is not None
    assert by_path[b"./z-hardlink"].kind == "hardlink" and by_path[b"./z-hardlink"].linkname == b"./small"
    assert by_path[b"./absolute-link"].linkname == b"/etc/absolute"
    assert bytes(recorder.contents[b"./" + WEIRD_NAME]) == b"weird"
    deep = b"./" + b"d" * 120 + b"/" + b"e" * 150 + b"/leaf"
    assert bytes(recorder.contents[deep]) == b"deep"
    on_disk = {b"./" + os.path.relpath(os.path.join(d, n), bytes(tree)) for d, ds, fs in os.walk(bytes(tree)) for n in ds + fs}
    assert set(by_path) == on_disk | {b"./"}


@given(chunk=st.integers(min_value=1, max_value=5000))
@settings(max_examples=25, deadline=None)
def test_parser_result_does_not_depend_on_how_the_stream_is_cut(tree, chunk):
    data = gnu_tar(tree)
    whole = feed(Recorder(), data, chunk=len(data))
    pieces = feed(Recorder(), data, chunk=chunk)
    assert [m.path for m in pieces.members] == [m.path for m in whole.members]
    assert pieces.contents == whole.contents


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_parser_reads_long_names_in_every_common_header_format(fmt):
    name = "x" * 90 + "/" + "y" * 90 if fmt == tarfile.USTAR_FORMAT else "z" * 300
    recorder = feed(Recorder(), crafted((info(name), b"data"), fmt=fmt))
    assert recorder.members[0].path == name.encode()
    assert bytes(recorder.contents[name.encode()]) == b"data"


@pytest.mark.parametrize("cut", [100, 512, 1024 + 3, -1024 - 512, -1024])
def test_parser_refuses_a_truncated_archive(tree, cut):
    data = gnu_tar(tree)
    data = data[:cut] if cut > 0 else data[:len(data.rstrip(b"\0")) + 1024 + cut]
    with pytest.raises(TarFormatError, match="truncated|checksum"):
        feed(Recorder(), data)


def test_parser_refuses_a_flipped_bit_in_a_header():
    data = bytearray(crafted((info("file"), b"content")))
    data[1024 + 10] ^= 0x01  # inside the member's ustar header (after the pax header)
    with pytest.raises(TarFormatError, match="checksum"):
        feed(Recorder(), bytes(data))


def test_parser_refuses_data_appended_after_the_end_of_the_archive():
    with pytest.raises(TarFormatError, match="end-of-archive"):
        feed(Recorder(), crafted((info("file"), b"content")) + b"junk")


def test_parser_refuses_a_symlink_that_carries_data_instead_of_guessing():
    entry = info("link", tarfile.SYMTYPE, linkname="target")
    data = bytearray(crafted((entry, None), fmt=tarfile.USTAR_FORMAT))
    data[124:136] = b"%011o\0" % 512
    data[148:156] = b"        "
    data[148:156] = b"%06o\0 " % sum(data[:512])
    with pytest.raises(TarFormatError, match="carries 512 bytes"):
        feed(Recorder(), bytes(data))


def test_parser_refuses_member_types_it_cannot_read_exactly():
    data = crafted((info("volume-label", b"V"), None), fmt=tarfile.GNU_FORMAT)
    with pytest.raises(TarFormatError, match="not supported"):
        feed(Recorder(), data)


def test_parser_reports_garbage_as_not_a_tar_archive():
    with pytest.raises(TarFormatError):
        TarParser(Recorder()).feed(b"this is not a tar archive" * 40)


# -- strict reading: every form GNU tar 1.34 could read differently is refused -------------
# Each test below builds the form from tarfile or GNU tar output with tar_mutator's header
# surgery (checksums recomputed), so only the form itself can cause the refusal.


def _file(name="./x", content=b"data", fmt=tarfile.PAX_FORMAT, **fields):
    entry = info(name)
    for key, value in fields.items():
        setattr(entry, key, value)
    return crafted((entry, content), fmt=fmt)


def _with_extended(data, *records_per_header, member=0, typeflag=b"x"):
    """``data`` with extended headers (one per record list) before its member-th member."""
    archive = Archive(data)
    position = archive.members()[member]
    for records in reversed(records_per_header):
        archive.entries.insert(position, extended(records, typeflag=typeflag))
    return archive.tobytes()


def _refused(data, *words):
    with pytest.raises(TarFormatError) as caught:
        feed(Recorder(), data)
    for word in words:
        assert word in str(caught.value)
    return str(caught.value)


def _only(data):
    recorder = feed(Recorder(), data)
    assert len(recorder.members) == 1
    return recorder.members[0]


@pytest.fixture(scope="module")
def sparse_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparse")
    with open(root / "holes", "wb") as sparse:
        sparse.truncate(3 * 1024 * 1024)
        sparse.seek(1024 * 1024)
        sparse.write(b"island")
    return root


def _sparse_member_entries(data):
    """The archive of a sparse tree and the indexes of its sparse member and extended header."""
    archive = Archive(data)
    member = next(i for i in archive.members() if archive.entries[i].get("name").startswith(b"./GNUSparseFile"))
    return archive, member, member - 1


def test_two_extended_headers_before_one_member_are_refused_naming_the_member():
    data = _with_extended(_file("./x"), [("uid", b"5")], [("path", b"./x")])
    message = _refused(data, "member ./x has two extended headers in a row", "GNU tar would use only the last")
    assert "so the archive is refused" in message


@pytest.mark.parametrize("field, spelling", [
    ("mode", b"\x000000644"),  # GNU tar skips a leading NUL and reads 0644; a split at NUL reads 0
    ("mode", b" 000644\0"),
    ("mode", b"0000644 "),
    ("mode", b"+000644\0"),  # GNU tar reads base-64 after a sign
    ("mode", b"0o00644\0"),
    ("mode", b"0_00644\0"),
    ("mode", b"644\0\0\0\0\0"),
    ("mode", bytes(8)),
    ("mode", b"0017777\0"),  # canonical octal, but more than the permission bits GNU tar reads
    ("uid", b"\x80\0\0\0\0\0\0\x05"),  # base-256 for a value octal holds
    ("uid", b"\x81\0\0\0\0\0\0\x05"),  # GNU tar reads base-256 only after 0x80 or 0xff
    ("mtime", b" 0000000001\0"),
    ("size", b"00000000004 "),
])
def test_numeric_header_fields_in_any_spelling_but_the_canonical_one_are_refused(field, spelling):
    archive = Archive(_file("./x", fmt=tarfile.USTAR_FORMAT))
    archive.entries[0].set(field, spelling)
    _refused(archive.tobytes(), "member ./x", "its %s field" % field)


def test_a_checksum_in_another_spelling_is_refused():
    data = bytearray(_file("./x", fmt=tarfile.USTAR_FORMAT))
    data[148:156] = b" " + bytes(data[148:154]) + b"\0"
    _refused(bytes(data), "bad checksum")


def test_a_negative_base_256_time_of_gnu_format_is_read_as_gnu_tar_reads_it():
    member = _only(_file("./old", fmt=tarfile.GNU_FORMAT, mtime=-100))
    assert member.mtime_ns == -100 * 10 ** 9


@pytest.mark.parametrize("field, value", [("uid", 1 << 40), ("devmajor", 1 << 40)])
def test_base_256_values_outside_what_gnu_tar_reads_into_its_types_are_refused(field, value):
    kind = tarfile.CHRTYPE if field == "devmajor" else tarfile.REGTYPE
    entry = info("./x", kind)
    setattr(entry, field, value)
    _refused(crafted((entry, b"" if kind == tarfile.REGTYPE else None), fmt=tarfile.GNU_FORMAT), "out of range")


def test_base_256_device_numbers_of_gnu_format_are_read():
    entry = info("./dev", tarfile.CHRTYPE)
    entry.devmajor, entry.devminor = 3000000, 5
    member = _only(crafted((entry, None), fmt=tarfile.GNU_FORMAT))
    assert (member.devmajor, member.devminor) == (3000000, 5)


def test_the_prefix_area_of_an_old_gnu_header_is_refused():
    archive = Archive(_file("./x", fmt=tarfile.GNU_FORMAT))
    archive.entries[0].set("prefix", b"pre")  # GNU tar ignores it there; a ustar reader prepends it
    _refused(archive.tobytes(), "member ./x", "old GNU header")


@pytest.mark.parametrize("magic", [bytes(8), b"ustar\0  ", b"ustar \0 "])
def test_headers_without_the_posix_or_the_gnu_magic_are_refused(magic):
    archive = Archive(_file("./x", fmt=tarfile.USTAR_FORMAT))
    archive.entries[0].set("magic", magic)
    _refused(archive.tobytes(), "member ./x", "magic")


@pytest.mark.parametrize("records", [
    [("GNU.sparse.name", b"./renamed")],  # GNU tar renames the member
    [("GNU.sparse.realsize", b"1000")],  # GNU tar resizes it
    [("GNU.sparse.numblocks", b"1")],
    [("GNU.sparse.offset", b"0"), ("GNU.sparse.numbytes", b"4")],
])
def test_gnu_sparse_records_on_a_member_that_is_not_sparse_are_refused(records):
    _refused(_with_extended(_file("./x"), records), "its GNU.sparse records", *[keyword for keyword, _value in records])


def test_sparse_records_on_a_member_whose_header_is_old_gnu_are_refused(sparse_tree):
    archive, member, _extended = _sparse_member_entries(gnu_tar(sparse_tree))
    archive.entries[member].set("magic", b"ustar  \0")  # GNU tar then reads no sparse map
    _refused(archive.tobytes(), "member ./holes", "POSIX header")


def test_a_posix_header_that_gnu_tar_takes_for_a_star_header_is_refused(sparse_tree):
    archive, member, _extended = _sparse_member_entries(gnu_tar(sparse_tree))
    archive.entries[member].header[476:500] = b"14560354321 14560354321 "
    _refused(archive.tobytes(), "star header")


def test_a_sparse_0_1_map_before_its_segment_count_is_refused():
    records = [
        ("GNU.sparse.size", b"4"), ("GNU.sparse.map", b"0,4"), ("GNU.sparse.numblocks", b"1"),
        ("GNU.sparse.name", b"./x"),
    ]
    _refused(_with_extended(_file("./GNUSparseFile.0/x"), records), "numblocks comes after")


def test_data_after_a_sparse_1_0_map_in_its_block_is_refused(sparse_tree):
    archive, member, _extended = _sparse_member_entries(gnu_tar(sparse_tree))
    entry = archive.entries[member]
    text = entry.payload[:BLOCK].rstrip(b"\0") + b"7\n"
    entry.payload = text.ljust(BLOCK, b"\0") + entry.payload[BLOCK:]
    _refused(archive.tobytes(), "member ./holes", "after the map")


@pytest.mark.parametrize("records", [[("path", b"./global")], [("uid", b"1"), ("uid", b"2")]])
def test_global_extended_headers_are_refused(records):
    _refused(_with_extended(_file("./x"), records, typeflag=b"g"), "global extended header")


def test_a_keyword_repeated_in_one_extended_header_is_refused():
    _refused(_with_extended(_file("./x"), [("path", b"./a"), ("path", b"./b")]), "keyword path twice")


@pytest.mark.parametrize("keyword", ["path", "linkpath", "GNU.sparse.name"])
def test_an_empty_name_or_link_target_in_an_extended_header_is_refused(keyword):
    records = [(keyword, b"")]
    _refused(_with_extended(_file("./x"), records), "record is empty")


@pytest.mark.parametrize("name", [b"", b"\0"])
def test_an_empty_long_name_is_refused(name):
    archive = Archive(_file("./x", fmt=tarfile.GNU_FORMAT))
    entry = long_name(b"", b"L")
    entry.set_data(name)
    archive.entries.insert(0, entry)
    _refused(archive.tobytes(), "long name")


@pytest.mark.parametrize("keyword", ["linkpath", "uname", "SCHILY.acl.access", "GNU.sparse.name"])
def test_a_nul_byte_in_a_pax_value_gnu_tar_reads_as_a_string_is_refused(keyword):
    data = crafted((info("./l", tarfile.SYMTYPE, linkname="t"), None))
    _refused(_with_extended(data, [(keyword, b"a\0b")]), "NUL byte")


def test_a_nul_byte_inside_a_long_link_is_refused():
    archive = Archive(crafted((info("./l", tarfile.SYMTYPE, linkname="t"), None), fmt=tarfile.GNU_FORMAT))
    archive.entries.insert(0, long_name(b"tar\0get", b"K"))
    _refused(archive.tobytes(), "exactly one NUL")


def test_a_long_name_without_its_nul_is_refused_as_gnu_tar_would_read_into_the_padding():
    archive = Archive(_file("./x", fmt=tarfile.GNU_FORMAT))
    entry = long_name(b"./long", b"L")
    entry.set_data(b"./long")
    entry.payload = b"./longZZZ".ljust(BLOCK, b"\0")
    archive.entries.insert(0, entry)
    _refused(archive.tobytes(), "exactly one NUL")


@pytest.mark.parametrize("keyword, value", [
    ("uid", b" 5"), ("uid", b"+5"), ("uid", b"5 "), ("uid", b"05"), ("uid", b"1_0"), ("uid", b"-1"),
    ("uid", b"0x5"), ("uid", b"4294967296"), ("gid", b"5\0"), ("size", b"+4"),
    ("mtime", b"1.0000000001"), ("mtime", b" 1"), ("mtime", b"1."), ("mtime", b".5"), ("mtime", b"1_0"),
    ("atime", b"soon"),
])
def test_pax_numbers_that_are_not_plain_decimals_are_refused(keyword, value):
    _refused(_with_extended(_file("./x"), [(keyword, value)]), "member ./x", keyword)


def test_pax_times_with_nanoseconds_and_before_1970_are_read_exactly():
    data = _with_extended(_file("./a"), [("mtime", b"-1.5")])
    assert _only(data).mtime_ns == -1500000000
    data = _with_extended(_file("./a"), [("mtime", b"1700000000.123456789")])
    assert _only(data).mtime_ns == 1700000000123456789


def test_a_long_name_header_and_a_pax_path_for_one_member_are_refused():
    archive = Archive(_file("./x", fmt=tarfile.GNU_FORMAT))
    archive.entries.insert(0, long_name(b"./long", b"L"))
    archive.entries.insert(1, extended([("path", b"./pax")]))
    _refused(archive.tobytes(), "long-name header and a name in its extended header")


def test_a_long_link_header_and_a_pax_linkpath_for_one_member_are_refused():
    archive = Archive(crafted((info("./l", tarfile.SYMTYPE, linkname="t"), None), fmt=tarfile.GNU_FORMAT))
    archive.entries.insert(0, long_name(b"long-target", b"K"))
    archive.entries.insert(1, extended([("linkpath", b"pax-target")]))
    _refused(archive.tobytes(), "long-link header and a link target")


def test_two_long_name_headers_for_one_member_are_refused():
    archive = Archive(_file("./x", fmt=tarfile.GNU_FORMAT))
    archive.entries[0:0] = [long_name(b"./first", b"L"), long_name(b"./second", b"L")]
    _refused(archive.tobytes(), "member ./second has two long name headers")


def test_an_extended_header_too_large_to_buffer_is_refused_at_once():
    header = bytearray(extended([("path", b"./x")]).header)
    header[124:136] = b"\x80" + (100 * 10 ** 9).to_bytes(11, "big")
    fix_checksum(header)
    with pytest.raises(TarFormatError, match="more than the 1048576 this reader accepts"):
        TarParser(Recorder()).feed(bytes(header) + bytes(BLOCK))


def test_a_long_name_too_large_to_buffer_is_refused_at_once():
    header = bytearray(long_name(b"x", b"L").header)
    header[124:136] = b"%011o\0" % (2 << 20)
    fix_checksum(header)
    with pytest.raises(TarFormatError, match="long name is 2097152 bytes"):
        TarParser(Recorder()).feed(bytes(header) + bytes(BLOCK))


@pytest.mark.parametrize("map_text, words", [
    (b"%d\n" % (1 << 21), "sparse map count"),
    (b"1\n" + b"1" * 400, "longer than 19 digits"),
])
def test_a_sparse_map_too_large_to_hold_is_refused_at_its_first_block(sparse_tree, map_text, words):
    archive, member, _extended = _sparse_member_entries(gnu_tar(sparse_tree))
    entry = archive.entries[member]
    entry.payload = map_text.ljust(BLOCK, b"\0") + entry.payload[BLOCK:]
    data = archive.tobytes()
    start = sum(len(e.header) + len(e.payload) for e in archive.entries[:member])
    with pytest.raises(TarFormatError, match=words):
        TarParser(Recorder()).feed(data[:start + 2 * BLOCK])


def test_a_regular_file_whose_name_ends_with_a_slash_is_refused():
    _refused(_with_extended(_file("./x"), [("path", b"./x/")]), "ends with a slash")


def test_xattr_names_are_decoded_as_gnu_tar_decodes_them(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    os.setxattr(tmp_path / "f", "user.b=c%", b"v")
    member = next(m for m in feed(Recorder(), gnu_tar(tmp_path)).members if m.path == b"./f")
    assert member.xattrs == {"user.b=c%": b"v"}


@pytest.mark.parametrize("records, words", [
    ([("SCHILY.xattr.user.%25", b"1"), ("SCHILY.xattr.user.%", b"2")], "twice (in two spellings)"),
    ([("SCHILY.xattr.SCHILY.acl.access", b"v")], "xattr named"),
    ([("SCHILY.xattr.", b"v")], "xattr named"),
])
def test_xattr_names_that_collide_or_are_empty_are_refused(records, words):
    _refused(_with_extended(_file("./x"), records), words)


@pytest.mark.parametrize("records", [
    b"+20 path=./abcdefghijk\n",
    b"020 path=./abcdefghij\n",
    b"20\tpath=./abcdefghij\n",
    b"21  path=./abcdefghij\n",
    b"20 path=./abcdefghij\n\0\0\0\0",
    b"20 pa\0h=./abcdefghij\n",
    b"16 =./abcdefghij\n",
    b"19 path=./abcdefghij\n",
])
def test_extended_header_records_framed_any_other_way_are_refused(records):
    data = _with_extended(_file("./x"), records)
    _refused(data, "extension header (type x)")


# Classes the differential test (test_tar_differential.py) found:

@pytest.mark.parametrize("blanks", [b"  ", b" \t"])
def test_a_record_with_more_than_one_blank_after_its_length_is_refused(blanks):
    body = blanks + b"path=./renamed\n"
    record = b"%d" % (len(body) + 2) + body  # GNU tar skips every blank and reads "path"
    _refused(_with_extended(_file("./x"), record), "more than one blank after its length")


def test_a_hard_link_without_a_target_is_refused():
    # GNU tar substitutes '.' for an empty hard-link target.
    _refused(crafted((info("./h", tarfile.LNKTYPE, linkname=""), None)), "member ./h", "without a target")


def test_an_extended_header_without_a_member_is_refused():
    archive = Archive(_file("./x"))
    archive.entries.append(extended([("path", b"./dangling")]))
    _refused(archive.tobytes(), "followed by the end of the archive, not by a member")


@pytest.mark.parametrize("keyword", ["GNU.dumpdir", "GNU.volume.label", "GNU.volume.size", "RHT.security.selinux"])
def test_keywords_gnu_tar_acts_on_and_the_parser_does_not_read_are_refused(keyword):
    _refused(_with_extended(_file("./x"), [(keyword, b"1")]), keyword, "GNU tar acts on")


def test_a_sparse_file_with_a_name_that_is_not_ascii_is_read(tmp_path):
    # GNU tar writes both GNU.sparse.name and a path record (its header's made-up name).
    name = b"caf\xc3\xa9 \xff"
    with open(os.path.join(bytes(tmp_path), name), "wb") as sparse:
        sparse.truncate(1024 * 1024)
        sparse.write(b"head")
    member = feed(Recorder(), gnu_tar(tmp_path)).members[1]
    assert "path" in member.pax and member.path == b"./" + name and member.sparse_map is not None


def test_sparse_files_of_gnu_format_0_1_are_read(sparse_tree):
    data = subprocess.run(
        ["tar", "--format=posix", "--sparse", "--sparse-version=0.1", "-C", str(sparse_tree), "-cf", "-", "."],
        check=True, stdout=subprocess.PIPE,
    ).stdout
    recorder = feed(Recorder(), data)
    assert bytes(recorder.contents[b"./holes"]) == (sparse_tree / "holes").read_bytes()
    assert list(recorder.members[1].sparse_map) == [(1024 * 1024, 4096), (3 * 1024 * 1024, 0)]


def test_the_sparse_map_is_a_sequence_of_offset_length_pairs(sparse_tree):
    member = next(m for m in feed(Recorder(), gnu_tar(sparse_tree)).members if m.path == b"./holes")
    assert member.sparse_map == [(1024 * 1024, 4096), (3 * 1024 * 1024, 0)]
    assert member.sparse_map[-1] == (3 * 1024 * 1024, 0) and len(member.sparse_map) == 2
    assert sum(length for _offset, length in member.sparse_map) == 4096


class _Discard:
    def __init__(self):
        self.members = []

    def member_start(self, member):
        self.members.append(member)

    def member_data(self, member, offset, data):
        pass

    def member_end(self, member):
        pass

    def archive_end(self):
        pass


def test_a_sparse_map_of_many_segments_is_held_compactly():
    """20,000 segments: held as a list of tuples they would take over 2 MB."""
    count = 20000
    map_text = b"%d\n" % count + b"".join(b"%d\n512\n" % (1024 * index) for index in range(count))
    stored = padded(len(map_text)) + 512 * count
    records = [
        ("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0"), ("GNU.sparse.name", b"./many"),
        ("GNU.sparse.realsize", b"%d" % (1024 * count - 512)), ("size", b"%d" % stored),
    ]
    archive = Archive(_file("./GNUSparseFile.0/many", content=b""))
    archive.entries.insert(0, extended(records))
    archive.entries[1].payload = map_text.ljust(padded(len(map_text)), b"\0") + b"\1" * (512 * count)
    data = archive.tobytes()
    tracemalloc.start()
    try:
        handler = feed(_Discard(), data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(handler.members[0].sparse_map) == count
    assert peak < 1024 * 1024, peak


def _sparse_archive(map_text, data, realsize):
    """A sparse 1.0 member ./s with the map and stored data given, as GNU tar lays it out."""
    records = [
        ("GNU.sparse.major", b"1"), ("GNU.sparse.minor", b"0"), ("GNU.sparse.name", b"./s"),
        ("GNU.sparse.realsize", b"%d" % realsize), ("size", b"%d" % (padded(len(map_text)) + len(data))),
    ]
    archive = Archive(_file("./GNUSparseFile.0/s", content=b""))
    archive.entries.insert(0, extended(records))
    archive.entries[1].payload = map_text.ljust(padded(len(map_text)), b"\0") + data.ljust(padded(len(data)), b"\0")
    return archive.tobytes()


@pytest.mark.parametrize("map_text, data, realsize, words", [
    # GNU tar reads "cd" from the block after "ab", not right after it.
    (b"2\n0\n2\n10\n2\n", b"abcd", 12, "not whole blocks"),
    # GNU tar extracts a 2-byte file, or an empty one, whatever the real size says.
    (b"1\n0\n2\n", b"ab", 20, "ends at byte 2, not at its size 20"),
    (b"0\n", b"", 1000, "ends at byte 0"),
    (b"3\n0\n512\n600\n0\n1000\n0\n", b"a" * 512, 1000, "empty segment before its last"),  # not as GNU tar writes
])
def test_a_sparse_map_gnu_tar_would_extract_otherwise_is_refused(map_text, data, realsize, words):
    _refused(_sparse_archive(map_text, data, realsize), "member ./s", words)


def test_a_sparse_map_as_gnu_tar_writes_it_is_read():
    data = b"a" * 512 + b"tail"
    member = _only(_sparse_archive(b"3\n0\n512\n1024\n4\n2000\n0\n", data, 2000))
    assert member.sparse_map == [(0, 512), (1024, 4), (2000, 0)] and member.size == 2000


@given(st.binary(max_size=512))
@settings(max_examples=500)
def test_byte_sum_is_the_sum_of_the_bytes(block):
    assert byte_sum(block) == sum(block)


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 511, 512])
def test_byte_sum_is_exact_where_the_halves_are_largest(size):
    # 0xff bytes give the largest sums: 256 of them, 65280, stay below Adler-32's modulus.
    assert byte_sum(b"\xff" * size) == 255 * size


def test_byte_sum_refuses_more_than_a_header():
    with pytest.raises(ValueError, match="at most 512 bytes, not 513"):
        byte_sum(bytes(513))
