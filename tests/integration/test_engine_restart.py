# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker daemon stops in the middle of a backup.

The test runs its own second dockerd (own data root, exec root and socket), so the engine the
other tests use is never touched. It stops that daemon while the module streams the volume,
checks the failure is clear and leaves nothing under a final name, then starts the daemon
again: the next run breaks the dead run's lock, starts the container that run had stopped,
and backs the volume up.
"""

from __future__ import annotations

import os
import secrets

import adhoc_process
from second_engine import HELPER_IMAGE

WRITER = ["sh", "-c", "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo $i >> /data/log; sleep 0.01; done"]


def test_daemon_stopped_mid_backup_fails_clearly_and_the_next_run_restarts_its_containers(second_engine, backup_dir):
    engine, client = second_engine
    volume = "pt-restart-%s" % secrets.token_hex(3)
    client.volumes.create(volume)
    client.containers.run(HELPER_IMAGE, ["sh", "-c", "head -c 150000000 /dev/urandom > /data/big"],
                          volumes={volume: {"bind": "/data", "mode": "rw"}}, network_mode="none", remove=True)
    writer = client.containers.run(HELPER_IMAGE, WRITER, name=volume + "-writer", detach=True,
                                   volumes={volume: {"bind": "/data", "mode": "rw"}}, network_mode="none")
    dest = backup_dir / "archives"
    dest.mkdir()
    task = {"volume": volume, "dest": str(dest), "containers": "stop", "docker_host": engine.url}

    with adhoc_process.DirectoryWatch(dest) as watch:
        process = adhoc_process.start("volume_backup", task)
        partial = watch.wait_for(lambda entry: entry.startswith(".persist-partial-"), timeout=120)
        assert partial is not None, process.communicate()
        engine.stop()
    stdout, stderr = process.communicate(timeout=300)
    result = adhoc_process.parse(stdout.decode(), stderr.decode())

    assert result.get("failed") is True, result
    assert engine.url in result["msg"] or volume in result["msg"], result["msg"]
    assert "could not be started again" in result["msg"] and "run the task again" in result["msg"], result["msg"]
    assert os.listdir(dest) == [], "a failed backup left files: %s" % os.listdir(dest)

    client = engine.start()
    writer = client.containers.get(writer.id)
    assert writer.status == "exited"

    again = adhoc_process.run("volume_backup", task)

    assert not again.get("failed"), again
    assert again["changed"] is True
    [broken] = again["lock"]["broken"]
    assert broken["operation"] == "volume_backup" and broken["stops"] == [writer.id]
    assert [entry["id"] for entry in again["consistency"]["restarted_after_interrupted_run"]] == [writer.id]
    writer.reload()
    assert writer.status == "running"
    assert os.path.getsize(again["archive"]["path"]) > 150000000
