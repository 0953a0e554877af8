# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.volume_backup: check, real, again; what the archive and sidecar hold; refusals."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import tempfile

import pytest

from volume_trees import differences, snapshot, write_file

# Every test runs with each transport (conftest.data_transport).
pytestmark = pytest.mark.usefixtures("data_transport")

ARCHIVE_NAME = r"%s-\d{8}T\d{6}Z\.tar\.zst"


def _files(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_backup_check_mode_predicts_the_archive_and_writes_nothing(run_module, engine, backup_dir):
    name = engine.create_volume("check")
    engine.fill(name)
    dest = backup_dir / "not-yet"

    result = run_module("volume_backup", check=True, volume=name, dest=str(dest))

    assert not result.get("failed"), result
    assert result["changed"] is True
    assert re.fullmatch(ARCHIVE_NAME % name, os.path.basename(result["archive"]["path"])), result
    assert os.path.dirname(result["archive"]["path"]) == str(dest)
    assert result["archive"]["sidecar"] == result["archive"]["path"] + ".json"
    assert "create backup directory %s" % dest in result["actions"]
    assert not dest.exists()
    assert engine.helpers_on(name) == []


def test_backup_writes_private_archive_and_sidecar_then_skips_by_fingerprint(run_module, engine, backup_dir):
    labels = {"tier": "db", "owner": "team a"}
    name = engine.create_volume("real", labels=labels)
    usage = engine.fill(name)
    dest = backup_dir / "archives"

    result = run_module("volume_backup", volume=name, dest=str(dest))

    assert not result.get("failed"), result
    assert result["changed"] is True
    archive = result["archive"]
    assert re.fullmatch(ARCHIVE_NAME % name, os.path.basename(archive["path"]))
    assert _files(dest) == sorted([os.path.basename(archive["path"]), os.path.basename(archive["sidecar"])])
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    for path in (archive["path"], archive["sidecar"]):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    with open(archive["sidecar"]) as handle:
        sidecar = json.load(handle)
    assert sidecar["format_version"] == 1
    assert sidecar["volume"] == {"name": name, "driver": "local", "driver_opts": {}, "labels": labels}
    assert sidecar["compression"] == "zstd" == archive["compression"]
    assert sidecar["archive"]["size"] == os.path.getsize(archive["path"]) == archive["size"]
    assert sidecar["archive"]["sha256"] == _sha256(archive["path"]) == archive["sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", sidecar["tree"]["digest"])
    assert sidecar["tree"]["digest"] == archive["tree_digest"]
    assert (sidecar["tree"]["entries"], sidecar["tree"]["bytes"]) == (usage["entries"], usage["bytes"])
    assert (archive["entries"], archive["bytes"]) == (usage["entries"], usage["bytes"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sidecar["created"]) and sidecar["created"] == archive["created"]
    assert engine.helpers_on(name) == []

    for check in (True, False):
        again = run_module("volume_backup", check=check, volume=name, dest=str(dest))
        assert not again.get("failed"), again
        assert again["changed"] is False
        assert again["archive"] is None
        assert "metadata fingerprint" in again["skipped_reason"]
        assert os.path.basename(archive["path"]) in again["skipped_reason"]
        assert again["latest"]["path"] == archive["path"]
        assert again["latest"]["tree_digest"] == archive["tree_digest"]
    assert len(_files(dest)) == 2


def test_backup_skips_by_tree_digest_when_only_ctime_changed_and_writes_on_a_real_change(run_module, engine, backup_dir):
    name = engine.create_volume("ctime")
    engine.fill(name)
    payload = engine.mountpoint(name) / "greeting.txt"
    first = run_module("volume_backup", volume=name, dest=str(backup_dir))
    assert first["changed"] is True, first

    # Mode there and back: the tree is the same, but the file's ctime (in the fingerprint) is not.
    os.chmod(payload, 0o600)
    os.chmod(payload, 0o644)
    for check in (True, False):
        same = run_module("volume_backup", check=check, volume=name, dest=str(backup_dir))
        assert not same.get("failed"), same
        assert same["changed"] is False
        assert "tree digest" in same["skipped_reason"], same["skipped_reason"]
        assert same["latest"]["path"] == first["archive"]["path"]
    assert len(_files(backup_dir)) == 2

    with open(payload, "ab") as handle:
        handle.write(b"!")
    predicted = run_module("volume_backup", check=True, volume=name, dest=str(backup_dir))
    assert predicted["changed"] is True, predicted
    changed = run_module("volume_backup", volume=name, dest=str(backup_dir))
    assert changed["changed"] is True, changed
    assert changed["archive"]["path"] != first["archive"]["path"]
    assert changed["archive"]["tree_digest"] != first["archive"]["tree_digest"]
    assert changed["archive"]["bytes"] == first["archive"]["bytes"] + 1
    assert len(_files(backup_dir)) == 4


def test_backup_with_if_changed_false_writes_a_new_archive_every_time(run_module, engine, backup_dir):
    name = engine.create_volume("always")
    engine.fill(name)

    first = run_module("volume_backup", volume=name, dest=str(backup_dir), if_changed=False)
    second = run_module("volume_backup", volume=name, dest=str(backup_dir), if_changed=False)

    assert first["changed"] is True and second["changed"] is True, (first, second)
    assert first["archive"]["path"] != second["archive"]["path"]
    assert first["archive"]["tree_digest"] == second["archive"]["tree_digest"]
    assert len(_files(backup_dir)) == 4
    assert os.path.exists(second["archive"]["sidecar"])


@pytest.mark.parametrize(
    "compression, suffix, tar_option",
    [("zstd", ".tar.zst", "--zstd"), ("gzip", ".tar.gz", "--gzip"), ("none", ".tar", None)],
)
def test_backup_archive_is_restored_by_hand_with_plain_tar(run_module, engine, backup_dir, compression, suffix, tar_option):
    name = engine.create_volume("by-hand-" + compression)
    root = engine.mountpoint(name)
    write_file(root / "text", b"by hand\n")
    os.mkdir(root / "dir")
    write_file(root / "dir" / "random", os.urandom(50000))
    os.symlink("../text", root / "dir" / "link")
    os.link(root / "text", root / "dir" / "text-again")
    os.setxattr(root / "text", "user.origin", b"volume")
    os.chown(root / "dir" / "random", 4321, 8765)

    result = run_module("volume_backup", volume=name, dest=str(backup_dir), compression=compression)

    assert result["changed"] is True, result
    assert result["archive"]["path"].endswith(suffix)
    assert result["archive"]["compression"] == compression
    with tempfile.TemporaryDirectory(prefix="persist-by-hand-") as by_hand:
        options = [tar_option] if tar_option else []
        subprocess.run(
            ["tar", "-x", "-f", result["archive"]["path"], "-C", by_hand, "--numeric-owner", "--same-owner", "-p",
             "--xattrs", "--xattrs-include=*", "--acls"] + options,
            check=True,
        )
        expected, extracted = snapshot(root), snapshot(by_hand)
    expected.pop(b""), extracted.pop(b"")
    assert differences(expected, extracted) == []


def test_reserved_names_at_the_root_are_reported_and_the_fingerprint_still_skips_an_unchanged_volume(run_module, engine, backup_dir):
    name = engine.create_volume("reserved-fingerprint")
    root = engine.mountpoint(name)
    write_file(root / "data", b"data")
    os.mkdir(root / ".persist-staging-foreign")

    first = run_module("volume_backup", volume=name, dest=str(backup_dir))
    again = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert first["changed"] is True, first
    assert any(".persist-staging-foreign" in warning and "left alone" in warning for warning in first["warnings"]), first
    # The fingerprint taken after the reserved names were looked at is the one a later run
    # compares with: the unchanged volume is skipped without reading its files.
    assert again["changed"] is False and "metadata fingerprint" in again["skipped_reason"], again
    assert os.path.isdir(root / ".persist-staging-foreign")


def test_backup_exclude_patterns_and_reserved_names_are_left_out(run_module, engine, backup_dir):
    name = engine.create_volume("exclude")
    root = engine.mountpoint(name)
    os.makedirs(root / "cache" / "deep")
    write_file(root / "cache" / "deep" / "blob", b"cached")
    write_file(root / "keep.txt", b"keep")
    write_file(root / "drop.tmp", b"drop")
    os.mkdir(root / "sub")
    write_file(root / "sub" / "also.tmp", b"drop")
    write_file(root / "sub" / "kept", b"kept")
    # Reserved for restore staging: never part of a backup.
    os.mkdir(root / ".persist-staging-leftover")
    write_file(root / ".persist-staging-leftover" / "x", b"staged")
    excludes = ["./cache", "*.tmp"]

    result = run_module("volume_backup", volume=name, dest=str(backup_dir), compression="none", exclude=excludes)

    assert result["changed"] is True, result
    listed = subprocess.run(["tar", "-tf", result["archive"]["path"]], check=True, capture_output=True, text=True).stdout.split()
    assert sorted(listed) == ["./", "./keep.txt", "./sub/", "./sub/kept"]
    assert result["archive"]["entries"] == 3
    with open(result["archive"]["sidecar"]) as handle:
        assert json.load(handle)["excludes"] == excludes

    # Only excluded files changed: the backup is up to date.
    write_file(root / "cache" / "deep" / "blob", b"cached again")
    write_file(root / "sub" / "also.tmp", b"changed")
    same = run_module("volume_backup", volume=name, dest=str(backup_dir), compression="none", exclude=excludes)
    assert same["changed"] is False, same
    assert "tree digest" in same["skipped_reason"]

    # Other excludes make another backup, even of the same tree.
    other = run_module("volume_backup", volume=name, dest=str(backup_dir), compression="none", exclude=["./cache"])
    assert other["changed"] is True, other


def test_backup_of_a_missing_volume_fails_naming_it(run_module, engine, backup_dir):
    name = engine.name("missing")
    dest = backup_dir / "never"

    for check in (True, False):
        result = run_module("volume_backup", check=check, volume=name, dest=str(dest))
        assert result.get("failed") is True, result
        assert "Volume %s does not exist" % name in result["msg"]
    assert not dest.exists()
    assert engine.inspect(name) is None


def test_backup_refuses_a_volume_a_running_container_writes_and_writes_nothing(run_module, engine, backup_dir):
    name = engine.create_volume("busy")
    engine.fill(name)
    writer = engine.container("writer", name, state="running")
    dest = backup_dir / "busy"

    for check in (True, False):
        result = run_module("volume_backup", check=check, volume=name, dest=str(dest))
        assert result.get("failed") is True, result
        assert writer.name in result["msg"]
        assert name in result["msg"]
        assert [user["name"] for user in result["containers"]] == [writer.name]
    assert not dest.exists()
    assert engine.helpers_on(name) == []
    writer.reload()
    assert writer.status == "running"


def test_backup_accepts_running_read_only_and_stopped_read_write_mounts(run_module, engine, backup_dir):
    name = engine.create_volume("readers")
    engine.fill(name)
    reader = engine.container("reader", name, state="running", read_only=True)
    engine.container("stopped-writer", name, state="exited")

    result = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert not result.get("failed"), result
    assert result["changed"] is True
    assert os.path.exists(result["archive"]["path"]) and os.path.exists(result["archive"]["sidecar"])
    reader.reload()
    assert reader.status == "running"


def test_backup_dest_that_is_a_file_is_refused(run_module, engine, backup_dir):
    name = engine.create_volume("dest-file")
    engine.fill(name)
    dest = backup_dir / "a-file"
    dest.write_bytes(b"not a directory")

    for check in (True, False):
        result = run_module("volume_backup", check=check, volume=name, dest=str(dest))
        assert result.get("failed") is True, result
        assert "%s exists but is not a directory" % dest in result["msg"]
    assert dest.read_bytes() == b"not a directory"
    assert _files(backup_dir) == ["a-file"]


def test_backup_removes_temporary_files_of_dead_writers_and_stale_orphan_sidecars_only(run_module, engine, backup_dir, this_host):
    name = engine.create_volume("stale")
    engine.fill(name)
    # pid 99999999 is above any pid_max: that writer is certainly gone.
    dead = backup_dir / (".persist-partial-%s-20260101T000000Z.tar.zst.%s.99999999" % (name, this_host))
    alive = backup_dir / (".persist-partial-%s-20260101T000001Z.tar.zst.%s.%d" % (name, this_host, os.getpid()))
    elsewhere = backup_dir / (".persist-partial-%s-20260101T000002Z.tar.zst.other-host-%s.1" % (name, name))
    # A sidecar whose archive never got its name (killed between the two), old and young.
    orphan = backup_dir / ("%s-20260101T000003Z.tar.zst.json" % name)
    young_orphan = backup_dir / ("%s-20260101T000004Z.tar.zst.json" % name)
    for path in (dead, alive, elsewhere, orphan, young_orphan):
        path.write_bytes(b"half an archive")
    os.utime(orphan, (0, 0))

    predicted = run_module("volume_backup", check=True, volume=name, dest=str(backup_dir))
    assert predicted["removed_temporary_files"] == [str(dead), str(orphan)], predicted
    assert dead.exists() and orphan.exists()

    result = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert not result.get("failed"), result
    assert result["removed_temporary_files"] == [str(dead), str(orphan)]
    assert any("remove 2 leftover files of unfinished backups" == action for action in result["actions"])
    assert not dead.exists() and not orphan.exists()
    assert alive.exists() and elsewhere.exists() and young_orphan.exists()
    assert os.path.exists(result["archive"]["sidecar"])


def test_leftovers_of_an_unchanged_volume_are_removed_under_the_lock_and_its_held_stream_never_runs(
    run_module, engine, backup_dir, this_host
):
    # With the transport known from the start (api), the helper that would stream the volume
    # starts, held, beside the listing under the lock; the listing finds the volume unchanged,
    # so it is removed without having read anything.
    name = engine.create_volume("held-unused")
    engine.fill(name)
    first = run_module("volume_backup", volume=name, dest=str(backup_dir), helper_transport="api")
    assert first["changed"] is True, first
    # Leftovers make the run look under the lock instead of skipping before it.
    dead = backup_dir / (".persist-partial-%s-20260101T000000Z.tar.zst.%s.99999999" % (name, this_host))
    dead.write_bytes(b"half an archive")

    again = run_module("volume_backup", volume=name, dest=str(backup_dir), helper_transport="api")

    assert not again.get("failed"), again
    assert again["actions"] == ["remove 1 leftover file of unfinished backups"], again
    assert again["archive"] is None and "metadata fingerprint" in again["skipped_reason"], again
    assert again.get("transport") is None, "no tar stream was read"
    assert not dead.exists()
    assert sorted(path.name for path in backup_dir.iterdir()) == sorted(
        os.path.basename(first["archive"][key]) for key in ("path", "sidecar"))
    assert engine.helpers_on(name) == []


@pytest.fixture
def small_filesystem(backup_dir):
    """A 2 MiB tmpfs mounted inside this test's backup directory, unmounted at the end."""
    mount_point = backup_dir / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_backup_to_a_full_filesystem_fails_clearly_and_keeps_earlier_archives(run_module, engine, small_filesystem):
    small = engine.create_volume("fits")
    engine.fill(small)
    earlier = run_module("volume_backup", volume=small, dest=str(small_filesystem), compression="none")
    assert earlier["changed"] is True, earlier
    earlier_bytes = open(earlier["archive"]["path"], "rb").read()

    big = engine.create_volume("too-big")
    engine.run(big, "head -c 8000000 /dev/urandom > /data/incompressible.bin")
    result = run_module("volume_backup", volume=big, dest=str(small_filesystem), compression="none")

    assert result.get("failed") is True, result
    assert "is full (no space left on device)" in result["msg"] and big in result["msg"]
    assert sorted(os.listdir(small_filesystem)) == sorted(
        [os.path.basename(earlier["archive"]["path"]), os.path.basename(earlier["archive"]["sidecar"])]
    ), "only the earlier backup may remain: no final name, no temporary file of the failed one"
    assert open(earlier["archive"]["path"], "rb").read() == earlier_bytes
    assert engine.helpers_on(big) == []
