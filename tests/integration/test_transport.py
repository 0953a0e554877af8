# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The co-located fast path (a FIFO in a private directory) and the Docker API stream carry the
same data; results and sidecars say which ran; the directory never outlives its run.

The rest of the suite runs with the default (the fast path here) and, for the modules that
move data, again with PERSIST_TEST_TRANSPORT=api (conftest.data_transport). The Molecule
scenarios, whose modules run in a container with the engine's socket, show the automatic
fall-back.

The tests count the helpers that the engine creates and the private directories in the
temporary directory, whoever made them: they run alone."""

from __future__ import annotations

import glob
import os
import subprocess
import tempfile
import time

import adhoc_process
import pytest
import crafted_archives as crafted
from conftest import HELPER_LABEL
from volume_trees import differences, fill_random, snapshot, write_file

pytestmark = pytest.mark.alone

FAST_DIRECTORIES = os.path.join(tempfile.gettempdir(), "persist-fast-*")


def _helpers_created_since(docker_client, since):
    """The names of the helper containers the engine created since ``since`` (a time stamp)."""
    events = docker_client.events(since=since, until=time.time(), decode=True,
                                  filters={"type": "container", "event": "create", "label": HELPER_LABEL})
    return [event["Actor"]["Attributes"].get("name") for event in events]


def test_backup_restore_and_copy_say_which_transport_ran_and_give_the_same_data(run_module, engine, backup_dir):
    source = engine.create_volume("transport-source")
    root = engine.mountpoint(source)
    fill_random(root, "big", 20 << 20)
    write_file(root / "small", b"small")
    before = set(glob.glob(FAST_DIRECTORIES))
    results = {}

    for transport in ("auto", "api"):
        backup = run_module("volume_backup", volume=source, dest=str(backup_dir / transport), helper_transport=transport, if_changed=False)
        restore = run_module("volume_restore", volume=engine.name("restored-" + transport), src=backup["archive"]["path"],
                             helper_transport=transport)
        copy = run_module("volume_copy", source=source, dest=engine.name("copied-" + transport), helper_transport=transport)
        results[transport] = (backup, restore, copy)
        for result in results[transport]:
            assert result["changed"] is True, result
            assert result["transport"] == ("fifo" if transport == "auto" else "api"), result
        assert crafted.read_sidecar(backup["archive"]["path"])["transport"] == backup["transport"]
        for name in ("restored-", "copied-"):
            assert differences(snapshot(root), snapshot(engine.mountpoint(engine.name(name + transport)))) == []

    assert results["auto"][0]["archive"]["tree_digest"] == results["api"][0]["archive"]["tree_digest"]
    assert set(glob.glob(FAST_DIRECTORIES)) == before, "a fast-path directory outlived its run"


def test_a_fast_path_directory_left_by_a_killed_run_is_removed_by_the_next(run_module, engine, backup_dir):
    left = tempfile.mkdtemp(prefix="persist-fast-%s_999999_1-" % os.uname().nodename)
    name = engine.create_volume("transport-reap")
    write_file(engine.mountpoint(name) / "file", b"x")

    result = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert result["transport"] == "fifo", result
    assert not os.path.exists(left)


def test_an_unchanged_volume_moves_no_bulk_data(run_module, engine, backup_dir):
    name = engine.create_volume("transport-unchanged")
    write_file(engine.mountpoint(name) / "file", b"x")
    assert run_module("volume_backup", volume=name, dest=str(backup_dir))["changed"] is True

    again = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert again["changed"] is False, again
    assert again.get("transport") is None, "the metadata fingerprint decided, no tar stream was read"


def test_the_first_short_helper_carries_the_fast_path_proof(run_module, engine, backup_dir, docker_client):
    """A backup of a volume without reserved names runs two helpers: the metadata fingerprint
    (which finds no reserved names at the root, so none has to list them) and the data. The
    fast path's proof rides on the first instead of a container of its own (about 0.1 s each
    on this engine)."""
    name = engine.create_volume("transport-proof")
    write_file(engine.mountpoint(name) / "file", b"x" * 4096)
    since = time.time() - 0.001

    result = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert result["changed"] is True and result["transport"] == "fifo", result
    created = _helpers_created_since(docker_client, since)
    assert len(created) == 2, created


def test_a_changed_volume_is_read_once_to_compare_and_back_up(run_module, engine, backup_dir, docker_client):
    """With an earlier backup in dest and a metadata fingerprint that differs, the archive's own
    tree digest is compared with the latest backup's: three helpers (the fingerprint before the
    lock and under it, the data), not a fourth that reads every file to compare first."""
    name = engine.create_volume("transport-changed")
    write_file(engine.mountpoint(name) / "file", b"x" * 4096)
    first = run_module("volume_backup", volume=name, dest=str(backup_dir))
    assert first["changed"] is True, first
    write_file(engine.mountpoint(name) / "file", b"y" * 4096)
    since = time.time() - 0.001

    second = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert second["changed"] is True and second["archive"]["tree_digest"] != first["archive"]["tree_digest"], second
    created = _helpers_created_since(docker_client, since)
    assert len(created) == 3, created


def test_a_restore_into_a_volume_equal_to_the_archive_reads_it_once_with_two_helpers(run_module, engine, backup_dir, docker_client):
    """The helper that lists the reserved names (and carries the fast path's proof) also says
    that the root holds entries, so no helper of its own reads the volume to see whether it is
    empty; the other helper reads the volume to compare it with the archive."""
    name = engine.create_volume("transport-noop")
    write_file(engine.mountpoint(name) / "file", b"x" * 4096)
    archive = run_module("volume_backup", volume=name, dest=str(backup_dir))["archive"]["path"]
    since = time.time() - 0.001

    again = run_module("volume_restore", volume=name, src=archive)

    assert again["changed"] is False and "already equals the archive" in again["skipped_reason"], again
    created = _helpers_created_since(docker_client, since)
    assert len(created) == 2, created


def test_a_restore_into_an_empty_volume_takes_its_root_from_the_reserved_names_listing(run_module, engine, backup_dir, docker_client):
    """The listing of the reserved names gives the tar of the root of a volume that holds no
    entry: no helper reads the volume to see that it is empty. Four helpers: that listing, the
    extraction, the read-back, the swap."""
    source = engine.create_volume("transport-empty-source")
    write_file(engine.mountpoint(source) / "file", b"x" * 4096)
    archive = run_module("volume_backup", volume=source, dest=str(backup_dir))["archive"]["path"]
    target = engine.create_volume("transport-empty-target")
    since = time.time() - 0.001

    result = run_module("volume_restore", volume=target, src=archive)

    assert result["changed"] is True and result["verified"] is True, result
    assert result["differences"]["added"] == 1, result["differences"]
    created = _helpers_created_since(docker_client, since)
    assert len(created) == 4, created
    assert (engine.mountpoint(target) / "file").read_bytes() == b"x" * 4096


def _helper_lifetimes(docker_client, since):
    """[(created, died, destroyed)] of the helper containers the engine created since ``since``,
    in the engine's own time (nanoseconds), in the order they were created."""
    events = docker_client.events(since=since, until=time.time(), decode=True,
                                  filters={"type": "container", "event": ["create", "die", "destroy"], "label": HELPER_LABEL})
    times = {}
    for event in events:
        times.setdefault(event["id"], {})[event["Action"]] = event["timeNano"]
    return sorted((seen["create"], seen.get("die"), seen.get("destroy")) for seen in times.values())


def _living_across_the_end(lifetimes):
    """The pairs (outer, inner) of helpers where one was created before the other died and
    lived on after it (the two may be created side by side, in either order)."""
    return [(outer, inner) for outer in lifetimes for inner in lifetimes
            if outer is not inner and outer[0] < inner[1] < outer[1]]


@pytest.mark.parametrize("transport", ["auto", "api"])
def test_the_helper_that_reads_a_restore_back_is_ready_before_the_extraction_ends(run_module, engine, backup_dir, docker_client, transport):
    """The read-back's helper is started beside the extraction's and held until it ended, so
    that no container is created while the engine writes the extracted data out (it starts
    none then): one helper lives across another's end, and the restore reads back right."""
    source = engine.create_volume("transport-held-source")
    fill_random(engine.mountpoint(source), "big", 8 << 20)
    archive = run_module("volume_backup", volume=source, dest=str(backup_dir))["archive"]["path"]
    target = engine.name("transport-held-target")
    since = time.time() - 0.001

    result = run_module("volume_restore", volume=target, src=archive, helper_transport=transport)

    assert result["changed"] is True and result["verified"] is True, result
    assert result["transport"] == ("fifo" if transport == "auto" else "api"), result
    lifetimes = _helper_lifetimes(docker_client, since)
    assert all(died is not None for _created, died, _destroyed in lifetimes), lifetimes
    assert len(_living_across_the_end(lifetimes)) == 1, lifetimes
    assert differences(snapshot(engine.mountpoint(source)), snapshot(engine.mountpoint(target))) == []


def test_a_restore_stops_the_containers_in_the_way_once_the_engine_is_done_with_the_extraction(
        run_module, engine, backup_dir, docker_client):
    """The engine writes the extracted data out when the extraction's helper ends; a service
    stopped meanwhile would wait for that in its own shutdown. The containers in the way are
    stopped once that helper is gone (the read-back's helper waits until then)."""
    source = engine.create_volume("transport-settle-source")
    fill_random(engine.mountpoint(source), "big", 32 << 20)
    archive = run_module("volume_backup", volume=source, dest=str(backup_dir))["archive"]["path"]
    target = engine.create_volume("transport-settle-target")
    write_file(engine.mountpoint(target) / "old", b"old")
    app = engine.container("app", target, state="running", command=["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $!; done"])
    since = time.time() - 0.001

    result = run_module("volume_restore", volume=target, src=archive, containers="stop")

    assert result["changed"] is True, result
    [entry] = result["consistency"]["containers"]
    assert (entry["name"], entry["action"], entry["performed"]) == (app.name, "stop", True), entry
    [(_held, extraction)] = _living_across_the_end(_helper_lifetimes(docker_client, since))
    [kill] = [event["timeNano"] for event in docker_client.events(since=since, until=time.time(), decode=True,
                                                                  filters={"type": "container", "event": "kill", "container": app.id})]
    assert extraction[2] is not None and extraction[2] < kill, (extraction, kill)
    app.reload()
    assert app.status == "running"
    assert differences(snapshot(engine.mountpoint(source)), snapshot(engine.mountpoint(target))) == []


def test_a_module_whose_directory_the_engine_cannot_see_falls_back_to_the_api_stream(engine, backup_dir, tmp_path):
    """As for a module in a container with the engine's socket: the fast path's directory is in
    a mount namespace of the module's own, so the engine cannot bind it. The short helper that
    carried the proof runs without it, and every task works through the API stream."""
    private = tmp_path / "private"
    private.mkdir()
    source = engine.create_volume("transport-unseen")
    fill_random(engine.mountpoint(source), "big", 3 << 20)
    write_file(engine.mountpoint(source) / "small", b"small")
    environment = dict(adhoc_process.ansible_environment(), TMPDIR=str(private))

    def run(module, **args):
        line = ["unshare", "--mount", "--propagation", "private", "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', str(private)]
        done = subprocess.run(line + adhoc_process.command(module, args), env=environment, capture_output=True, timeout=300, check=False)
        return adhoc_process.parse(done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))

    backup = run("volume_backup", volume=source, dest=str(backup_dir))
    copy = run("volume_copy", source=source, dest=engine.name("unseen-copy"))
    restore = run("volume_restore", volume=engine.name("unseen-copy"), src=backup["archive"]["path"], restore_when="always")

    for result in (backup, copy, restore):
        assert not result.get("failed") and result["changed"] is True, result
        assert result["transport"] == "api", result
    assert differences(snapshot(engine.mountpoint(source)), snapshot(engine.mountpoint(engine.name("unseen-copy")))) == []
    assert os.listdir(private) == [], "the engine's view of the directory stays empty"
