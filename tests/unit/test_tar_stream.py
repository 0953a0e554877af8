"""The tar push parser reads GNU tar's output exactly and refuses what it cannot read."""

import os
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarFormatError, TarParser
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
