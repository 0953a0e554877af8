"""Malicious archives are refused whole, naming the member and the rule; good ones pass."""

import binascii
import random
import tarfile
import tracemalloc

import pytest

from ansible_collections.persist.docker.plugins.module_utils import _member_safety
from ansible_collections.persist.docker.plugins.module_utils._member_safety import NotCanonicalOrder, SafetyChecker, UnsafeMember
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import Member
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import TreeDigest
from tarbuild import crafted, feed, gnu_tar, info

ROOT = (info(".", tarfile.DIRTYPE, mode=0o755), None)


def check(*members, allow_special=False):
    feed(TreeDigest(SafetyChecker(allow_special=allow_special)), crafted(ROOT, *members))


def sym(name, target):
    return (info(name, tarfile.SYMTYPE, linkname=target), None)


def hard(name, target):
    return (info(name, tarfile.LNKTYPE, linkname=target), None)


def reg(name, mode=0o644):
    return (info(name, mode=mode), b"x")


def xattr_file(name, key, value):
    entry = info(name)
    entry.pax_headers = {"SCHILY.xattr." + key: value.decode("latin-1")}
    return (entry, b"x")


def directory(name):
    return (info(name, tarfile.DIRTYPE, mode=0o755), None)


MALICIOUS = {
    "absolute path": ([reg("/etc/cron.d/evil")], "/etc/cron.d/evil", "absolute path"),
    "dot-dot": ([reg("a/../../evil")], "a/../../evil", "'..' path component"),
    "relative symlink escape": ([sym("esc", "../../etc")], "esc", "leaves the volume"),
    "nested relative symlink escape": ([directory("d"), sym("d/esc", "../x/../../etc")], "d/esc", "'..' after a name"),
    "symlink chain climbing through another symlink": ([sym("s", "."), sym("up", "s/..")], "up", "'..' after a name"),
    "symlink chain through a later symlink": ([sym("a", "z/../.."), sym("z", ".")], "a", "'..' after a name"),
    "symlink climbing above the root from a subdirectory": ([directory("d"), sym("d/up", "../../x")], "d/up", "leaves the volume"),
    "write through a symlinked parent": ([sym("lnk", "/etc"), reg("lnk/passwd")], "lnk/passwd", "is a symlink in the archive"),
    "write through a relative symlinked parent": ([directory("d"), sym("l", "d"), reg("l/f")], "l/f", "is a symlink"),
    "write below a symlink, its directories left out": ([sym("l", "/etc"), reg("l/cron.d/evil")], "l/cron.d/evil", "its parent l is a symlink"),
    "write through a symlink deeper down": ([directory("a"), sym("a/l", "/"), directory("a/l/etc")], "a/l/etc", "its parent a/l is a symlink"),
    "hard link to outside": ([hard("h", "../etc/passwd")], "h", "'..' path component"),
    "hard link to an absolute path": ([hard("h", "/etc/shadow")], "h", "absolute path"),
    "hard link to a missing member": ([hard("h", "nowhere")], "h", "not a regular file that comes earlier"),
    "hard link to a later member": ([hard("h", "later"), reg("later")], "h", "not a regular file that comes earlier"),
    "hard link to a symlink": ([sym("s", "/etc/shadow"), hard("t", "s")], "t", "not a regular file that comes earlier"),
    "hard link to a directory": ([directory("d"), hard("h", "d")], "h", "not a regular file that comes earlier"),
    "hard link to a hard link": ([reg("a"), hard("b", "a"), hard("c", "b")], "c", "not a regular file that comes earlier"),
    "hard link through a symlinked parent": ([sym("s", "/etc"), hard("t", "s/shadow")], "t", "not a regular file that comes earlier"),
    "character device": ([(info("dev", tarfile.CHRTYPE), None)], "dev", "chardev nodes are refused"),
    "block device": ([(info("disk", tarfile.BLKTYPE), None)], "disk", "blockdev nodes are refused"),
    "fifo": ([(info("pipe", tarfile.FIFOTYPE), None)], "pipe", "fifo nodes are refused"),
    "setuid": ([reg("suid", mode=0o4755)], "suid", "setuid/setgid"),
    "setgid": ([reg("sgid", mode=0o2755)], "sgid", "setuid/setgid"),
    "type-changing duplicate": ([directory("x"), reg("x")], "x", "first as a dir, then as a file"),
    "duplicate": ([reg("x"), reg("x")], "x", "appears twice"),
    "file as a parent": ([reg("f"), reg("f/g")], "f/g", "is a file, not a directory"),
    "hard link as a parent, after a sibling's children": (
        [directory("a"), reg("a/x"), reg("f"), hard("g", "f"), reg("g/x")], "g/x", "its parent g is a hardlink, not a directory"),
    "reserved staging name": ([reg(".persist-staging/x")], ".persist-staging/x", "reserved"),
    "dot component": ([reg("a/./b")], "a/./b", "not a canonical path"),
    "overlong component": ([reg("n" * 256)], "n" * 256, "longer than 255"),
    "overlong path": ([reg("/".join(["p" * 200] * 21))], None, "longer than 4095"),
    "empty symlink target": ([sym("s", "")], "s", "empty target"),
    "file capability": ([xattr_file("ping", "security.capability", b"\x01\x00\x00\x02\x00\x20\x00\x00")], "ping",
                        "extended attribute security.capability grants privileges"),
    "trusted xattr": ([xattr_file("d", "trusted.overlay.opaque", b"y")], "d", "trusted.overlay.opaque grants privileges"),
    "SMACK exec label": ([xattr_file("tool", "security.SMACK64EXEC", b"_")], "tool", "security.SMACK64EXEC grants privileges"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_restore_check_refuses_malicious_member_naming_member_and_rule(case):
    members, member, rule = MALICIOUS[case]
    with pytest.raises(UnsafeMember) as refused:
        check(*members)
    if member is not None:
        assert refused.value.member == member
    assert rule in refused.value.rule


def test_root_that_is_a_symlink_is_refused():
    with pytest.raises(UnsafeMember, match="volume root must be a directory"):
        feed(TreeDigest(SafetyChecker()), crafted(sym(".", "/")))


def test_special_files_and_setuid_pass_when_explicitly_allowed():
    check(xattr_file("ping", "security.capability", b"\x01"), (info("pipe", tarfile.FIFOTYPE), None), reg("suid", mode=0o4755), allow_special=True)


def test_ordinary_xattrs_and_selinux_labels_pass():
    check(xattr_file("a", "user.comment", b"hello"), xattr_file("b", "security.selinux", b"system_u:object_r:container_file_t:s0"))


def test_symlinks_with_leading_dot_dots_that_stay_inside_pass():
    check(directory("a"), directory("a/b"), sym("a/b/sib", "../c/./d"), sym("a/b/top", "../../f"), sym("a/here", "./b//top"), reg("f"))


def test_ordinary_links_pass():
    check(sym("abs", "/usr/share/zoneinfo/UTC"), sym("dangling", "nowhere"), reg("f"), hard("h", "f"), directory("sub"), sym("sub/up", "../f"))


def test_a_real_gnu_tar_archive_of_an_ordinary_tree_passes(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "file").write_text("x")
    (tmp_path / "d" / "link").symlink_to("file")
    feed(TreeDigest(SafetyChecker()), gnu_tar(tmp_path))


def test_a_file_that_is_a_prefix_of_a_later_name_is_not_its_parent():
    check(reg("a"), reg("a-b/c"), directory("a.d"), reg("a.d/x"), directory("b"), reg("b/a"), reg("b/a.x/y"))


def test_a_path_repeated_after_others_is_refused_as_out_of_order():
    with pytest.raises(NotCanonicalOrder, match="member x comes after x/y"):
        check(directory("x"), reg("x/y"), reg("x"))


def test_members_out_of_canonical_order_are_refused_by_the_checker_alone():
    """The checker relies on the order for its rules, so it enforces it even without a digest."""
    with pytest.raises(NotCanonicalOrder, match="member a comes after b"):
        feed(SafetyChecker(), crafted(ROOT, reg("b"), reg("a")))


def member(path, kind="file", linkname=b""):
    entry = Member()
    entry.path, entry.kind, entry.mode, entry.linkname, entry.xattrs = path, kind, 0o644, linkname, {}
    return entry


def test_hard_links_find_earlier_files_in_every_block_of_the_table(monkeypatch):
    """With blocks of 64 bytes, 300 files fill many compressed blocks: a hard link finds any
    of them, first, middle and last of a block, and nothing else."""
    monkeypatch.setattr(_member_safety._RegularFiles, "BLOCK", 64)
    names = [b"d%02d/f%03d" % (index // 50, index) for index in range(300)]
    checker = SafetyChecker()
    checker.check(member(b".", "dir"))
    for index, name in enumerate(names):
        if index % 50 == 0:
            checker.check(member(name.split(b"/")[0], "dir"))
        checker.check(member(name))
    assert len(checker._files._blocks) > 30
    checker.check(member(b"h", "dir"))
    for number, target in enumerate(names + [names[0], names[-1]]):
        checker.check(member(b"h/%04d" % number, "hardlink", target))
    for missing in (b"a", b"d00", b"d00/f", b"d00/f0000", b"d05/f29", b"d06/f300", b"h", b"z"):
        with pytest.raises(UnsafeMember, match="not a regular file that comes earlier"):
            checker.check(member(b"i/" + missing, "hardlink", missing))


def test_the_safety_rules_hold_a_few_bytes_per_member():
    """100,000 files in 1,000 directories: what the checker keeps, with the tracemalloc
    overhead of its bookkeeping, is a few bytes a file (a table of every path took 130)."""
    checker = SafetyChecker()
    checker.check(member(b".", "dir"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for directory_number in range(1000):
            directory_path = b"uploads/2025/user-%04d" % directory_number
            checker.check(member(directory_path, "dir"))
            for file_number in range(100):
                checker.check(member(b"%s/IMG_%08d.jpg" % (directory_path, file_number)))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 16 * 100000, "the checker holds %d bytes for 100,000 files" % held


def test_names_that_do_not_compress_are_kept_as_digests_and_still_found():
    """A hostile archive's names may be made not to compress: the table keeps 16-byte digests
    of them instead, so each costs about as little whatever its name, and lookups still find
    exactly the files that came."""
    rng = random.Random(7)
    names = sorted(b"d/%s" % binascii.hexlify(rng.getrandbits(512).to_bytes(64, "big")) for _name in range(3000))
    checker = SafetyChecker()
    checker.check(member(b".", "dir"))
    checker.check(member(b"d", "dir"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for name in names:
            checker.check(member(name))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(block[0] for block in checker._files._blocks) and len(checker._files._blocks) > 80
    assert held < 40 * len(names), "%d bytes a name of 130 bytes" % (held // len(names))
    checker.check(member(b"h", "dir"))
    for number, target in enumerate(names[::97] + [names[-1]]):
        checker.check(member(b"h/%04d" % number, "hardlink", target))
    for number, missing in enumerate([names[0][:-1], names[5] + b"0", b"d/" + b"f" * 128]):
        with pytest.raises(UnsafeMember, match="not a regular file that comes earlier"):
            checker.check(member(b"i/%d" % number, "hardlink", missing))


def test_a_digest_found_across_two_others_does_not_count(monkeypatch):
    table = _member_safety._RegularFiles()
    digests = {b"a": b"A" * 8 + b"B" * 8, b"b": b"B" * 8 + b"C" * 8, b"c": b"C" * 8 + b"D" * 8, b"bc": b"B" * 8 + b"C" * 8}
    monkeypatch.setattr(table, "_digest", digests.get)
    table._first_keys, table._blocks = [b"a"], [(True, digests[b"a"] + digests[b"c"])]
    assert b"a" in table and b"c" in table
    assert b"b" not in table  # its digest is the last half of a's and the first of c's
