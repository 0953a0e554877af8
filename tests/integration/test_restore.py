# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.volume_restore: check, diff, real, again; modes, when to restore, refusals."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from volume_trees import differences, fill_random, reserved_leftovers, root_state, snapshot, write_file

# Every test runs with each transport (conftest.data_transport).
pytestmark = pytest.mark.usefixtures("data_transport")


def _source_tree(root):
    """keep (unchanged later), edit (changed later), gone (removed later), dir/inner."""
    write_file(os.path.join(root, "keep"), b"keep me")
    write_file(os.path.join(root, "edit"), b"original")
    write_file(os.path.join(root, "gone"), b"restore me")
    os.mkdir(os.path.join(root, "dir"))
    write_file(os.path.join(root, "dir", "inner"), b"inner")
    os.symlink("inner", os.path.join(root, "dir", "link"))


def _backed_up_volume(run_module, engine, backup_dir, suffix, labels=None):
    name = engine.create_volume(suffix, labels=labels)
    root = engine.mountpoint(name)
    _source_tree(root)
    result = run_module("volume_backup", volume=name, dest=str(backup_dir))
    assert result["changed"] is True, result
    return name, root, result["archive"]


def _drift(root):
    """Make the tree differ from the backup: one entry changed, one removed, one added."""
    write_file(os.path.join(root, "edit"), b"edited since")
    os.unlink(os.path.join(root, "gone"))
    os.mkdir(os.path.join(root, "extra"))
    write_file(os.path.join(root, "extra", "file"), b"only in the volume")


def _assert_same_tree(expected, root):
    assert differences(expected, snapshot(root)) == []
    assert reserved_leftovers(root) == []


def test_restore_into_a_missing_volume_creates_it_as_recorded_check_then_real_then_again(run_module, engine, backup_dir, session_label):
    labels = {"tier": "db", session_label: "restore"}
    source, source_root, archive = _backed_up_volume(run_module, engine, backup_dir, "source", labels=labels)
    expected = snapshot(source_root)
    target = engine.name("created")

    predicted = run_module("volume_restore", check=True, diff=True, volume=target, src=archive["path"])

    assert not predicted.get("failed"), predicted
    assert predicted["changed"] is True
    assert predicted["verified"] is True
    assert "create volume %s with driver local as recorded in the backup" % target in predicted["actions"]
    assert predicted["archive"]["sha256"] == archive["sha256"]
    assert engine.inspect(target) is None

    result = run_module("volume_restore", volume=target, src=archive["path"])

    assert not result.get("failed"), result
    assert result["changed"] is True
    assert result["actions"] == predicted["actions"]
    inspected = engine.inspect(target)
    assert inspected["Driver"] == "local"
    assert inspected["Labels"] == labels
    _assert_same_tree(expected, engine.mountpoint(target))
    assert engine.helpers_on(target) == []

    for check in (True, False):
        again = run_module("volume_restore", check=check, diff=True, volume=target, src=archive["path"])
        assert not again.get("failed"), again
        assert again["changed"] is False
        assert again["verified"] is True
        assert again["skipped_reason"] == "volume %s already equals the archive" % target
        assert (again["differences"]["added"], again["differences"]["changed"], again["differences"]["removed"]) == (0, 0, 0)
    _assert_same_tree(expected, engine.mountpoint(target))
    assert engine.inspect(source) is not None


def test_restore_diff_lists_added_changed_and_removed_and_check_mode_touches_nothing(run_module, engine, backup_dir):
    name, root, archive = _backed_up_volume(run_module, engine, backup_dir, "drift")
    expected = snapshot(root)
    _drift(root)
    before, before_root = snapshot(root), root_state(root)

    predicted = run_module("volume_restore", check=True, diff=True, volume=name, src=archive["path"])

    assert not predicted.get("failed"), predicted
    assert predicted["changed"] is True
    assert predicted["differences"] == {
        "mode": "replace",
        "added": 1, "added_paths": ["gone"],
        "changed": 1, "changed_paths": ["edit"],
        "removed": 2, "removed_paths": ["extra", "extra/file"],
    }
    prepared = predicted["diff"]["prepared"]
    assert "+ gone\n" in prepared and "~ edit\n" in prepared and "- extra\n" in prepared and "- extra/file\n" in prepared
    assert differences(before, snapshot(root)) == []
    assert root_state(root) == before_root
    assert engine.helpers_on(name) == []

    result = run_module("volume_restore", diff=True, volume=name, src=archive["path"])

    assert result["changed"] is True, result
    assert result["differences"] == predicted["differences"]
    _assert_same_tree(expected, root)
    again = run_module("volume_restore", volume=name, src=archive["path"])
    assert again["changed"] is False, again


def test_restore_merge_keeps_extra_entries_and_is_idempotent_then_replace_removes_them(run_module, engine, backup_dir):
    name, root, archive = _backed_up_volume(run_module, engine, backup_dir, "merge")
    expected = snapshot(root)
    _drift(root)
    extra = {path: entry for path, entry in snapshot(root).items() if path.startswith(b"extra")}

    predicted = run_module("volume_restore", check=True, volume=name, src=archive["path"], mode="merge")
    assert predicted["changed"] is True, predicted
    assert predicted["differences"]["kept_extra"] == 2
    assert predicted["differences"]["removed"] == 0

    merged = run_module("volume_restore", volume=name, src=archive["path"], mode="merge")

    assert not merged.get("failed"), merged
    assert merged["changed"] is True
    after = snapshot(root)
    assert differences({**expected, **extra}, after) == []
    assert reserved_leftovers(root) == []
    for check in (True, False):
        again = run_module("volume_restore", check=check, volume=name, src=archive["path"], mode="merge")
        assert again["changed"] is False, again
        assert again["differences"]["kept_extra"] == 2
    assert differences(after, snapshot(root)) == []

    replaced = run_module("volume_restore", volume=name, src=archive["path"], mode="replace")
    assert replaced["changed"] is True, replaced
    assert replaced["differences"]["removed_paths"] == ["extra", "extra/file"]
    _assert_same_tree(expected, root)
    again = run_module("volume_restore", volume=name, src=archive["path"], mode="replace")
    assert again["changed"] is False, again


def test_restore_when_missing_or_empty_spares_a_volume_with_data_and_fills_an_empty_one(run_module, engine, backup_dir):
    source, source_root, archive = _backed_up_volume(run_module, engine, backup_dir, "dr-source")
    expected = snapshot(source_root)
    occupied = engine.create_volume("dr-occupied")
    write_file(engine.mountpoint(occupied) / "precious", b"do not overwrite")
    before, before_root = snapshot(engine.mountpoint(occupied)), root_state(engine.mountpoint(occupied))
    empty = engine.create_volume("dr-empty")

    for check in (True, False):
        spared = run_module("volume_restore", check=check, volume=occupied, src=archive["path"], restore_when="missing_or_empty")
        assert not spared.get("failed"), spared
        assert spared["changed"] is False
        assert spared["skipped_reason"] == "volume %s holds 1 entry and restore_when is missing_or_empty" % occupied
        assert "verified" not in spared  # it does not even read the archive
    assert differences(before, snapshot(engine.mountpoint(occupied))) == []
    assert root_state(engine.mountpoint(occupied)) == before_root

    predicted = run_module("volume_restore", check=True, volume=empty, src=archive["path"], restore_when="missing_or_empty")
    assert predicted["changed"] is True, predicted
    assert snapshot(engine.mountpoint(empty))[b""] and len(snapshot(engine.mountpoint(empty))) == 1
    filled = run_module("volume_restore", volume=empty, src=archive["path"], restore_when="missing_or_empty")
    assert filled["changed"] is True, filled
    _assert_same_tree(expected, engine.mountpoint(empty))
    again = run_module("volume_restore", volume=empty, src=archive["path"], restore_when="missing_or_empty")
    assert again["changed"] is False, again


def test_restore_when_always_restores_an_equal_volume_again(run_module, engine, backup_dir):
    name, root, archive = _backed_up_volume(run_module, engine, backup_dir, "always")
    expected = snapshot(root)
    # A file inode that a real restore replaces (the content stays the same).
    inode_before = os.lstat(os.path.join(root, "keep")).st_ino

    predicted = run_module("volume_restore", check=True, volume=name, src=archive["path"], restore_when="always")
    assert predicted["changed"] is True, predicted
    assert os.lstat(os.path.join(root, "keep")).st_ino == inode_before

    result = run_module("volume_restore", volume=name, src=archive["path"], restore_when="always")

    assert result["changed"] is True, result
    assert result["skipped_reason"] is None
    assert os.lstat(os.path.join(root, "keep")).st_ino != inode_before
    _assert_same_tree(expected, root)


def test_restore_into_an_empty_volume_reads_the_archive_once_and_an_equal_empty_one_changes_nothing(run_module, engine, backup_dir):
    _source, source_root, archive = _backed_up_volume(run_module, engine, backup_dir, "once-source")
    expected = snapshot(source_root)
    empty = engine.create_volume("once-empty")

    filled = run_module("volume_restore", volume=empty, src=archive["path"])

    assert filled["changed"] is True and filled["verified"] is True, filled
    # Verified while extracted: no separate verification read before it.
    assert "verify_seconds" not in filled and filled["extract_seconds"] > 0, filled
    assert filled["differences"]["added"] == len(expected) - 1, filled["differences"]
    _assert_same_tree(expected, engine.mountpoint(empty))
    again = run_module("volume_restore", volume=empty, src=archive["path"])
    assert again["changed"] is False and again["skipped_reason"] == "volume %s already equals the archive" % empty, again

    # The backup of an empty volume, restored into another empty volume with the same root.
    hollow = engine.create_volume("once-hollow")
    backed_up = run_module("volume_backup", volume=hollow, dest=str(backup_dir))
    assert backed_up["changed"] is True, backed_up
    other = engine.create_volume("once-other")
    hollow_root = os.stat(engine.mountpoint(hollow))
    os.chmod(engine.mountpoint(other), hollow_root.st_mode & 0o7777)
    os.utime(engine.mountpoint(other), ns=(hollow_root.st_atime_ns, hollow_root.st_mtime_ns))
    unchanged = run_module("volume_restore", volume=other, src=backed_up["archive"]["path"])
    assert unchanged["changed"] is False and unchanged["verified"] is True, unchanged
    assert unchanged["skipped_reason"] == "volume %s already equals the archive" % other, unchanged
    assert os.listdir(engine.mountpoint(other)) == []


def test_a_corrupt_archive_restored_into_an_empty_volume_in_one_pass_leaves_it_empty(run_module, engine, backup_dir):
    _source, _root, archive = _backed_up_volume(run_module, engine, backup_dir, "once-corrupt")
    with open(archive["path"], "r+b") as damaged:
        damaged.seek(os.path.getsize(archive["path"]) // 2)
        byte = damaged.read(1)
        damaged.seek(-1, os.SEEK_CUR)
        damaged.write(bytes([byte[0] ^ 0xFF]))
    empty = engine.create_volume("once-target")

    refused = run_module("volume_restore", volume=empty, src=archive["path"])

    assert refused.get("failed") is True, refused
    assert "The target volume was not changed." in refused["msg"], refused["msg"]
    # Nothing at all: the staging tree of the one-pass read is gone too.
    assert os.listdir(engine.mountpoint(empty)) == []


def test_a_restore_into_a_volume_too_small_for_it_fails_with_tars_error_and_changes_nothing(run_module, engine, backup_dir):
    """The extraction's failure is reported as such (not as a staged tree that reads back
    wrong), the volume keeps its entries, and no helper is left: the one held ready to read
    the staged tree back is removed unreleased."""
    source = engine.create_volume("small-source")
    fill_random(engine.mountpoint(source), "big", 3 << 20)
    archive = run_module("volume_backup", volume=source, dest=str(backup_dir))["archive"]["path"]
    target = engine.create_volume("small-target", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    root = engine.mountpoint(target)
    write_file(os.path.join(root, "old"), b"kept")
    before = snapshot(root)

    refused = run_module("volume_restore", volume=target, src=archive)

    assert refused.get("failed") is True, refused
    assert "while extracting" in refused["msg"] and target in refused["msg"], refused["msg"]
    assert "Wrote only" in refused["msg"], refused["msg"]  # GNU tar's words for a full file system
    # ... and what they mean, with the room the archive needs (3 MiB of data).
    assert "Volume %s has no room left: the staging tree needs the archive's 3.0 MiB (3145728 bytes) of data free" % target \
        in refused["msg"], refused["msg"]
    assert "The target volume was not changed." in refused["msg"], refused["msg"]
    _assert_same_tree(before, root)
    assert engine.helpers_on(target) == []


def test_restore_with_create_false_into_a_missing_volume_fails_and_creates_nothing(run_module, engine, backup_dir):
    _source, _listing, archive = _backed_up_volume(run_module, engine, backup_dir, "nocreate-source")
    target = engine.name("nocreate")

    for check in (True, False):
        result = run_module("volume_restore", check=check, volume=target, src=archive["path"], create=False)
        assert result.get("failed") is True, result
        assert "Volume %s does not exist and create is false" % target in result["msg"]
    assert engine.inspect(target) is None


def test_restore_refuses_a_target_mounted_by_a_running_container_naming_it(run_module, engine, backup_dir):
    name, root, archive = _backed_up_volume(run_module, engine, backup_dir, "in-use")
    _drift(root)
    before, before_root = snapshot(root), root_state(root)
    # Even a read-only user would see its files change under it.
    user = engine.container("user", name, state="running", read_only=True)

    for check in (True, False):
        result = run_module("volume_restore", check=check, volume=name, src=archive["path"])
        assert result.get("failed") is True, result
        assert user.name in result["msg"] and name in result["msg"]
        assert [entry["name"] for entry in result["containers"]] == [user.name]
    assert differences(before, snapshot(root)) == []
    assert root_state(root) == before_root
    assert engine.helpers_on(name) == []


def test_restore_from_a_directory_picks_the_latest_complete_backup_of_the_source_volume(run_module, engine, backup_dir):
    source, root, first = _backed_up_volume(run_module, engine, backup_dir, "pick")
    write_file(os.path.join(root, "second-state"), b"newer")
    second = run_module("volume_backup", volume=source, dest=str(backup_dir))
    assert second["changed"] is True, second
    expected = snapshot(root)
    # Newer than both: a backup of another volume, an incomplete and a damaged one of this one.
    with open(first["sidecar"]) as handle:
        metadata = json.load(handle)
    newer = {"created": "2099-01-01T00:00:00Z"}
    other = os.path.join(str(backup_dir), "another-20990101T000000Z.tar.zst")
    shutil.copyfile(first["path"], other)
    with open(other + ".json", "w") as handle:
        json.dump(dict(metadata, volume=dict(metadata["volume"], name=source + "-another"), **newer), handle)
    shutil.copyfile(first["path"], os.path.join(str(backup_dir), source + "-20990101T000001Z.tar.zst"))
    damaged = os.path.join(str(backup_dir), source + "-20990101T000002Z.tar.zst")
    shutil.copyfile(first["path"], damaged)
    with open(damaged + ".json", "w") as handle:
        json.dump(dict(metadata, archive=dict(metadata["archive"], size=1), **newer), handle)
    target = engine.name("picked")

    result = run_module("volume_restore", volume=target, src=str(backup_dir), source_volume=source)

    assert not result.get("failed"), result
    assert result["changed"] is True
    assert result["archive"]["path"] == second["archive"]["path"]
    _assert_same_tree(expected, engine.mountpoint(target))

    # Without source_volume, the target's own backups are looked for: there are none.
    missing = run_module("volume_restore", volume=engine.name("no-backups"), src=str(backup_dir))
    assert missing.get("failed") is True, missing
    assert "no complete backup of volume %s" % engine.name("no-backups") in missing["msg"]


def test_restore_refuses_an_archive_without_its_sidecar_and_touches_nothing(run_module, engine, backup_dir):
    name, root, archive = _backed_up_volume(run_module, engine, backup_dir, "no-sidecar")
    _drift(root)
    lonely = os.path.join(str(backup_dir), "lonely.tar.zst")
    shutil.copyfile(archive["path"], lonely)
    before, before_root = snapshot(root), root_state(root)
    missing = engine.name("no-sidecar-new")

    for target in (name, missing):
        result = run_module("volume_restore", volume=target, src=lonely)
        assert result.get("failed") is True, result
        assert "The archive %s cannot be restored: no metadata sidecar" % lonely in result["msg"]
    assert differences(before, snapshot(root)) == []
    assert root_state(root) == before_root
    assert engine.inspect(missing) is None


def test_restore_merge_replaces_entries_of_another_type_and_never_writes_through_a_symlink(run_module, engine, backup_dir):
    name, root, archive = _backed_up_volume(run_module, engine, backup_dir, "merge-types")
    expected = snapshot(root)
    # In the target: "dir" is a symlink to another directory of the volume, by the absolute
    # path a helper container sees and by a relative one; "keep" is a directory.
    shutil.rmtree(os.path.join(root, "dir"))
    os.mkdir(os.path.join(root, "victim"))
    write_file(os.path.join(root, "victim", "untouched"), b"must stay as it is")
    os.symlink("/volume/victim", os.path.join(root, "dir"))
    os.unlink(os.path.join(root, "keep"))
    os.mkdir(os.path.join(root, "keep"))
    write_file(os.path.join(root, "keep", "nested"), b"a directory where the archive has a file")
    victim = {path: entry for path, entry in snapshot(root).items() if path.startswith(b"victim")}

    result = run_module("volume_restore", volume=name, src=archive["path"], mode="merge")

    assert result["changed"] is True, result
    after = snapshot(root)
    assert differences({**expected, **victim}, after) == []
    assert reserved_leftovers(root) == []
    again = run_module("volume_restore", volume=name, src=archive["path"], mode="merge")
    assert again["changed"] is False, again
