# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine-side volume lock: waiting, timing out, breaking stale locks, killed holders,
and many runs on one volume at once."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import adhoc_process
from conftest import TEST_IMAGE

WRITER = ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo $i >> /data/log; sleep 0.01; done"]


def _lock_name(volume):
    return "persist-lock-%s" % volume


def _fake_lock(docker_client, volume, running, owner="elsewhere.example/4242/1", expires_in=3600, stops=""):
    """A lock container as another run would leave it."""
    now = int(time.time())
    container = docker_client.containers.create(
        TEST_IMAGE,
        ["sleep", "300"] if running else ["true"],
        name=_lock_name(volume),
        network_mode="none",
        labels={
            "persist.docker.lock": volume,
            "persist.docker.lock.operation": "volume_restore",
            "persist.docker.lock.owner": owner,
            "persist.docker.lock.acquired": str(now - 60),
            "persist.docker.lock.expires": str(now + expires_in),
            "persist.docker.lock.stops": stops,
            "persist.docker.lock.pauses": "",
        },
    )
    container.start()
    if not running:
        container.wait(timeout=60)
    return container


def _lock_containers(docker_client, volume):
    return docker_client.containers.list(all=True, filters={"name": _lock_name(volume)})


def test_a_live_lock_makes_the_second_run_wait_then_fail_naming_the_holder(run_module, engine, backup_dir, docker_client):
    name = engine.create_volume("held")
    engine.fill(name)
    _fake_lock(docker_client, name, running=True)

    started = time.monotonic()
    result = run_module("volume_backup", volume=name, dest=str(backup_dir), lock_timeout=3)

    assert result.get("failed") is True, result
    assert time.monotonic() - started >= 3
    for words in ("is locked by another run", "volume_restore", "pid 4242 on host elsewhere.example", "lock_timeout", _lock_name(name)):
        assert words in result["msg"], (words, result["msg"])
    assert os.listdir(backup_dir) == []
    assert len(_lock_containers(docker_client, name)) == 1  # somebody else's lock is left alone


def test_a_lock_whose_run_ended_is_broken_and_the_containers_it_stopped_are_started(run_module, engine, backup_dir, docker_client):
    name = engine.create_volume("stale")
    engine.fill(name)
    # The killed run had stopped this container and recorded it in its lock.
    victim = engine.container("victim", name, state="running", command=WRITER)
    victim.stop(timeout=10)
    _fake_lock(docker_client, name, running=False, stops=victim.id)

    result = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert not result.get("failed"), result
    [broken] = result["lock"]["broken"]
    assert broken["reason"].startswith("the run that held it ended without releasing it")
    assert (broken["operation"], broken["stops"]) == ("volume_restore", [victim.id])
    assert result["consistency"]["restarted_after_interrupted_run"] == [{"id": victim.id, "name": victim.name, "left": "stop", "volume": name}]
    victim.reload()
    assert victim.status == "running"
    assert _lock_containers(docker_client, name) == []


def test_an_expired_lock_is_broken_and_the_result_says_so(run_module, engine, backup_dir, docker_client):
    name = engine.create_volume("expired")
    engine.fill(name)
    _fake_lock(docker_client, name, running=True, expires_in=-5)

    result = run_module("volume_backup", volume=name, dest=str(backup_dir), lock_timeout=5)

    assert not result.get("failed"), result
    [broken] = result["lock"]["broken"]
    assert broken["reason"].startswith("it expired at")
    assert result["lock"]["waited_seconds"] < 5


def test_a_killed_holder_leaves_a_lock_that_the_next_run_breaks_and_its_containers_run_again(run_module, engine, backup_dir, docker_client):
    name = engine.create_volume("killed")
    engine.run(name, "head -c 64000000 /dev/urandom > /data/big")
    writer = engine.container("writer", name, state="running", command=WRITER)
    dest = backup_dir / "archives"
    dest.mkdir()

    with adhoc_process.DirectoryWatch(dest) as watch:
        process = adhoc_process.start("volume_backup", {"volume": name, "dest": str(dest), "containers": "stop"})
        partial = watch.wait_for(lambda entry: entry.startswith(".persist-partial-"), timeout=120)
        adhoc_process.kill_tree(process)
    assert partial is not None, process.communicate()

    # The engine saw the holder's connection close: its lock container stopped by itself.
    assert adhoc_process.wait_until(
        lambda: [c.status for c in _lock_containers(docker_client, name)] == ["exited"], timeout=30, interval=0.1
    )
    writer.reload()
    assert writer.status == "exited"

    result = run_module("volume_backup", volume=name, dest=str(dest), containers="stop")

    assert not result.get("failed"), result
    assert result["changed"] is True
    [broken] = result["lock"]["broken"]
    assert broken["operation"] == "volume_backup" and broken["stops"] == [writer.id]
    assert [entry["id"] for entry in result["consistency"]["restarted_after_interrupted_run"]] == [writer.id]
    writer.reload()
    assert writer.status == "running"


def test_eight_runs_on_one_volume_never_overlap_and_waiters_succeed_or_fail_with_the_lock_message(engine, backup_dir):
    name = engine.create_volume("eight")
    engine.run(name, "head -c 8000000 /dev/urandom > /data/payload")
    dest = backup_dir / "archives"
    # Half wait long enough for all the others; half give up after a second.
    tasks = [
        {"volume": name, "dest": str(dest), "if_changed": False, "lock_timeout": 300 if number % 2 == 0 else 1}
        for number in range(8)
    ]

    for _round in range(2):
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda task: adhoc_process.run("volume_backup", task, timeout=600), tasks))

        held = []
        for task, result in zip(tasks, results):
            if result.get("failed"):
                assert "is locked by another run" in result["msg"], result
                assert task["lock_timeout"] == 1, result
            else:
                assert result["changed"] is True, result
                held.append((result["lock"]["acquired_at"], result["lock"]["released_at"]))
        assert len(held) >= 4
        held.sort()
        for (_start, end), (next_start, _next_end) in zip(held, held[1:]):
            assert end <= next_start, held
    archives = [entry for entry in os.listdir(dest) if entry.endswith(".tar.zst")]
    sidecars = [entry for entry in os.listdir(dest) if entry.endswith(".tar.zst.json")]
    assert len(archives) == len(sidecars) and len(set(archives)) == len(archives)
    assert _lock_containers(engine.client, name) == []
