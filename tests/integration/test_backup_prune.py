# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.backup_prune: GFS retention over a real backup directory.

One real backup is made with volume_backup; the backups of a test are copies of it under
other names, their sidecars edited to other creation times and volumes, so that each is a
complete backup by every rule backup_info and volume_restore apply.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from ansible_collections.persist.docker.plugins.module_utils._retention import POLICY_OPTIONS

DAY = 86400
_REAL_BACKUP = {}


@pytest.fixture
def real_backup(run_module, module_engine, module_backup_dir):
    """The path of one real archive (with its sidecar), made once per test file."""
    if "path" not in _REAL_BACKUP:
        volume = module_engine.create_volume("prune-source")
        module_engine.fill(volume)
        result = run_module("volume_backup", volume=volume, dest=str(module_backup_dir))
        assert result["changed"] is True, result
        _REAL_BACKUP["path"] = result["archive"]["path"]
    return _REAL_BACKUP["path"]


def stamp(created):
    return created.strftime("%Y%m%dT%H%M%SZ")


def at(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=datetime.timezone.utc)


def make_backup(real, directory, volume, created):
    """A complete backup of ``volume`` created at ``created`` (UTC datetime), named as
    volume_backup names it; returns the archive's file name."""
    name = "%s-%s.tar.zst" % (volume, stamp(created))
    path = os.path.join(str(directory), name)
    shutil.copyfile(real, path)
    with open(real + ".json") as handle:
        metadata = json.load(handle)
    metadata["created"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    metadata["volume"]["name"] = volume
    with open(path + ".json", "w") as handle:
        json.dump(metadata, handle)
    # Written when it was created, as a real backup is (a sidecar claiming a time after
    # its archive was written is not believed).
    written = created.timestamp()
    os.utime(path, (written, written))
    return name


def make_dailies(real, directory, volume, first, last, hour=3):
    day = datetime.date.fromisoformat(first)
    names = []
    while day <= datetime.date.fromisoformat(last):
        names.append(make_backup(real, directory, volume, datetime.datetime(day.year, day.month, day.day, hour, tzinfo=datetime.timezone.utc)))
        day += datetime.timedelta(days=1)
    return names


def listing(directory):
    """Every entry of the directory with its size (a snapshot that shows any deletion)."""
    return dict((entry.name, entry.stat(follow_symlinks=False).st_size) for entry in os.scandir(str(directory)))


def names(items):
    return sorted(os.path.basename(item["path"]) for item in items)


def age(path, seconds):
    """Set the file's times ``seconds`` into the past."""
    when = time.time() - seconds
    os.utime(str(path), (when, when), follow_symlinks=False)


def prediction(result):
    """The parts of a result that check mode must predict exactly."""
    return dict(
        (key, result[key])
        for key in ("changed", "deleted", "kept", "removed_incomplete", "damaged", "ignored", "volumes", "policy")
    )


def test_check_mode_predicts_the_deletion_set_the_real_run_deletes_and_a_second_run_changes_nothing(run_module, engine, backup_dir, real_backup):
    volume = engine.name("gfs")
    dailies = make_dailies(real_backup, backup_dir, volume, "2026-10-31", "2026-11-30")
    policy = dict(keep_daily=7, keep_weekly=4, keep_monthly=2)
    before = listing(backup_dir)

    check = run_module("backup_prune", check=True, diff=True, path=str(backup_dir), **policy)

    assert not check.get("failed"), check
    assert listing(backup_dir) == before, "check mode deleted something"
    kept_days = ["11-30", "11-29", "11-28", "11-27", "11-26", "11-25", "11-24", "11-22", "11-15", "10-31"]
    kept = ["%s-2026%sT030000Z.tar.zst" % (volume, day.replace("-", "")) for day in kept_days]
    assert names(check["kept"]) == sorted(kept)
    assert names(check["deleted"]) == sorted(set(dailies) - set(kept))
    assert check["changed"] is True
    assert "would delete 21 backups of 1 volume" in check["msg"]
    reasons = dict((os.path.basename(item["path"]), item["reasons"]) for item in check["kept"])
    assert reasons[kept[0]] == ["newest", "daily 2026-11-30", "weekly 2026-W49", "monthly 2026-11"]
    assert reasons[kept[-1]] == ["monthly 2026-10"]
    assert all(item["reason"] == "kept by no rule of the policy (keep_daily=7, keep_weekly=4, keep_monthly=2)" for item in check["deleted"])
    assert all(item["sidecar"] == item["path"] + ".json" and item["volume"] == volume for item in check["deleted"])
    assert check["volumes"] == {volume: dict(backups=31, kept=10, deleted=21, newest=str(backup_dir / kept[0]))}
    assert check["diff"]["before"] == {"archives": sorted(dailies)}
    assert check["diff"]["after"] == {"archives": sorted(kept)}

    real = run_module("backup_prune", diff=True, path=str(backup_dir), **policy)

    assert not real.get("failed"), real
    assert prediction(real) == prediction(check)
    assert real["diff"] == check["diff"]
    expected = dict((name, size) for name, size in before.items() if name.replace(".json", "") in kept)
    assert listing(backup_dir) == expected
    # What is left is still a set of complete backups that backup_info trusts.
    info = run_module("backup_info", path=str(backup_dir))
    assert sorted((os.path.basename(item["path"]), item["status"]) for item in info["backups"]) == sorted((name, "complete") for name in kept)

    again = run_module("backup_prune", check=True, path=str(backup_dir), **policy)
    assert again["changed"] is False, again
    assert again["deleted"] == [] and again["removed_incomplete"] == []
    second = run_module("backup_prune", path=str(backup_dir), **policy)
    assert second["changed"] is False, second
    assert listing(backup_dir) == expected


def test_volumes_in_one_directory_are_pruned_independently_and_volume_limits_the_scope(run_module, engine, backup_dir, real_backup):
    first, second = engine.name("one"), engine.name("two")
    start = at("2026-11-01 00:00")
    for hour in range(5):
        make_backup(real_backup, backup_dir, first, start + datetime.timedelta(hours=2 * hour))
        make_backup(real_backup, backup_dir, second, start + datetime.timedelta(hours=2 * hour + 1))
    # The second volume's backups stopped long ago: keep_within counts from its own newest backup.
    make_backup(real_backup, backup_dir, second, at("2020-01-01 00:00"))

    only_first = run_module("backup_prune", path=str(backup_dir), volume=first, keep_last=2)

    assert not only_first.get("failed"), only_first
    assert set(only_first["volumes"]) == {first}
    assert names(only_first["kept"]) == sorted(["%s-20261101T%02d0000Z.tar.zst" % (first, hour) for hour in (6, 8)])
    assert len(only_first["deleted"]) == 3
    remaining = set(name for name in listing(backup_dir) if not name.endswith(".json"))
    assert sum(1 for name in remaining if name.startswith(second)) == 6, "volume: limited the scope"

    both = run_module("backup_prune", path=str(backup_dir), keep_within="4h", keep_last=1)

    assert not both.get("failed"), both
    assert both["volumes"][first] == dict(backups=2, kept=2, deleted=0, newest=str(backup_dir / ("%s-20261101T080000Z.tar.zst" % first)))
    newest_second = "%s-20261101T090000Z.tar.zst" % second
    assert both["volumes"][second] == dict(backups=6, kept=3, deleted=3, newest=str(backup_dir / newest_second))
    kept_second = dict((os.path.basename(item["path"]), item["reasons"]) for item in both["kept"] if item["volume"] == second)
    assert kept_second == {
        newest_second: ["newest", "last 1", "within 4h of newest"],
        "%s-20261101T070000Z.tar.zst" % second: ["within 4h of newest"],
        "%s-20261101T050000Z.tar.zst" % second: ["within 4h of newest"],
    }
    assert "%s-20200101T000000Z.tar.zst" % second in names(both["deleted"])
    left = sorted(name for name in listing(backup_dir) if not name.endswith(".json"))
    assert left == sorted(names(both["kept"]))
    assert all(os.path.exists(os.path.join(str(backup_dir), name + ".json")) for name in left)


def test_leftovers_younger_than_the_grace_are_kept_older_ones_removed_and_foreign_files_never_touched(run_module, engine, backup_dir, real_backup):
    volume = engine.name("leftovers")
    directory = str(backup_dir)
    host = socket.gethostname()
    newest = make_backup(real_backup, backup_dir, volume, at("2026-11-30 03:00"))
    old_complete = make_backup(real_backup, backup_dir, volume, at("2026-11-01 03:00"))

    # An archive whose sidecar is gone (a prune killed between the two deletions), old and young.
    stale_incomplete = make_backup(real_backup, backup_dir, volume, at("2026-10-01 03:00"))
    os.unlink(os.path.join(directory, stale_incomplete + ".json"))
    age(backup_dir / stale_incomplete, 2 * DAY)
    young_incomplete = make_backup(real_backup, backup_dir, volume, at("2026-12-01 03:00"))
    os.unlink(os.path.join(directory, young_incomplete + ".json"))
    age(backup_dir / young_incomplete, 2 * 3600)
    # Sidecars whose archive never got its name.
    orphan_old = make_backup(real_backup, backup_dir, volume, at("2026-09-01 03:00"))
    os.unlink(os.path.join(directory, orphan_old))
    age(backup_dir / (orphan_old + ".json"), 2 * DAY)
    orphan_young = make_backup(real_backup, backup_dir, volume, at("2026-12-02 03:00"))
    os.unlink(os.path.join(directory, orphan_young))
    # Temporary files: of another host (old and young), of a dead and of a live process here.
    partial = ".persist-partial-%s-20261203T030000Z.tar.zst." % volume
    temp_old_foreign = partial + "otherhost.4242"
    temp_young_foreign = partial + "otherhost.4343"
    dead = subprocess.Popen(["true"])
    dead.wait()
    temp_dead_local = partial + "%s.%d" % (host, dead.pid)
    temp_live_local = partial + "%s.%d" % (host, os.getpid())
    for name in (temp_old_foreign, temp_young_foreign, temp_dead_local, temp_live_local):
        (backup_dir / name).write_bytes(b"partial")
    age(backup_dir / temp_old_foreign, 2 * DAY)
    age(backup_dir / temp_young_foreign, 2 * 3600)
    age(backup_dir / temp_live_local, 30 * DAY)
    # Not ours: never touched, however old.
    foreign = {
        "notes.txt": b"not an archive",
        "handmade.tar.gz": b"someone's own tar, no sidecar, no timestamp",
        "settings.json": b"{}",
        "%s-20200101T000000Z.tar.zst.bak" % volume: b"renamed by hand",
    }
    for name, content in foreign.items():
        (backup_dir / name).write_bytes(content)
        age(backup_dir / name, 400 * DAY)
    (backup_dir / "subdir").mkdir()
    (backup_dir / ("%s-20190101T000000Z.tar.zst.json" % volume)).mkdir()
    os.symlink("/nonexistent", os.path.join(directory, "dangling-20190101T000000Z.tar.zst.json"))
    os.symlink(os.path.join(directory, old_complete), os.path.join(directory, "link-20200101T000000Z.tar.zst"))
    before = listing(backup_dir)

    check = run_module("backup_prune", check=True, diff=True, path=directory, keep_last=1, incomplete_grace="1d")

    assert not check.get("failed"), check
    assert listing(backup_dir) == before
    expected_removed = sorted(
        os.path.join(directory, name)
        for name in (stale_incomplete, orphan_old + ".json", temp_old_foreign, temp_dead_local)
    )
    assert sorted(check["removed_incomplete"]) == expected_removed
    assert names(check["deleted"]) == [old_complete]
    assert names(check["kept"]) == [newest]
    in_progress = dict((os.path.basename(item["path"]), item["reason"]) for item in check["in_progress"])
    assert set(in_progress) == {young_incomplete, orphan_young + ".json", temp_young_foreign, temp_live_local}
    assert all(reason.startswith("may be in progress") for reason in in_progress.values())
    assert "still runs" in in_progress[temp_live_local]
    assert names(check["ignored"]) == ["handmade.tar.gz"]
    assert check["damaged"] == []
    assert stale_incomplete in check["diff"]["before"]["archives"]
    assert stale_incomplete not in check["diff"]["after"]["archives"]
    assert young_incomplete in check["diff"]["after"]["archives"]

    real = run_module("backup_prune", path=directory, keep_last=1, incomplete_grace="1d")

    assert prediction(real) == prediction(check)
    gone = set([old_complete, old_complete + ".json"]) | set(os.path.basename(path) for path in expected_removed)
    assert listing(backup_dir) == dict((name, size) for name, size in before.items() if name not in gone)
    for name, content in foreign.items():
        assert (backup_dir / name).read_bytes() == content

    # A shorter grace takes the young leftovers of other hosts too; a live writer's file stays.
    shorter = run_module("backup_prune", path=directory, keep_last=1, incomplete_grace="1h")
    assert sorted(shorter["removed_incomplete"]) == sorted(os.path.join(directory, name) for name in (young_incomplete, temp_young_foreign))
    assert names(shorter["in_progress"]) == sorted([orphan_young + ".json", temp_live_local])
    assert not os.path.exists(os.path.join(directory, young_incomplete))
    assert os.path.exists(os.path.join(directory, temp_live_local))


def test_damaged_backups_are_reported_with_a_warning_and_never_deleted(run_module, engine, backup_dir, real_backup):
    volume = engine.name("damaged")
    directory = str(backup_dir)
    newest = make_backup(real_backup, backup_dir, volume, at("2026-11-20 03:00"))
    older = make_backup(real_backup, backup_dir, volume, at("2026-11-10 03:00"))
    # Newer than every complete one, but cut short: it must not count as the newest.
    truncated = make_backup(real_backup, backup_dir, volume, at("2026-11-30 03:00"))
    with open(os.path.join(directory, truncated), "r+b") as handle:
        handle.truncate(10)
    unreadable = make_backup(real_backup, backup_dir, volume, at("2020-01-01 03:00"))
    (backup_dir / (unreadable + ".json")).write_text("{not json")
    undated = make_backup(real_backup, backup_dir, volume, at("2020-01-02 03:00"))
    metadata = json.loads((backup_dir / (undated + ".json")).read_text())
    metadata["created"] = "last tuesday"
    (backup_dir / (undated + ".json")).write_text(json.dumps(metadata))
    for name in (truncated, unreadable, undated):
        age(backup_dir / name, 400 * DAY)
        age(backup_dir / (name + ".json"), 400 * DAY)
    before = listing(backup_dir)

    check = run_module("backup_prune", check=True, path=directory, keep_last=1, incomplete_grace="1h")
    real = run_module("backup_prune", path=directory, keep_last=1, incomplete_grace="1h")

    assert prediction(real) == prediction(check)
    assert names(real["kept"]) == [newest]
    assert names(real["deleted"]) == [older]
    damaged = dict((os.path.basename(item["path"]), item["reason"]) for item in real["damaged"])
    assert set(damaged) == {truncated, unreadable, undated}
    assert damaged[truncated].startswith("archive is 10 bytes")
    assert "cannot be read" in damaged[unreadable]
    assert "'last tuesday' is not an ISO 8601 time" in damaged[undated]
    warnings = " ".join(real.get("warnings", []))
    for name in (truncated, unreadable, undated):
        assert name in warnings
    assert "left in place" in warnings
    assert real["removed_incomplete"] == []
    gone = {older, older + ".json"}
    assert listing(backup_dir) == dict((name, size) for name, size in before.items() if name not in gone)


def test_a_deletion_that_fails_names_the_file_and_leaves_that_backup_complete(run_module, engine, backup_dir, real_backup):
    volume = engine.name("immutable")
    directory = str(backup_dir)
    make_backup(real_backup, backup_dir, volume, at("2026-11-30 03:00"))
    stuck = make_backup(real_backup, backup_dir, volume, at("2026-11-01 03:00"))
    sidecar = os.path.join(directory, stuck + ".json")
    # Even root cannot unlink an immutable file.
    subprocess.run(["chattr", "+i", sidecar], check=True)
    try:
        result = run_module("backup_prune", path=directory, keep_last=1)
    finally:
        subprocess.run(["chattr", "-i", sidecar], check=True)

    assert result.get("failed") is True, result
    assert result["msg"].startswith("Cannot delete %s: Operation not permitted" % sidecar), result["msg"]
    assert "become: true" in result["msg"]
    assert result["deleted_files"] == []
    # The sidecar goes first, so the failed deletion left a complete backup behind.
    info = run_module("backup_info", path=directory, volume=volume)
    assert sorted((os.path.basename(item["path"]), item["status"]) for item in info["backups"]) == sorted(
        [(stuck, "complete"), ("%s-20261130T030000Z.tar.zst" % volume, "complete")]
    )


@pytest.mark.parametrize("policy", [{}, dict(keep_last=0, keep_daily=0, keep_within="")])
def test_an_empty_policy_is_refused_naming_the_options_and_deletes_nothing(run_module, engine, backup_dir, real_backup, policy):
    volume = engine.name("empty-policy")
    make_backup(real_backup, backup_dir, volume, at("2026-11-30 03:00"))
    make_backup(real_backup, backup_dir, volume, at("2026-11-01 03:00"))
    before = listing(backup_dir)

    result = run_module("backup_prune", path=str(backup_dir), **policy)

    assert result.get("failed") is True, result
    assert "retention policy is empty" in result["msg"]
    for option in POLICY_OPTIONS:
        assert option in result["msg"]
    assert listing(backup_dir) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(keep_within="1 week"), "keep_within '1 week' is not a duration"),
        (dict(keep_last=2, incomplete_grace="soon"), "incomplete_grace 'soon' is not a duration"),
        (dict(keep_daily=-1), "keep_daily must be a whole number of 0 or more"),
    ],
)
def test_bad_options_are_refused_with_what_to_write_instead(run_module, backup_dir, args, message):
    result = run_module("backup_prune", path=str(backup_dir), **args)

    assert result.get("failed") is True, result
    assert message in result["msg"]


def test_a_missing_directory_fails_naming_it(run_module, backup_dir):
    missing = backup_dir / "nowhere"

    result = run_module("backup_prune", path=str(missing), keep_last=3)

    assert result.get("failed") is True, result
    assert str(missing) in result["msg"]
    assert not missing.exists()
