# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_restore refuses hostile archives whole, naming the member and the rule, and the
target volume stays exactly as it was (entries, root times, no staging leftovers).

Every archive here has a sidecar that describes it correctly (size, sha256 and, where the
members allow computing one, tree digest), so only the safety rules can refuse it.
"""

from __future__ import annotations

import os
import tarfile

import pytest

import adhoc_process
import crafted_archives as crafted
from crafted_archives import member, root
from volume_trees import capture, differences, seed_target, snapshot, write_file

FILE = tarfile.REGTYPE
DIR = tarfile.DIRTYPE
SYMLINK = tarfile.SYMTYPE
HARDLINK = tarfile.LNKTYPE


@pytest.fixture(scope="module")
def template(module_engine, module_backup_dir):
    """The sidecar of a real backup, the model of every crafted archive's sidecar."""
    name = module_engine.create_volume("malicious-template")
    write_file(module_engine.mountpoint(name) / "file", b"real")
    result = adhoc_process.run("volume_backup", {"volume": name, "dest": str(module_backup_dir)})
    assert result["changed"] is True, result
    return crafted.read_sidecar(result["archive"]["path"])


def _target(engine, suffix):
    name = engine.create_volume(suffix)
    seed_target(engine.mountpoint(name))
    return name, capture(engine.mountpoint(name))


def _assert_untouched(engine, name, before):
    after = capture(engine.mountpoint(name))
    assert differences(before["tree"], after["tree"]) == []
    assert after["root"] == before["root"]
    assert after["listing"] == before["listing"]
    assert engine.helpers_on(name) == []


# (id, members, the member named in the refusal, words of the rule)
CASES = [
    ("absolute-path", [root(), member("/etc/persist-evil", data=b"x")], "/etc/persist-evil", "absolute path"),
    ("dot-dot", [root(), member("./../escaped", data=b"x")], "./../escaped", "'..' path component"),
    ("dot-dot-inside", [root(), member("./sub", DIR), member("./sub/../../escaped", data=b"x")], "./sub/../../escaped", "'..' path component"),
    ("symlink-escape", [root(), member("./link", SYMLINK, linkname="../../../etc")], "link", "symlink target ../../../etc leaves the volume"),
    ("symlink-escape-from-subdir", [root(), member("./sub", DIR), member("./sub/up", SYMLINK, linkname="../../outside")],
     "sub/up", "leaves the volume"),
    ("write-through-absolute-symlink", [root(), member("./lnk", SYMLINK, linkname="/"), member("./lnk/etc/cron.d/evil", data=b"* * * * * root sh\n")],
     "lnk/etc/cron.d/evil", "its parent lnk is a symlink in the archive"),
    ("write-through-inner-symlink", [root(), member("./a", DIR), member("./b", SYMLINK, linkname="a"), member("./b/x", data=b"x")],
     "b/x", "its parent b is a symlink in the archive"),
    ("write-through-a-file", [root(), member("./f", data=b"file"), member("./f/x", data=b"x")], "f/x", "its parent f is a file, not a directory"),
    ("hard-link-absolute", [root(), member("./shadow", HARDLINK, linkname="/etc/shadow")], "shadow", "hard link target /etc/shadow: absolute path"),
    ("hard-link-dot-dot", [root(), member("./up", HARDLINK, linkname="../outside")], "up", "hard link target ../outside: '..' path component"),
    ("hard-link-to-symlink", [root(), member("./a", SYMLINK, linkname="/etc/shadow"), member("./b", HARDLINK, linkname="./a")],
     "b", "hard link to a, which is not a regular file that comes earlier in the archive"),
    ("hard-link-to-later-member", [root(), member("./a", HARDLINK, linkname="./z"), member("./z", data=b"z")],
     "a", "hard link to z, which is not a regular file that comes earlier in the archive"),
    ("char-device", [root(), member("./null", tarfile.CHRTYPE, devmajor=1, devminor=3)], "null", "chardev nodes are refused unless allow_special"),
    ("block-device", [root(), member("./disk", tarfile.BLKTYPE, devmajor=8, devminor=0)], "disk", "blockdev nodes are refused unless allow_special"),
    ("fifo", [root(), member("./pipe", tarfile.FIFOTYPE)], "pipe", "fifo nodes are refused unless allow_special"),
    ("setuid", [root(), member("./sh", data=b"#!/bin/sh\n", mode=0o4755)], "sh", "setuid/setgid bits are refused unless allow_special"),
    ("type-changing-duplicate", [root(), member("./x", data=b"file first"), member("./x", DIR)], "x", "appears twice, first as a file, then as a dir"),
    ("reserved-journal", [root(), member("./.persist-journal", data=b"in x replace\n")], ".persist-journal", "reserved for restore staging"),
    ("reserved-staging", [root(), member("./.persist-staging-0", DIR), member("./.persist-staging-0/x", data=b"x")],
     ".persist-staging-0", "reserved for restore staging"),
    ("root-not-a-directory", [member(".", data=b"not a dir")], ".", "the volume root must be a directory"),
]


@pytest.mark.parametrize("members, shown, rule", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_restore_refuses_hostile_archive_naming_member_and_rule_and_leaves_target_untouched(
    run_module, engine, backup_dir, template, members, shown, rule
):
    archive = crafted.write_backup(backup_dir, "hostile", members, template)
    name, before = _target(engine, "hostile-target")

    result = run_module("volume_restore", volume=name, src=archive)

    assert result.get("failed") is True, result
    assert result["member"] == shown, result
    assert rule in result["rule"], result
    assert "member %s breaks a safety rule" % shown in result["msg"]
    assert rule in result["msg"]
    assert "The target volume was not touched" in result["msg"]
    _assert_untouched(engine, name, before)


def test_refused_archive_never_creates_a_missing_target_even_in_merge_mode(run_module, engine, backup_dir, template):
    archive = crafted.write_backup(backup_dir, "hostile", [root(), member("./lnk", SYMLINK, linkname="/"), member("./lnk/x", data=b"x")], template)
    target = engine.name("hostile-missing")

    for check in (True, False):
        result = run_module("volume_restore", check=check, volume=target, src=archive, mode="merge")
        assert result.get("failed") is True, result
        assert result["member"] == "lnk/x"
    assert engine.inspect(target) is None


def test_crafted_archive_of_safe_members_is_restored(run_module, engine, backup_dir, template):
    """The control: the crafting itself is sound, so the refusals above are the rules' doing."""
    members = [
        root(),
        member("./dir", DIR, mode=0o750),
        member("./dir/file", data=b"safe", mode=0o640, uid=1000, gid=1000),
        member("./dir/hard", HARDLINK, linkname="./dir/file", mode=0o640, uid=1000, gid=1000),
        member("./dir/up", SYMLINK, linkname="../top"),
        member("./top", data=b"top"),
    ]
    archive = crafted.write_backup(backup_dir, "safe", members, template)
    name, _listing = _target(engine, "safe-target")

    result = run_module("volume_restore", volume=name, src=archive)

    assert not result.get("failed"), result
    assert result["changed"] is True
    tree = snapshot(engine.mountpoint(name))
    assert sorted(tree) == [b"", b"dir", b"dir/file", b"dir/hard", b"dir/up", b"top"]
    assert tree[b"dir/file"]["links"] == (b"dir/file", b"dir/hard")
    assert (tree[b"dir/file"]["uid"], tree[b"dir/file"]["mode"]) == (1000, "0o640")
    assert tree[b"dir/up"]["target"] == b"../top"
    again = run_module("volume_restore", volume=name, src=archive)
    assert again["changed"] is False, again["differences"]


def test_special_files_of_a_real_backup_are_restored_only_with_allow_special(run_module, engine, backup_dir):
    source = engine.create_volume("special-source")
    source_root = engine.mountpoint(source)
    os.mkfifo(source_root / "pipe", 0o640)
    write_file(source_root / "tool", b"#!/bin/sh\n")
    os.chmod(source_root / "tool", 0o4755)
    backup = run_module("volume_backup", volume=source, dest=str(backup_dir))
    assert backup["changed"] is True, backup
    name, before = _target(engine, "special-target")

    refused = run_module("volume_restore", volume=name, src=backup["archive"]["path"])
    assert refused.get("failed") is True, refused
    assert refused["member"] == "pipe" and "allow_special" in refused["rule"]
    _assert_untouched(engine, name, before)

    allowed = run_module("volume_restore", volume=name, src=backup["archive"]["path"], allow_special=True)
    assert allowed["changed"] is True, allowed
    assert differences(snapshot(source_root), snapshot(engine.mountpoint(name))) == []
