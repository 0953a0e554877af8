# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pre_commands / post_commands: exec in real containers, abort on failure, post always runs."""

from __future__ import annotations

import os
import subprocess

# Runs until SIGTERM and leaves the volume alone: a service the hooks exec into.
SERVICE = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.2; done"]


def _service(engine, volume, suffix="service"):
    return engine.container(suffix, volume, state="running", command=SERVICE)


def _exec(container, command):
    code, output = container.exec_run(command)
    return code, output.decode()


def _members(path):
    done = subprocess.run(["tar", "--zstd", "-tf", path], capture_output=True, check=True)
    return done.stdout.decode().split()


def test_pre_command_output_lands_in_the_backup_and_post_command_cleans_up(run_module, engine, backup_dir):
    name = engine.create_volume("dump")
    service = _service(engine, name)

    result = run_module(
        "volume_backup", volume=name, dest=str(backup_dir), containers="ignore",
        pre_commands=[{"container": service.name, "command": "echo 'the dump' > /data/dump.sql && echo dumped"}],
        post_commands=[{"container": service.name, "command": ["rm", "/data/dump.sql"]}],
    )

    assert not result.get("failed"), result
    pre, post = result["hooks"]
    assert (pre["phase"], pre["rc"], pre["stdout"], pre["error"]) == ("pre", 0, "dumped\n", None)
    assert (post["phase"], post["rc"], post["error"]) == ("post", 0, None)
    assert "./dump.sql" in _members(result["archive"]["path"])
    assert not os.path.exists(os.path.join(engine.mountpoint(name), "dump.sql"))
    hooks = result["archive"]["path"] + ".json"
    with open(hooks) as handle:
        assert '"rc": 0' in handle.read()


def test_a_failing_pre_command_writes_no_archive_runs_post_commands_and_stops_nothing(run_module, engine, backup_dir):
    name = engine.create_volume("pre-fails")
    service = _service(engine, name)
    service.reload()
    started = service.attrs["State"]["StartedAt"]

    result = run_module(
        "volume_backup", volume=name, dest=str(backup_dir), containers="stop",
        pre_commands=[
            {"container": service.name, "command": "echo 'disk quota exceeded' >&2; exit 3"},
            {"container": service.name, "command": "touch /tmp/second-pre-ran"},
        ],
        post_commands=[{"container": service.name, "command": "touch /tmp/post-ran"}],
    )

    assert result.get("failed") is True, result
    assert "pre-command" in result["msg"] and service.name in result["msg"]
    assert "exited with code 3" in result["msg"] and "disk quota exceeded" in result["msg"]
    assert "nothing was done to the data" in result["msg"]
    assert [(hook["phase"], hook["rc"]) for hook in result["hooks"]] == [("pre", 3), ("post", 0)]
    assert os.listdir(backup_dir) == []
    assert _exec(service, ["test", "-e", "/tmp/post-ran"])[0] == 0
    assert _exec(service, ["test", "-e", "/tmp/second-pre-ran"])[0] == 1
    service.reload()
    assert service.status == "running" and service.attrs["State"]["StartedAt"] == started


def test_a_failing_post_command_fails_the_task_but_keeps_the_good_backup(run_module, engine, backup_dir):
    name = engine.create_volume("post-fails")
    service = _service(engine, name)

    result = run_module(
        "volume_backup", volume=name, dest=str(backup_dir), containers="stop",
        post_commands=[{"container": service.name, "command": "exit 7"}, {"container": service.name, "command": "touch /tmp/still-ran"}],
    )

    assert result.get("failed") is True, result
    assert "The volume_backup itself succeeded" in result["msg"] and "exited with code 7" in result["msg"]
    assert os.path.exists(result["archive"]["path"]) and os.path.exists(result["archive"]["sidecar"])
    service.reload()
    assert service.status == "running"
    # Post-commands run after the containers are back, and all of them run.
    assert _exec(service, ["test", "-e", "/tmp/still-ran"])[0] == 0


def test_hook_output_is_bounded_and_a_slow_hook_times_out(run_module, engine, backup_dir):
    name = engine.create_volume("bounded")
    service = _service(engine, name)

    chatty = run_module(
        "volume_backup", volume=name, dest=str(backup_dir), containers="ignore",
        pre_commands=[{"container": service.name, "command": "head -c 300000 /dev/zero | tr '\\0' x; echo; echo the end"}],
    )
    assert not chatty.get("failed"), chatty
    [hook] = chatty["hooks"]
    assert hook["output_truncated"] is True and len(hook["stdout"]) == 16384
    assert hook["stdout"].endswith("x\nthe end\n")

    slow = run_module(
        "volume_backup", volume=name, dest=str(backup_dir), containers="ignore", if_changed=False,
        pre_commands=[{"container": service.name, "command": "sleep 30", "timeout": 2}],
    )
    assert slow.get("failed") is True, slow
    assert "did not finish within 2 s" in slow["msg"]
    assert slow["hooks"][0]["seconds"] < 20


def test_a_hook_in_a_missing_container_is_named_in_the_failure(run_module, engine, backup_dir):
    name = engine.create_volume("missing")

    result = run_module(
        "volume_backup", volume=name, dest=str(backup_dir),
        pre_commands=[{"container": "%s-nobody" % name, "command": "true"}],
    )

    assert result.get("failed") is True, result
    assert "container %s-nobody does not exist" % name in result["msg"]
    assert os.listdir(backup_dir) == []


def test_check_mode_runs_no_hook(run_module, engine, backup_dir):
    name = engine.create_volume("check")
    service = _service(engine, name)

    result = run_module(
        "volume_backup", check=True, volume=name, dest=str(backup_dir), containers="ignore",
        pre_commands=[{"container": service.name, "command": "touch /tmp/pre-ran"}],
    )

    assert not result.get("failed"), result
    assert result["hooks"] == []
    assert "run pre-command in container %s" % service.name in result["actions"]
    assert _exec(service, ["test", "-e", "/tmp/pre-ran"])[0] == 1
