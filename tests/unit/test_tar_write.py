"""What restore and copy hand to GNU tar is the module's own rendering of checked members:
GNU tar reads it back as the same tree, and an unsafe member stops it before any of its bytes."""

import os
import subprocess
import tarfile

import pytest

from ansible_collections.persist.docker.plugins.module_utils._member_safety import SafetyChecker, UnsafeMember
from ansible_collections.persist.docker.plugins.module_utils._tar_write import canonical_stream, pax_record, pax_time, ustar_header
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import TreeDigest
from tarbuild import crafted, feed, gnu_tar, gnu_untar, info


def canonical(data, chunk=4093):
    pieces = (data[start:start + chunk] for start in range(0, len(data), chunk))
    return b"".join(canonical_stream(pieces, SafetyChecker(allow_special=True)))


def make_tree(root):
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"hello")
    os.setxattr(root / "d" / "f", "user.bin", b"\x00\xff")
    os.link(root / "d" / "f", root / "d" / "hard")
    os.symlink("../f", root / "d" / "sub" / "sym")
    (root / ("long-" + "x" * 150)).write_bytes(b"long name")
    (root / bytes.fromhex("6ee97700").rstrip(b"\0").decode("utf-8", "surrogateescape")).write_bytes(b"latin-1 name")
    with open(root / "sparse", "wb") as sparse:
        sparse.truncate(50 * 1024 * 1024)
        sparse.seek(20 * 1024 * 1024)
        sparse.write(b"middle")
    os.mkfifo(root / "pipe")
    os.chmod(root / "d" / "f", 0o4750)
    os.utime(root / "d", ns=(0, -1500000000))
    os.utime(root / "d" / "f", ns=(0, 978307200123456789))
    return root


def listing(data):
    return subprocess.run(["tar", "-tvv", "--xattrs", "--numeric-owner", "--full-time", "-f", "-"], input=data,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True).stdout


def test_gnu_tar_reads_the_canonical_rendering_of_a_real_archive_as_the_same_tree(tmp_path):
    original = gnu_tar(make_tree(tmp_path / "tree"))
    rewritten = canonical(original)
    assert listing(rewritten) == listing(original)
    gnu_untar(rewritten, tmp_path / "copy")
    assert feed(TreeDigest(), gnu_tar(tmp_path / "copy")).hexdigest() == feed(TreeDigest(), original).hexdigest()
    assert os.stat(tmp_path / "copy" / "sparse").st_blocks * 512 < 1024 * 1024, "holes stay holes"
    assert feed(TreeDigest(), rewritten).hexdigest() == feed(TreeDigest(), original).hexdigest()


def test_the_rendering_is_the_same_however_the_input_is_cut(tmp_path):
    original = gnu_tar(make_tree(tmp_path / "tree"))
    assert canonical(original, chunk=1) == canonical(original, chunk=1 << 20)


def test_an_unsafe_member_stops_the_stream_before_any_of_its_bytes():
    safe = (info("a"), b"A" * 100)
    evil = (info("../evil"), b"EVIL")
    data = crafted((info(".", tarfile.DIRTYPE), None), safe, evil)
    given = []
    with pytest.raises(UnsafeMember, match="'..' path component"):
        for out in canonical_stream([data], SafetyChecker()):
            given.append(out)
    assert b"EVIL" not in b"".join(given) and b"evil" not in b"".join(given)


def test_pax_records_count_their_own_length_and_times_keep_nanoseconds():
    for size in (0, 1, 2, 3, 89, 90, 91, 92, 93, 94, 990, 991, 992, 993, 994, 9990, 9991, 9992, 9993):
        record = pax_record("path", b"v" * size)
        assert int(record.split(b" ", 1)[0]) == len(record), record[:8]
    assert pax_time(1700000000123456789) == b"1700000000.123456789"
    assert pax_time(-1500000000) == b"-1.500000000"
    assert pax_time(0) == b"0.000000000"


@pytest.mark.parametrize("fields", [
    dict(name=b"./a", typeflag=b"0", size=0),
    dict(name=b"./d/" + b"\xff" * 120, typeflag=b"5", size=0, mode=0o7777, uid=0o7777777, gid=1, mtime=0o77777777777),
    dict(name=b"./link", typeflag=b"2", size=0, linkname=b"\xfe" * 100, mtime=-5),
    dict(name=b"./dev", typeflag=b"3", size=0, devmajor=1 << 30, devminor=7),
    dict(name=b"./big", typeflag=b"0", size=1 << 40, uid=1 << 30),
    dict(name=b"./PaxHeaders/a", typeflag=b"x", size=8 ** 11 - 1),
    dict(name=b"./h", typeflag=b"1", size=0, linkname=b"./a", mode=0, gid=8 ** 7),
    dict(name=b"./f", typeflag=b"0", size=3, devminor=1),
])
def test_ustar_header_is_read_back_by_tarfile(fields):
    """Python's tarfile, another reader, checks the checksum and sees every field we wrote
    (numbers octal cannot hold become 0, for the extended header to carry; device numbers are
    base-256 then)."""
    header = ustar_header(**fields)
    assert len(header) == 512
    member = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    assert member.name.encode("utf-8", "surrogateescape") == fields["name"][:100]
    assert member.type == fields["typeflag"]
    assert member.size == (fields["size"] if fields["size"] < 8 ** 11 else 0)
    assert member.mode == fields.get("mode", 0o644)
    assert member.uid == (fields.get("uid", 0) if fields.get("uid", 0) < 8 ** 7 else 0)
    assert member.mtime == max(fields.get("mtime", 0), 0)
    assert member.linkname.encode("utf-8", "surrogateescape") == fields.get("linkname", b"")
    assert (member.devmajor, member.devminor) == (fields.get("devmajor", 0), fields.get("devminor", 0))


def test_ustar_header_refuses_a_type_flag_of_another_length():
    with pytest.raises(ValueError, match="one byte"):
        ustar_header(b"./a", b"", 0)
