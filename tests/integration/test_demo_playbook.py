# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo playbook, the README's main job (``scripts/demo``), told end to end against the
real engine as an operator plays it (``ansible-playbook persist.docker.demo``).

A run with ``demo_keep=true`` leaves the volume, the last application container and the
backups to look at; the next run starts from them, tells the story again and removes all it
made, the backup directory too once it is empty. Another demo on the same engine (another
``demo_prefix``, the same label) is never touched, nor stopped by the nightly backup of
chapter 4.
"""

from __future__ import annotations

import json
import sys

from conftest import PREFIX, TEST_IMAGE
from playbooks import failures, run_playbook

DEMO_LABEL = {"persist.demo": "lesson-1"}


def _play(tmp_path, extra_vars):
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    code, output = run_playbook("persist.docker.demo", inventory, extra_vars)
    assert code == 0 and not failures(output), failures(output)
    return output


def _result(output, task_name_start):
    """The result of the one task whose name starts with ``task_name_start``."""
    found = [task["hosts"]["localhost"] for play in output["plays"] for task in play["tasks"]
             if task["task"]["name"].startswith(task_name_start)]
    assert len(found) == 1, (task_name_start, len(found))
    return found[0]


def test_the_demo_keeps_what_it_is_asked_to_then_removes_all_it_made_and_nothing_else(engine, docker_client, tmp_path):
    prefix = PREFIX + "demo"
    volume = engine.name("demo-appdata")
    containers = ["%s-%s" % (prefix, suffix) for suffix in ("ephemeral", "app-1", "app-2", "app-3")]
    engine.adopt_containers(*containers)
    # Another demo on the same engine, kept by its user: same label, another prefix.
    other_volume = engine.create_volume("other-appdata", labels=dict(DEMO_LABEL, **{"persist.backup": "true"}))
    other_container = engine.container_name("other-app-3")
    docker_client.containers.run(TEST_IMAGE, ["sleep", "infinity"], name=other_container, detach=True, init=True,
                                 network_mode="none", labels=DEMO_LABEL, volumes={other_volume: {"bind": "/data"}})
    other_started = docker_client.api.inspect_container(other_container)["State"]["StartedAt"]
    backups = tmp_path / "demo-backups"
    demo_vars = {"demo_prefix": prefix, "demo_backup_dir": str(backups)}

    kept = _play(tmp_path, dict(demo_vars, demo_keep=True))
    again = _result(kept, "Restore once more")
    assert again["changed"] is False and "already equals" in again["skipped_reason"], again
    assert docker_client.volumes.get(volume).attrs["Labels"]["persist.demo"] == "lesson-1"
    assert docker_client.containers.get(prefix + "-app-3").status == "running"
    assert list(backups.glob(volume + "-*.tar.zst")), sorted(backups.iterdir())
    assert (backups / volume).is_dir(), sorted(backups.iterdir())  # the backup role's directory of the volume
    assert docker_client.containers.get(other_container).status == "running"

    _play(tmp_path, demo_vars)
    left = [container.name for container in docker_client.containers.list(all=True) if container.name in containers]
    assert not left, left
    assert engine.inspect(volume) is None
    assert not backups.exists(), sorted(backups.rglob("*"))
    # The other demo's volume and container are as they were, and never stopped.
    assert engine.inspect(other_volume) is not None
    state = docker_client.api.inspect_container(other_container)["State"]
    assert state["Running"] and state["StartedAt"] == other_started, state
