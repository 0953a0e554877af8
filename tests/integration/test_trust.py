# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trust boundaries (docs/security.md): a sidecar never decides to mount storage, what tar
extracts is read back before it counts, reserved names in a volume are acted on only with the
engine's record, privileges come only from the task, and hostile sizes cost little.

The attacker here writes the backup directory (archive and sidecar), or runs a container that
mounts the volume. Every test checks that the refused operation left the data as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import adhoc_process
import crafted_archives as crafted
from conftest import PREFIX
from crafted_archives import member, root
from volume_trees import capture, differences, reserved_leftovers, seed_target, snapshot, write_file


@pytest.fixture
def host_dir():
    """A directory on the host for bind-mounted volumes, removed afterwards."""
    path = tempfile.mkdtemp(prefix=PREFIX + "host-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(module_engine, module_backup_dir):
    """A real backup of a small tree: (archive path, the tree)."""
    name = module_engine.create_volume("trust-reference")
    root_path = module_engine.mountpoint(name)
    seed_target(root_path)
    write_file(root_path / "data.bin", os.urandom(100000))
    backup = adhoc_process.run("volume_backup", {"volume": name, "dest": str(module_backup_dir)})
    assert backup["changed"] is True, backup
    return backup["archive"]["path"], snapshot(root_path)


def _copy_backup(archive, directory, **volume_record):
    """A copy of ``archive`` whose sidecar records other volume settings (the archive is the
    same, so its sha256 and tree digest still match)."""
    copy = os.path.join(str(directory), os.path.basename(archive))
    shutil.copyfile(archive, copy)
    metadata = crafted.read_sidecar(archive)
    metadata["volume"].update(volume_record)
    crafted.write_sidecar(copy, metadata)
    return copy


# -- 1. the sidecar is untrusted ----------------------------------------------------------


def test_restore_never_creates_a_volume_that_binds_a_host_directory_because_a_sidecar_says_so(run_module, engine, backup_dir, reference, host_dir):
    canary = os.path.join(host_dir, "precious")
    write_file(canary, b"host data")
    archive = _copy_backup(reference[0], backup_dir, driver_opts={"type": "none", "o": "bind", "device": host_dir})
    target = engine.name("sidecar-bind")

    for check in (True, False):
        refused = run_module("volume_restore", check=check, volume=target, src=archive)
        assert refused.get("failed") is True, refused
        assert "device=%s mounts existing storage (a host directory)" % host_dir in refused["msg"]
        assert "volume_driver_opts" in refused["msg"] and "Nothing was done" in refused["msg"]
    assert engine.inspect(target) is None
    assert os.listdir(host_dir) == ["precious"]

    # The operator may choose the storage: a fresh directory, named in the task.
    chosen = os.path.join(host_dir, "chosen")
    os.mkdir(chosen)
    restored = run_module("volume_restore", volume=target, src=archive, volume_driver_opts={"type": "none", "o": "bind", "device": chosen})
    assert restored["changed"] is True, restored
    assert differences(reference[1], snapshot(chosen)) == []
    with open(canary, "rb") as handle:
        assert handle.read() == b"host data"


@pytest.mark.parametrize("driver, options, words", [
    ("local", {"type": "nfs", "o": "addr=127.0.0.1,password=hunter2", "device": ":/export"}, "device=:/export mounts existing storage"),
    ("example/plugin", {"mountpoint": "/etc"}, "the driver example/plugin is a volume plugin"),
])
def test_restore_refuses_recorded_shares_and_plugins_and_never_shows_a_recorded_password(run_module, engine, backup_dir, reference, driver, options, words):
    archive = _copy_backup(reference[0], backup_dir, driver=driver, driver_opts=options)
    target = engine.name("sidecar-share")

    refused = run_module("volume_restore", volume=target, src=archive)

    assert refused.get("failed") is True, refused
    assert words in refused["msg"]
    assert "hunter2" not in json.dumps(refused)
    assert engine.inspect(target) is None
    listed = run_module("backup_info", path=str(backup_dir))
    assert "hunter2" not in json.dumps(listed)
    assert listed["backups"][0]["metadata"]["volume"]["driver_opts"] == dict(options, **({"o": "addr=127.0.0.1,password=********"} if "o" in options else {}))


def test_restore_refuses_a_target_whose_storage_is_another_volumes_or_a_bind_mounted_directory(run_module, engine, backup_dir, reference, host_dir):
    bind = {"type": "none", "o": "bind", "device": host_dir}
    target = engine.create_volume("shared-target", driver_opts=bind)
    twin = engine.create_volume("shared-twin", driver_opts=bind)
    write_file(os.path.join(host_dir, "live"), b"in use")

    refused = run_module("volume_restore", volume=target, src=reference[0])

    assert refused.get("failed") is True, refused
    assert "volume %s mounts %s, and volume %s mounts %s: they are the same files" % (target, host_dir, twin, host_dir) in refused["msg"]
    engine.remove_volume(twin)
    user = engine.client.containers.create("persist-test/debian:bookworm", ["true"], name=engine.container_name("binder"),
                                           volumes={host_dir: {"bind": "/host", "mode": "ro"}}, network_mode="none")
    refused = run_module("volume_restore", volume=target, src=reference[0])
    assert refused.get("failed") is True, refused
    assert "container %s bind-mounts %s" % (user.name, host_dir) in refused["msg"]
    assert os.listdir(host_dir) == ["live"]


def test_copy_never_creates_its_destination_on_storage_taken_from_the_source(run_module, engine, host_dir):
    source = engine.create_volume("bound-source", driver_opts={"type": "none", "o": "bind", "device": host_dir})
    write_file(os.path.join(host_dir, "file"), b"source data")
    dest = engine.name("bound-dest")

    refused = run_module("volume_copy", source=source, dest=dest)

    assert refused.get("failed") is True, refused
    assert "device=%s mounts existing storage (a host directory)" % host_dir in refused["msg"]
    assert "dest_driver_opts" in refused["msg"]
    assert engine.inspect(dest) is None
    copied = run_module("volume_copy", source=source, dest=dest, dest_driver_opts={})
    assert copied["changed"] is True, copied
    assert engine.inspect(dest)["Options"] in (None, {})


# -- 2. only what was verified is written: read back before the swap ----------------------


def test_restore_refuses_a_staged_tree_that_does_not_read_back_as_the_archive(run_module, engine, backup_dir, reference):
    """uid 4294967295 is -1 to chown(2), which then keeps the extracting user's: the staged
    tree differs from what the archive says, and must never be swapped in."""
    template = crafted.read_sidecar(reference[0])
    archive = crafted.write_backup(backup_dir, "unkeepable", [root(), member("./owned", data=b"x", uid=4294967295)], template)
    target = engine.create_volume("read-back-target")
    seed_target(engine.mountpoint(target))
    before = capture(engine.mountpoint(target))

    refused = run_module("volume_restore", volume=target, src=archive)

    assert refused.get("failed") is True, refused
    assert refused["check"] == "read_back", refused
    assert "does not read back as the archive (first difference: owned differs)" in refused["msg"]
    assert "The target volume was not changed" in refused["msg"]
    after = capture(engine.mountpoint(target))
    # Every entry as it was; only the root's mtime tells that a staging directory came and went.
    assert [difference for difference in differences(before["tree"], after["tree"]) if not difference.startswith("differs '.'")] == []
    assert after["listing"] == before["listing"]
    assert engine.client.containers.list(all=True, filters={"name": "persist-swap-" + target}) == []


# -- 3. reserved names in a volume are untrusted ------------------------------------------

FORGED = "aside 0123456789ab replace 1700000000.000000000 " + "0" * 64 + "\n"


def _plant(engine, volume):
    """What a hostile container can write: a journal and a staging tree full of its files."""
    engine.run(volume, "mkdir -p /data/.persist-staging-0123456789ab && echo evil > /data/.persist-staging-0123456789ab/planted "
                       "&& printf '%s' '" + FORGED + "' > /data/.persist-journal")


def test_a_planted_journal_is_never_followed_and_backups_say_how_to_go_on_without_losing_anything(run_module, engine, backup_dir, reference):
    name = engine.create_volume("planted")
    seed_target(engine.mountpoint(name))
    _plant(engine, name)
    before = capture(engine.mountpoint(name))

    backup = run_module("volume_backup", volume=name, dest=str(backup_dir / "b"))
    restore = run_module("volume_restore", volume=name, src=reference[0])

    for refused in (backup, restore):
        assert refused.get("failed") is True, refused
        assert "holds a swap journal (.persist-journal) that this collection cannot prove it wrote" in refused["msg"]
        assert "engine holds no record" in refused["msg"] and "recovery: discard" in refused["msg"]
        assert sorted(refused["reserved_entries"]) == [".persist-journal", ".persist-staging-0123456789ab"]
    after = capture(engine.mountpoint(name))
    assert differences(before["tree"], after["tree"]) == [] and after["listing"] == before["listing"]
    assert not (backup_dir / "b").exists() or os.listdir(backup_dir / "b") == []

    kept = run_module("volume_backup", volume=name, dest=str(backup_dir / "b"), recovery="discard")

    assert kept["changed"] is True, kept
    visible = sorted(entry for entry in os.listdir(engine.mountpoint(name)) if entry.startswith("persist-discarded-"))
    assert len(visible) == 2 and visible[0].endswith("-persist-journal") and visible[1].endswith("-persist-staging-0123456789ab")
    assert reserved_leftovers(engine.mountpoint(name)) == []
    with open(os.path.join(engine.mountpoint(name), visible[1], "planted"), "rb") as handle:
        assert handle.read() == b"evil\n", "nothing was deleted"
    members = subprocess.run(["tar", "--zstd", "-tf", kept["archive"]["path"]], check=True, stdout=subprocess.PIPE).stdout.decode()
    assert "./%s/planted" % visible[1] in members.splitlines(), "what was discarded is in the backup"


def test_restore_with_recovery_discard_goes_on_and_never_swaps_the_planted_tree_in(run_module, engine, reference):
    name = engine.create_volume("planted-restore")
    seed_target(engine.mountpoint(name))
    _plant(engine, name)

    restored = run_module("volume_restore", volume=name, src=reference[0], recovery="discard")

    assert restored["changed"] is True, restored
    assert any("visible names" in action for action in restored["actions"]), restored["actions"]
    assert differences(reference[1], snapshot(engine.mountpoint(name))) == []
    assert "planted" not in str(snapshot(engine.mountpoint(name)))
    assert reserved_leftovers(engine.mountpoint(name)) == []


def _many_entries_tree(root_path, tag, count=400):
    for number in range(count):
        write_file(os.path.join(str(root_path), "%s-%03d" % (tag, number)), b"%s %d" % (tag.encode(), number))


def _old_target_and_new_archive(run_module, engine, backup_dir, suffix):
    """(target volume with an old tree of many root entries, archive of a new one, source):
    many entries make a swap slow enough to be caught half way."""
    source = engine.create_volume(suffix + "-source")
    _many_entries_tree(engine.mountpoint(source), "new")
    archive = run_module("volume_backup", volume=source, dest=str(backup_dir))["archive"]["path"]
    target = engine.create_volume(suffix + "-target")
    _many_entries_tree(engine.mountpoint(target), "old")
    return target, archive, source


def test_a_journal_changed_after_a_crash_is_not_followed(run_module, engine, backup_dir):
    target, archive, source = _old_target_and_new_archive(run_module, engine, backup_dir, "crash")
    root_path = engine.mountpoint(target)

    with adhoc_process.DirectoryWatch(root_path) as watch:
        process = adhoc_process.start("volume_restore", {"volume": target, "src": archive})
        appeared = watch.wait_for(lambda created: created.startswith(".persist-old-"), timeout=120)
        engine.kill_helpers(target)
        adhoc_process.kill_tree(process)
    assert appeared is not None
    engine.wait_for_helpers(target)
    journal = os.path.join(str(root_path), ".persist-journal")
    with open(journal) as handle:
        phase, rest = handle.read().split(" ", 1)
    with open(journal, "w") as handle:
        handle.write(("in" if phase == "aside" else "aside") + " " + rest)

    refused = run_module("volume_restore", volume=target, src=archive)

    assert refused.get("failed") is True, refused
    assert "its checksum does not match the engine's record of the swap" in refused["msg"]
    finished = run_module("volume_restore", volume=target, src=archive, recovery="discard")
    assert finished["changed"] is True, finished
    assert differences(snapshot(engine.mountpoint(source)), snapshot(root_path)) == []
    assert reserved_leftovers(root_path) == []


def test_a_swap_that_stops_part_way_keeps_its_containers_stopped_until_a_run_finishes_it(run_module, engine, backup_dir):
    target, archive, source = _old_target_and_new_archive(run_module, engine, backup_dir, "halfway")
    app = engine.container("app", target, state="running", labels={"persist.docker.containers": "stop"})

    with adhoc_process.DirectoryWatch(engine.mountpoint(target)) as watch:
        process = adhoc_process.start("volume_restore", {"volume": target, "src": archive})
        appeared = watch.wait_for(lambda created: created.startswith(".persist-old-"), timeout=120)
        engine.kill_helpers(target)  # the swap helper dies; the module lives on and reports
        out, err = process.communicate(timeout=300)
    assert appeared is not None
    failed = adhoc_process.parse(out.decode(), err.decode())
    assert failed.get("failed") is True, failed
    assert "The swap into volume %s stopped part way" % target in failed["msg"]
    assert "%s were left stopped" % app.name in failed["msg"]
    app.reload()
    assert app.status == "exited", "a container must not run on a mix of two trees"

    finished = run_module("volume_restore", volume=target, src=archive)

    assert not finished.get("failed"), finished
    assert finished["finished_interrupted"] is True
    assert [left["name"] for left in finished["consistency"]["restarted_after_interrupted_run"]] == [app.name]
    app.reload()
    assert app.status == "running"
    assert differences(snapshot(engine.mountpoint(source)), snapshot(engine.mountpoint(target))) == []


# -- 4. privileges come from the task, never from the data ---------------------------------


def test_extraction_helpers_lack_the_privileges_the_safety_rules_refuse_unless_allowed(run_module, engine, backup_dir):
    source = engine.create_volume("caps-source")
    for number in range(3):
        write_file(engine.mountpoint(source) / ("big-%d" % number), os.urandom(30 << 20))
    archive = run_module("volume_backup", volume=source, dest=str(backup_dir), compression="none")["archive"]["path"]
    seen = {}
    for allow in (False, True):
        target = engine.name("caps-%s" % allow)
        process = adhoc_process.start("volume_restore", {"volume": target, "src": archive, "allow_special": allow})

        def extracting():
            if engine.inspect(target) is None:
                return False
            return any(entry.startswith(".persist-staging-") for entry in os.listdir(engine.mountpoint(target)))

        assert adhoc_process.wait_until(extracting, timeout=120, interval=0.005)
        # The extraction's helper mounts the volume read-write (the read-back's, held ready
        # beside it, read-only).
        helpers = [engine.client.api.inspect_container(helper.id) for helper in engine.helpers_on(target)]
        writers = [details for details in helpers if any(mount.get("Name") == target and mount.get("RW") for mount in details["Mounts"])]
        seen[allow] = set(writers[0]["HostConfig"]["CapAdd"]) if writers else None
        out, err = process.communicate(timeout=300)
        assert adhoc_process.parse(out.decode(), err.decode())["changed"] is True
    assert seen[False] is not None and not seen[False] & {"MKNOD", "SETFCAP", "FSETID", "CAP_MKNOD", "CAP_SETFCAP", "CAP_FSETID"}, seen
    assert seen[True] and {"MKNOD", "SETFCAP", "FSETID"} <= {cap.replace("CAP_", "") for cap in seen[True]}, seen


def test_a_file_capability_is_restored_only_with_allow_special(run_module, engine, backup_dir):
    from volume_trees import file_capability, set_attributes

    source = engine.create_volume("fcap-source")
    write_file(engine.mountpoint(source) / "ping", b"#!/bin/sh\n")
    set_attributes(engine.mountpoint(source) / "ping", mode=0o755, xattrs={"security.capability": file_capability(1 << 13)})
    archive = run_module("volume_backup", volume=source, dest=str(backup_dir))["archive"]["path"]
    target = engine.name("fcap-target")

    refused = run_module("volume_restore", volume=target, src=archive)
    allowed = run_module("volume_restore", volume=target, src=archive, allow_special=True)

    assert refused.get("failed") is True and refused["member"] == "ping", refused
    assert "extended attribute security.capability grants privileges" in refused["rule"]
    assert allowed["changed"] is True, allowed
    assert differences(snapshot(engine.mountpoint(source)), snapshot(engine.mountpoint(target))) == []


def test_a_label_cannot_leave_a_container_running_through_a_restore(run_module, engine, reference):
    target = engine.create_volume("labelled-ignore")
    seed_target(engine.mountpoint(target))
    app = engine.container("app", target, state="running", labels={"persist.docker.containers": "ignore"})

    refused = run_module("volume_restore", volume=target, src=reference[0])

    assert refused.get("failed") is True, refused
    assert "a label never leaves a container running while its volume is written" in refused["msg"]
    assert app.name in refused["msg"]
    allowed = run_module("volume_restore", volume=target, src=reference[0], containers="ignore")
    assert allowed["changed"] is True, allowed


# -- 5. bounded work ----------------------------------------------------------------------


def test_a_container_making_a_terabyte_sparse_file_costs_seconds_not_hours(run_module, engine, backup_dir):
    name = engine.create_volume("huge-sparse")
    engine.run(name, "truncate -s 8T /data/huge && printf tail >> /data/huge && echo small > /data/small")
    timings = {}

    started = time.monotonic()
    backup = run_module("volume_backup", volume=name, dest=str(backup_dir))
    timings["backup"] = time.monotonic() - started
    assert backup["changed"] is True, backup
    assert backup["archive"]["bytes"] == (8 << 40) + 4 + 6

    started = time.monotonic()
    restored = run_module("volume_restore", volume=engine.name("huge-restored"), src=backup["archive"]["path"])
    timings["restore"] = time.monotonic() - started
    assert restored["changed"] is True, restored

    started = time.monotonic()
    copied = run_module("volume_copy", source=name, dest=engine.name("huge-copied"))
    timings["copy"] = time.monotonic() - started
    assert copied["changed"] is True, copied
    assert copied["tree_digest"]["source"] == copied["tree_digest"]["dest"] == backup["archive"]["tree_digest"]
    # Minutes would mean the holes were read; each of these takes seconds here.
    assert max(timings.values()) < 120, timings


def test_a_restore_that_fails_verification_never_stops_the_running_service(run_module, engine, backup_dir, reference):
    archive = os.path.join(str(backup_dir), os.path.basename(reference[0]))
    shutil.copyfile(reference[0], archive)
    shutil.copyfile(reference[0] + ".json", archive + ".json")
    crafted.flip_middle_byte(archive)
    target = engine.create_volume("verify-first")
    seed_target(engine.mountpoint(target))
    app = engine.container("app", target, state="running")
    app.reload()
    started_at = app.attrs["State"]["StartedAt"]

    refused = run_module("volume_restore", volume=target, src=archive, containers="stop")

    assert refused.get("failed") is True, refused
    app.reload()
    assert (app.status, app.attrs["State"]["StartedAt"]) == ("running", started_at), "the service was never stopped"


def test_a_restore_stops_the_service_only_for_the_extraction_and_swap(run_module, engine, reference):
    target = engine.create_volume("downtime")
    seed_target(engine.mountpoint(target))
    app = engine.container("app", target, state="running")

    restored = run_module("volume_restore", volume=target, src=reference[0], containers="stop")

    assert restored["changed"] is True, restored
    [entry] = restored["consistency"]["containers"]
    assert entry["action"] == "stop" and entry["performed"] is True
    assert restored["verify_seconds"] > 0 and restored["extract_seconds"] > 0
    app.reload()
    assert app.status == "running"


# -- 6. retention cannot be fooled by a sidecar's creation time ----------------------------


def test_a_sidecar_claiming_the_future_makes_prune_delete_nothing_newer(run_module, engine, backup_dir):
    name = engine.create_volume("future")
    engine.fill(name)
    first = run_module("volume_backup", volume=name, dest=str(backup_dir), if_changed=False)["archive"]["path"]
    time.sleep(1.1)
    second = run_module("volume_backup", volume=name, dest=str(backup_dir), if_changed=False)["archive"]["path"]
    metadata = crafted.read_sidecar(first)
    metadata["created"] = "2099-01-01T00:00:00Z"
    crafted.write_sidecar(first, metadata)

    pruned = run_module("backup_prune", path=str(backup_dir), keep_last=1)

    assert os.path.exists(second) and os.path.exists(first)
    assert [item["path"] for item in pruned["damaged"]] == [first]
    assert "but its name says" in pruned["damaged"][0]["reason"]
    assert [item["path"] for item in pruned["kept"]] == [second]
    latest = run_module("backup_info", path=str(backup_dir))["latest"]
    assert latest[name]["path"] == second
