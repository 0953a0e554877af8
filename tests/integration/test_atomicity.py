# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs killed with SIGKILL (the ``ansible`` process and the module's python) leave either the
previous state or a complete result, and the next run cleans up after them.

Kill moments are random (the seed is in every assertion message) or exact: a watch on the
directory (inotify) reports the moment a name appears and the run is killed right then.
"""

from __future__ import annotations

import os
import random
import shutil
import socket

import pytest

import adhoc_process
from conftest import TEST_IMAGE
from volume_trees import differences, fill_random, reserved_leftovers, set_attributes, snapshot, write_file

KILLS = 5
MIB = 1 << 20


def _archives(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tar.zst") and not name.startswith("."))


def _partials(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith(".persist-partial-"))


def _without_sidecar(directory):
    return [name for name in _archives(directory) if not os.path.exists(os.path.join(str(directory), name + ".json"))]


@pytest.fixture
def seed():
    return int.from_bytes(os.urandom(4), "big")


def test_backup_killed_mid_stream_leaves_no_archive_without_sidecar_and_next_run_removes_partials(
    run_module, engine, backup_dir, seed
):
    rng = random.Random(seed)
    name = engine.create_volume("kill-backup")
    root = engine.mountpoint(name)
    for number in range(4):
        fill_random(root, "random-%d" % number, 50 * MIB)
    dest = backup_dir / "archives"
    dest.mkdir()

    for attempt in range(KILLS):
        delay = rng.uniform(0, 2.0)
        with adhoc_process.DirectoryWatch(dest) as watch:
            process = adhoc_process.start("volume_backup", {
                "volume": name, "dest": str(dest), "if_changed": False, "name_template": "{volume}-kill%d-{timestamp}" % attempt,
            })
            started = watch.wait_for(lambda created: created.startswith(".persist-partial-"), timeout=60)
            assert started is not None, "seed %d: the backup never started writing" % seed
            watch.wait_for(lambda created: False, timeout=delay)
            adhoc_process.kill_tree(process)
        assert _without_sidecar(dest) == [], "seed %d, kill %d after %.2fs of streaming" % (seed, attempt, delay)

    leftovers = _partials(dest)
    completed = _archives(dest)
    result = run_module("volume_backup", volume=name, dest=str(dest), if_changed=False)

    assert not result.get("failed"), result
    assert sorted(result.get("removed_temporary_files", [])) == [os.path.join(str(dest), partial) for partial in leftovers]
    assert _partials(dest) == []
    assert _archives(dest) == sorted(completed + [os.path.basename(result["archive"]["path"])])
    listing = run_module("backup_info", path=str(dest))
    assert [item["status"] for item in listing["backups"]] == ["complete"] * len(completed + [result]), (seed, listing["backups"])
    assert engine.helpers_on(name) == []


def test_backup_killed_between_naming_its_sidecar_and_its_archive_leaves_no_archive_without_sidecar(
    run_module, engine, backup_dir
):
    """The sidecar gets its final name first, then the archive: a kill between the two may
    leave a sidecar alone (listed nowhere, removed by a later run once stale), never an
    archive that looks like a backup without its metadata."""
    name = engine.create_volume("kill-window")
    engine.fill(name)
    dest = backup_dir / "archives"
    dest.mkdir()

    for attempt in range(8):
        with adhoc_process.DirectoryWatch(dest) as watch:
            process = adhoc_process.start("volume_backup", {
                "volume": name, "dest": str(dest), "if_changed": False, "name_template": "{volume}-window%d-{timestamp}" % attempt,
            })
            final = watch.wait_for(lambda created: created.endswith(".tar.zst.json") and not created.startswith("."), timeout=60)
            adhoc_process.kill_tree(process)
        assert final is not None, "the backup never gave its sidecar a final name"
        assert _without_sidecar(dest) == [], "killed right after %s appeared: %s" % (final, sorted(os.listdir(dest)))

    listed = run_module("backup_info", path=str(dest))
    assert all(item["status"] == "complete" for item in listed["backups"]), listed["backups"]
    # Whatever the kills left, the next run leaves only complete backups and no temporary files.
    result = run_module("volume_backup", volume=name, dest=str(dest), if_changed=False)
    assert not result.get("failed"), result
    assert _without_sidecar(dest) == [] and _partials(dest) == []


# -- restore ---------------------------------------------------------------------------------


def _wipe(root):
    for entry in os.listdir(root):
        path = os.path.join(root, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


class _Trees:
    """An old tree (what the target holds) and a new tree (what the archive holds), both
    deterministic so that the old one can be rebuilt for every kill."""

    def __init__(self, big_files, small_files):
        generator = random.Random(20261127)
        self.old_big = [generator.randbytes(big_files[1]) for _index in range(big_files[0])]
        self.new_big = [generator.randbytes(big_files[1]) for _index in range(big_files[0])]
        self.small_files = small_files

    def _build(self, root, big, tag):
        root = str(root)
        for number, content in enumerate(big):
            write_file(os.path.join(root, "big-%d" % number), content)
        os.mkdir(os.path.join(root, "dir-" + tag))
        write_file(os.path.join(root, "dir-" + tag, "inside"), tag.encode())
        for number in range(self.small_files):
            write_file(os.path.join(root, "small-%s-%03d" % (tag if number % 2 else "both", number)), b"%s %d" % (tag.encode(), number))
        set_attributes(os.path.join(root, "dir-" + tag, "inside"), mtime_ns=1700000000123456789)
        for entry in os.listdir(root):
            set_attributes(os.path.join(root, entry), mtime_ns=1700000000123456789)

    def build_old(self, root):
        _wipe(str(root))
        self._build(root, self.old_big, "old")

    def build_new(self, root):
        self._build(root, self.new_big, "new")


def _backed_up_new_tree(run_module, engine, backup_dir, trees, suffix):
    source = engine.create_volume(suffix + "-source")
    trees.build_new(engine.mountpoint(source))
    backup = run_module("volume_backup", volume=source, dest=str(backup_dir))
    assert backup["changed"] is True, backup
    return snapshot(engine.mountpoint(source)), backup["archive"]["path"]


def _state_of(tree, old, new):
    if differences(old, tree) == []:
        return "old"
    if differences(new, tree) == []:
        return "new"
    return None


def test_restore_killed_at_random_moments_leaves_old_or_new_tree_and_next_run_finishes_clean(
    run_module, engine, backup_dir, seed
):
    rng = random.Random(seed)
    trees = _Trees(big_files=(3, 20 * MIB), small_files=40)
    new, archive = _backed_up_new_tree(run_module, engine, backup_dir, trees, "kill-restore")
    target = engine.create_volume("kill-restore-target")
    root = engine.mountpoint(target)
    trees.build_old(root)
    old = snapshot(root)
    seen = []

    for _attempt in range(KILLS):
        trees.build_old(root)
        delay = rng.uniform(0.5, 5.0)
        process = adhoc_process.start("volume_restore", {"volume": target, "src": archive})
        finished = adhoc_process.wait_until(lambda: process.poll() is not None, timeout=delay)
        adhoc_process.kill_tree(process)
        # A helper that was already working goes on until its command ends.
        engine.wait_for_helpers(target)
        state = _state_of(snapshot(root), old, new)
        seen.append((round(delay, 2), state, reserved_leftovers(root), finished))
        assert state is not None, "seed %d: after a kill at %.2fs the target is neither the old tree (%s) nor the new (%s)" % (
            seed, delay, differences(old, snapshot(root)), differences(new, snapshot(root)))

        result = run_module("volume_restore", volume=target, src=archive)
        assert not result.get("failed"), (seed, seen, result.get("msg"), result)
        assert differences(new, snapshot(root)) == [], (seed, seen)
        assert reserved_leftovers(root) == [], (seed, seen)
    assert engine.helpers_on(target) == []


def _swap_record(engine, volume, owner):
    """The engine's record of a staged run into ``volume``, as a run owned by ``owner`` left it."""
    return engine.client.containers.create(
        TEST_IMAGE, ["true"], name="persist-swap-" + volume, network_mode="none",
        labels={
            "persist.docker.swap": volume, "persist.docker.swap.token": "0123456789ab", "persist.docker.swap.mode": "replace",
            "persist.docker.swap.secret": "0" * 64, "persist.docker.swap.owner": owner, "persist.docker.swap.created": "1796000000",
            "persist.docker.swap.special": "false",
        },
    )


def test_a_swap_record_left_by_a_killed_run_after_its_swap_is_cleared_and_one_of_a_live_run_stops_the_next(
    run_module, engine, backup_dir
):
    """A run killed after its swap ended, before it removed its record, leaves the record and
    nothing in the volume: the next run removes it (its owner is gone) and restores. A record
    whose owner still runs is never taken over."""
    trees = _Trees(big_files=(1, MIB), small_files=4)
    new, archive = _backed_up_new_tree(run_module, engine, backup_dir, trees, "stale-record")
    target = engine.create_volume("stale-record-target")
    root = engine.mountpoint(target)
    trees.build_old(root)
    with open("/proc/self/stat") as stat:
        started = stat.read().rsplit(")", 1)[1].split()[19]
    live = _swap_record(engine, target, "%s/%d/%s" % (socket.gethostname(), os.getpid(), started))

    refused = run_module("volume_restore", volume=target, src=archive)

    assert refused.get("failed") is True, refused
    assert "holds the record of another staged restore or copy into volume %s" % target in refused["msg"], refused["msg"]
    assert reserved_leftovers(root) == []
    live.remove(force=True)
    _swap_record(engine, target, "%s/1/not-the-start-time-of-pid-1" % socket.gethostname())

    restored = run_module("volume_restore", volume=target, src=archive)

    assert restored["changed"] is True and not restored.get("failed"), restored
    assert differences(new, snapshot(root)) == [] and reserved_leftovers(root) == []
    assert engine.client.containers.list(all=True, filters={"name": "persist-swap-" + target}) == []


@pytest.mark.parametrize(
    "moment, appears",
    [
        ("during-extraction", lambda name: name.startswith(".persist-staging-")),
        ("at-the-journal", lambda name: name == ".persist-journal"),
        ("while-moving-aside", lambda name: name.startswith(".persist-old-")),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_restore_crash_with_its_helper_is_finished_by_the_next_run(run_module, engine, backup_dir, moment, appears):
    """A crash (module and helper container killed at once, as on power loss) at an exact
    step: the tree is old or new, or a journal says how to finish; the next run finishes."""
    # Many root entries make the swap take long enough to be caught half way.
    trees = _Trees(big_files=(2, 10 * MIB), small_files=300)
    new, archive = _backed_up_new_tree(run_module, engine, backup_dir, trees, "crash-" + moment)
    target = engine.create_volume("crash-%s-target" % moment)
    root = engine.mountpoint(target)
    trees.build_old(root)
    old = snapshot(root)

    with adhoc_process.DirectoryWatch(root) as watch:
        process = adhoc_process.start("volume_restore", {"volume": target, "src": archive})
        appeared = watch.wait_for(appears, timeout=120)
        engine.kill_helpers(target)
        adhoc_process.kill_tree(process)
    assert appeared is not None, "the restore never reached the step %s" % moment
    engine.wait_for_helpers(target)
    journal = os.path.exists(os.path.join(str(root), ".persist-journal"))
    state = _state_of(snapshot(root), old, new)
    assert journal or state is not None, differences(new, snapshot(root))
    if moment != "during-extraction":
        assert journal, "the crash came after the journal was written; it must still be there"
        # A half-swapped volume is a mix of two trees: no backup may be taken of it.
        refused = run_module("volume_backup", volume=target, dest=str(backup_dir / "mixed"))
        assert refused.get("failed") is True, refused
        assert "interrupted" in refused["msg"] and target in refused["msg"]
        assert not (backup_dir / "mixed").exists()

    result = run_module("volume_restore", volume=target, src=archive)

    assert not result.get("failed"), result
    assert result["finished_interrupted"] is journal
    assert differences(new, snapshot(root)) == []
    assert reserved_leftovers(root) == []
    again = run_module("volume_restore", volume=target, src=archive)
    assert again["changed"] is False, again


def test_restore_killed_on_an_already_restored_volume_leaves_no_staging_behind(run_module, engine, backup_dir):
    """restore_when: always, killed while extracting into a volume that already equals the
    archive; the next (default) run finds the tree equal, and must still remove the staging
    tree the killed run left (it holds a copy of the data and is invisible to the user)."""
    trees = _Trees(big_files=(2, 30 * MIB), small_files=10)
    new, archive = _backed_up_new_tree(run_module, engine, backup_dir, trees, "kill-equal")
    target = engine.name("kill-equal-target")
    first = run_module("volume_restore", volume=target, src=archive)
    assert first["changed"] is True, first
    root = engine.mountpoint(target)

    with adhoc_process.DirectoryWatch(root) as watch:
        process = adhoc_process.start("volume_restore", {"volume": target, "src": archive, "restore_when": "always"})
        staging = watch.wait_for(lambda name: name.startswith(".persist-staging-"), timeout=120)
        adhoc_process.kill_tree(process)
    assert staging is not None
    engine.wait_for_helpers(target)
    assert staging in os.listdir(root), "the killed run left no staging tree: nothing to check"
    assert differences(new, snapshot(root)) == []

    result = run_module("volume_restore", volume=target, src=archive)

    assert not result.get("failed"), result
    assert differences(new, snapshot(root)) == []
    assert reserved_leftovers(root) == [], result


def test_disaster_recovery_killed_while_extracting_into_a_new_volume_is_completed_by_the_next_run(run_module, engine, backup_dir):
    """restore_when: missing_or_empty creates the volume, then is killed while extracting:
    the volume holds nothing but the killed run's staging tree. Running the same task again
    must restore the data, not take the staging leftovers for data and skip."""
    trees = _Trees(big_files=(2, 30 * MIB), small_files=10)
    new, archive = _backed_up_new_tree(run_module, engine, backup_dir, trees, "kill-dr")
    target = engine.name("kill-dr-target")
    task = {"volume": target, "src": archive, "restore_when": "missing_or_empty"}

    process = adhoc_process.start("volume_restore", task)
    assert adhoc_process.wait_until(lambda: engine.inspect(target) is not None, timeout=120, interval=0.01)
    with adhoc_process.DirectoryWatch(engine.mountpoint(target)) as watch:
        staging = watch.wait_for(lambda name: name.startswith(".persist-staging-"), timeout=120)
        adhoc_process.kill_tree(process)
    assert staging is not None
    engine.wait_for_helpers(target)
    root = engine.mountpoint(target)
    assert os.listdir(root) == [staging], "only the staging tree is expected"

    result = run_module("volume_restore", **task)

    assert not result.get("failed"), result
    assert result["changed"] is True, result["skipped_reason"]
    assert differences(new, snapshot(root)) == []
    assert reserved_leftovers(root) == []
