# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup and restore around live containers: fail, stop, pause, ignore, labels, order.

The containers here are real: a writer appends a numbered line to a log on the volume every
few milliseconds and exits cleanly on SIGTERM, so a stopped writer is one that stopped writing.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time


import adhoc_process
from volume_trees import write_file

# Appends "N" lines to /data/log until SIGTERM; the trap makes it stop at once and cleanly.
WRITER = ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo $i >> /data/log; sleep 0.01; done"]


def _started_at(container):
    container.reload()
    return container.attrs["State"]["StartedAt"]


def _writer(engine, volume, suffix="writer", **create_args):
    writer = engine.container(suffix, volume, state="running", command=WRITER, **create_args)
    # It has written something before anyone looks.
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(engine.mountpoint(volume), "log")):
        assert time.monotonic() < deadline, "the writer did not start writing"
        time.sleep(0.05)
    return writer


def _archive_member(path, member):
    done = subprocess.run(["tar", "--zstd", "-xOf", path, member], capture_output=True, check=True)
    return done.stdout


def _sidecar(archive):
    with open(archive["sidecar"]) as handle:
        return json.load(handle)


def test_backup_default_refuses_a_running_writer_naming_it_and_the_options(run_module, engine, backup_dir):
    name = engine.create_volume("refuse")
    writer = _writer(engine, name)
    started = _started_at(writer)

    for check in (True, False):
        result = run_module("volume_backup", check=check, volume=name, dest=str(backup_dir))
        assert result.get("failed") is True, result
        for word in (writer.name, name, "containers: stop", "persist.docker.containers"):
            assert word in result["msg"], (word, result["msg"])
        assert [entry["name"] for entry in result["containers"]] == [writer.name]
    assert os.listdir(backup_dir) == []
    assert _started_at(writer) == started and writer.status == "running"


def test_backup_with_stop_stops_the_writer_for_the_copy_and_starts_it_again(run_module, engine, backup_dir):
    name = engine.create_volume("stop")
    writer = _writer(engine, name)
    started = _started_at(writer)

    result = run_module("volume_backup", volume=name, dest=str(backup_dir), containers="stop", stop_timeout=30)

    assert not result.get("failed"), result
    assert result["changed"] is True
    [entry] = result["consistency"]["containers"]
    assert (entry["name"], entry["action"], entry["policy_from"], entry["performed"]) == (writer.name, "stop", "option", True)
    assert entry["downtime_seconds"] > 0 and entry["killed_after_stop_timeout"] is False
    assert result["consistency"]["method"] == "containers stopped"
    assert "stop container %s and start it again afterwards" % writer.name in result["actions"]
    assert _started_at(writer) != started and writer.status == "running"
    # The writer was stopped for the whole copy: the archived log is a clean prefix of the
    # live one (every line complete and numbered in order), and the writer went on after it.
    archived = _archive_member(result["archive"]["path"], "./log").decode().splitlines()
    assert archived == [str(number) for number in range(1, len(archived) + 1)]
    with open(os.path.join(engine.mountpoint(name), "log")) as handle:
        live = handle.read().splitlines()
    assert live[: len(archived)] == archived and len(live) > len(archived)
    sidecar = _sidecar(result["archive"])
    assert sidecar["consistency"]["method"] == "containers stopped"
    assert sidecar["consistency"]["containers"] == [{"name": writer.name, "action": "stop", "policy_from": "option"}]
    assert result["lock"]["names"] == ["persist-lock-%s" % name] and result["lock"]["broken"] == []
    assert engine.client.containers.list(all=True, filters={"name": "persist-lock-%s" % name}) == []


def test_an_unchanged_volume_is_not_backed_up_again_and_its_containers_are_not_stopped(run_module, engine, backup_dir):
    """The metadata fingerprint is compared before anything is locked or stopped: a service
    whose volume did not change is not taken down every night for nothing."""
    name = engine.create_volume("unchanged-service")
    write_file(engine.mountpoint(name) / "data", b"settled")
    reader = engine.container("idle", name, state="running", labels={"persist.docker.containers": "stop"})
    first = run_module("volume_backup", volume=name, dest=str(backup_dir))
    assert first["changed"] is True and first["consistency"]["containers"][0]["performed"] is True, first
    started = _started_at(reader)

    again = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert again["changed"] is False, again
    assert "metadata fingerprint equals" in again["skipped_reason"]
    assert again["consistency"]["containers"] == [] and again["lock"]["names"] == []
    assert _started_at(reader) == started and reader.status == "running"


def test_check_mode_reports_the_containers_it_would_stop_and_stops_nothing(run_module, engine, backup_dir):
    name = engine.create_volume("check")
    writer = _writer(engine, name)
    started = _started_at(writer)

    result = run_module("volume_backup", check=True, volume=name, dest=str(backup_dir), containers="stop")

    assert not result.get("failed"), result
    assert result["changed"] is True
    [entry] = result["consistency"]["containers"]
    assert (entry["action"], entry["performed"]) == ("stop", False)
    assert "stop container %s and start it again afterwards" % writer.name in result["actions"]
    assert _started_at(writer) == started and writer.status == "running"
    assert os.listdir(backup_dir) == []


def test_labels_opt_containers_in_and_the_option_wins_over_them(run_module, engine, backup_dir):
    name = engine.create_volume("labels")
    labelled = _writer(engine, name, "labelled", labels={"persist.docker.containers": "stop"})
    reader = engine.container("reader", name, state="running", read_only=True)

    result = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert not result.get("failed"), result
    by_name = dict((entry["name"], entry) for entry in result["consistency"]["containers"])
    assert (by_name[labelled.name]["action"], by_name[labelled.name]["policy_from"]) == ("stop", "label")
    # A read-only reader does not disturb a backup: left running, whatever its policy.
    assert (by_name[reader.name]["action"], by_name[reader.name]["policy_from"]) == ("none", "default")
    labelled.reload()
    assert labelled.status == "running"

    explicit = run_module("volume_backup", volume=name, dest=str(backup_dir), containers="fail", if_changed=False)
    assert explicit.get("failed") is True, explicit
    assert labelled.name in explicit["msg"]


def test_a_label_with_an_unknown_policy_is_refused_naming_the_label(run_module, engine, backup_dir):
    name = engine.create_volume("bad-label")
    _writer(engine, name, labels={"persist.docker.containers": "freeze"})

    result = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert result.get("failed") is True, result
    assert "persist.docker.containers=freeze" in result["msg"] and "fail, stop, pause, ignore" in result["msg"]
    assert os.listdir(backup_dir) == []


def test_pause_freezes_writers_for_a_backup_and_says_it_is_crash_consistent(run_module, engine, backup_dir):
    name = engine.create_volume("pause")
    writer = _writer(engine, name)
    started = _started_at(writer)

    result = run_module("volume_backup", volume=name, dest=str(backup_dir), containers="pause")

    assert not result.get("failed"), result
    assert result["consistency"]["method"] == "containers paused (crash-consistent only)"
    assert _sidecar(result["archive"])["consistency"]["method"] == "containers paused (crash-consistent only)"
    # Paused, not restarted: the same process runs on, and it is no longer paused.
    assert _started_at(writer) == started
    assert writer.attrs["State"]["Paused"] is False and writer.status == "running"


def test_ignore_copies_live_data_and_records_it(run_module, engine, backup_dir):
    name = engine.create_volume("ignore")
    writer = _writer(engine, name)
    started = _started_at(writer)

    result = run_module("volume_backup", volume=name, dest=str(backup_dir), containers="ignore")

    assert not result.get("failed"), result
    assert result["consistency"]["method"] == "live copy while containers ran (crash-consistent at best)"
    assert _sidecar(result["archive"])["consistency"]["containers"] == [{"name": writer.name, "action": "ignore", "policy_from": "option"}]
    assert _started_at(writer) == started


def _bulky_volume(engine, suffix):
    """A volume with a 64 MiB file: tar reads its root for a while."""
    name = engine.create_volume(suffix)
    write_file(os.path.join(engine.mountpoint(name), "bulk"), os.urandom(64 << 20))
    return name


def test_ignore_keeps_the_backup_of_a_volume_that_changes_while_it_is_read_and_says_so(run_module, engine, backup_dir):
    name = _bulky_volume(engine, "busy")
    # A new file in the root every 5 ms while tar reads it: GNU tar exits 1, "file changed as we read it".
    creator = engine.container("busy-creator", name, state="running", command=[
        "sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); : > /data/new-$i; sleep 0.005; done"])

    result = run_module("volume_backup", volume=name, dest=str(backup_dir), containers="ignore")

    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert any("changed while the backup read them (containers: ignore" in warning for warning in result.get("warnings", [])), result.get("warnings")
    recorded = _sidecar(result["archive"])["consistency"]
    assert any("file changed as we read it" in line for line in recorded["changed_while_read"]), recorded
    assert recorded["containers"] == [{"name": creator.name, "action": "ignore", "policy_from": "option"}]
    # Again, with that backup in dest: the unchanged check reads the volume as it changes too.
    again = run_module("volume_backup", volume=name, dest=str(backup_dir), containers="ignore")
    assert not again.get("failed"), again.get("msg")
    assert again["changed"] is True and again["archive"]["path"] != result["archive"]["path"]
    # The archive is complete and matches its sidecar: it restores.
    restored_volume = engine.name("busy-restored")
    restored = run_module("volume_restore", volume=restored_volume, src=result["archive"]["path"], source_volume=name)
    assert not restored.get("failed"), restored.get("msg")
    assert os.path.getsize(os.path.join(engine.mountpoint(restored_volume), "bulk")) == 64 << 20
    creator.reload()
    assert creator.status == "running"


def test_a_volume_that_changes_while_read_with_no_container_on_it_fails_naming_the_cause(run_module, engine, backup_dir):
    name = _bulky_volume(engine, "busy-host")
    root = engine.mountpoint(name)
    stop = threading.Event()

    def create_files():  # a writer on the host, which no containers policy sees
        index = 0
        while not stop.is_set():
            index += 1
            write_file(os.path.join(root, "host-%d" % index), b"")
            time.sleep(0.005)

    writer = threading.Thread(target=create_files, daemon=True)
    writer.start()
    try:
        result = run_module("volume_backup", volume=name, dest=str(backup_dir))
    finally:
        stop.set()
        writer.join()

    assert result.get("failed") is True, result
    assert "changed while it was read" in result["msg"] and "file changed as we read it" in result["msg"], result["msg"]
    assert "containers: ignore" in result["msg"] and "No archive was kept" in result["msg"]
    assert sorted(os.listdir(str(backup_dir))) == []


def test_restore_refuses_pause_and_with_stop_restores_under_a_stopped_container(run_module, engine, backup_dir):
    name = engine.create_volume("restore")
    root = engine.mountpoint(name)
    write_file(os.path.join(root, "state"), b"backed up\n")
    backup = run_module("volume_backup", volume=name, dest=str(backup_dir))
    assert backup["changed"] is True, backup
    write_file(os.path.join(root, "state"), b"changed later\n")
    user = engine.container("user", name, state="running", read_only=True)
    started = _started_at(user)

    paused = run_module("volume_restore", volume=name, src=backup["archive"]["path"], containers="pause")
    assert paused.get("failed") is True, paused
    assert "paused" in paused["msg"] and "containers: stop" in paused["msg"] and user.name in paused["msg"]

    result = run_module("volume_restore", volume=name, src=backup["archive"]["path"], containers="stop", stop_timeout=1)

    assert not result.get("failed"), result
    assert result["changed"] is True
    [entry] = result["consistency"]["containers"]
    # A restore stops read-only users too (they would see their files change). sleep ignores
    # SIGTERM as pid 1, so the engine kills it after stop_timeout, and the result says so.
    assert (entry["action"], entry["read_only"], entry["killed_after_stop_timeout"]) == ("stop", True, True)
    with open(os.path.join(root, "state"), "rb") as handle:
        assert handle.read() == b"backed up\n"
    assert _started_at(user) != started and user.status == "running"


# Watches the volume at /data: says once per run whether a staging tree appeared while it ran
# (and, with PLANT=1, writes a file into it), and says when it is asked to stop.
WATCHER = ["sh", "-c", """
trap 'echo "stopping"; exit 0' TERM
seen=
while :; do
    for staging in /data/.persist-staging-*; do
        [ -d "$staging" ] || continue
        [ -n "$seen" ] || echo "staging seen while running"
        seen=1
        if [ "${PLANT:-}" = 1 ]; then echo planted >"$staging/planted" 2>/dev/null || true; fi
    done
    sleep 0.01
done
"""]


def _restore_under_a_watcher(run_module, engine, backup_dir, suffix, plant):
    """A volume of 48 MiB backed up, then changed, with a running WATCHER on it; returns
    (volume root, watcher, the restore's result with containers: stop)."""
    name = engine.create_volume(suffix)
    root = engine.mountpoint(name)
    write_file(os.path.join(root, "bulk"), os.urandom(48 << 20))
    write_file(os.path.join(root, "state"), b"backed up\n")
    backup = run_module("volume_backup", volume=name, dest=str(backup_dir))
    assert backup["changed"] is True, backup
    write_file(os.path.join(root, "state"), b"changed later\n")
    watcher = engine.container(suffix, name, state="running", command=WATCHER, environment={"PLANT": "1" if plant else "0"})
    return root, watcher, run_module("volume_restore", volume=name, src=backup["archive"]["path"], containers="stop")


def test_a_restore_stops_its_containers_only_to_read_the_staged_tree_back_and_swap_it(run_module, engine, backup_dir):
    root, watcher, result = _restore_under_a_watcher(run_module, engine, backup_dir, "late-stop", plant=False)

    assert not result.get("failed"), result
    with open(os.path.join(root, "state"), "rb") as handle:
        assert handle.read() == b"backed up\n"
    log = watcher.logs().decode()
    assert log.index("staging seen while running") < log.index("stopping"), log
    [entry] = result["consistency"]["containers"]
    assert (entry["action"], entry["performed"]) == ("stop", True) and entry["downtime_seconds"] > 0
    watcher.reload()
    assert watcher.status == "running"


def test_what_a_running_container_writes_into_the_staging_tree_fails_the_read_back(run_module, engine, backup_dir):
    root, watcher, result = _restore_under_a_watcher(run_module, engine, backup_dir, "planter", plant=True)

    assert result.get("failed") is True, result
    assert "does not read back as the archive" in result["msg"] and "planted" in result["msg"], result["msg"]
    with open(os.path.join(root, "state"), "rb") as handle:
        assert handle.read() == b"changed later\n", "nothing was swapped in"
    assert not [entry for entry in os.listdir(root) if entry.startswith(".persist-")]
    watcher.reload()
    assert watcher.status == "running", "the container that was stopped runs again"


def test_a_restore_whose_archive_fails_its_checks_never_stops_the_containers(run_module, engine, backup_dir):
    name = engine.create_volume("never-stopped")
    root = engine.mountpoint(name)
    write_file(os.path.join(root, "bulk"), os.urandom(4 << 20))
    backup = run_module("volume_backup", volume=name, dest=str(backup_dir))
    assert backup["changed"] is True, backup
    write_file(os.path.join(root, "state"), b"changed later\n")
    archive = backup["archive"]["path"]
    with open(archive, "r+b") as handle:  # one byte in the middle of the archive
        handle.seek(os.path.getsize(archive) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    user = engine.container("never-stopped", name, state="running", command=WRITER)
    started = _started_at(user)

    # restore_when always: the archive is verified while it is extracted, with the container running.
    result = run_module("volume_restore", volume=name, src=archive, containers="stop", restore_when="always")

    assert result.get("failed") is True, result
    [entry] = result["consistency"]["containers"]
    assert (entry["action"], entry["performed"]) == ("stop", False) and "downtime_seconds" not in entry, entry
    assert _started_at(user) == started and user.status == "running"
    with open(os.path.join(root, "state"), "rb") as handle:
        assert handle.read() == b"changed later\n"
    assert not [entry for entry in os.listdir(root) if entry.startswith(".persist-")]


def test_containers_are_stopped_dependents_first_and_started_dependencies_first(run_module, engine, backup_dir, docker_client):
    name = engine.create_volume("order")
    # "app" shares the network namespace of "db": it cannot start before db does.
    db = _writer(engine, name, "db")
    app = engine.container("app", name, state="running", command=WRITER[:2] + [WRITER[2].replace("/data/log", "/data/app-log")],
                           network_mode="container:%s" % db.id)
    since = time.time()

    result = run_module("volume_backup", volume=name, dest=str(backup_dir), containers="stop")

    assert not result.get("failed"), result
    events = [
        (event["Action"], event["id"])
        for event in docker_client.api.events(since=int(since), until=int(time.time()) + 1, decode=True,
                                              filters={"container": [db.id, app.id], "type": "container"})
        if event["Action"] in ("stop", "start") and event["timeNano"] > since * 1e9
    ]
    assert events == [("stop", app.id), ("stop", db.id), ("start", db.id), ("start", app.id)], events
    for container in (db, app):
        container.reload()
        assert container.status == "running"


def test_a_failing_backup_starts_the_stopped_containers_again(run_module, engine, backup_dir):
    name = engine.create_volume("fails")
    writer = _writer(engine, name)
    blocker = backup_dir / "not-a-directory"
    blocker.write_text("a file where the archives should go")

    result = run_module("volume_backup", volume=name, dest=str(blocker / "sub"), containers="stop")

    assert result.get("failed") is True, result
    writer.reload()
    assert writer.status == "running"
    assert result["consistency"]["containers"][0]["downtime_seconds"] > 0


def test_a_helper_killed_mid_backup_fails_clearly_and_the_writer_runs_again(engine, backup_dir):
    name = engine.create_volume("helper-dies")
    engine.run(name, "head -c 100000000 /dev/urandom > /data/big")
    writer = _writer(engine, name)
    dest = backup_dir / "archives"
    dest.mkdir()

    with adhoc_process.DirectoryWatch(dest) as watch:
        process = adhoc_process.start("volume_backup", {"volume": name, "dest": str(dest), "containers": "stop"})
        assert watch.wait_for(lambda entry: entry.startswith(".persist-partial-"), timeout=120), process.communicate()

        # The temporary archive exists just before its helper starts streaming into it.
        def streaming():
            return [helper for helper in engine.helpers_on(name) if helper.status == "running"]

        assert adhoc_process.wait_until(streaming, timeout=60, interval=0.01)
        for helper in streaming():
            helper.kill()
    stdout, stderr = process.communicate(timeout=300)
    result = adhoc_process.parse(stdout.decode(), stderr.decode())

    assert result.get("failed") is True, result
    assert "helper container" in result["msg"] and name in result["msg"], result["msg"]
    assert os.listdir(dest) == []
    writer.reload()
    assert writer.status == "running"
    assert result["consistency"]["containers"][0]["downtime_seconds"] > 0
