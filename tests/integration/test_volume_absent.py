# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.volume with state=absent: never removes data or a volume in use by surprise."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("check", [True, False], ids=["check", "real"])
def test_absent_on_a_missing_volume_is_ok_and_unchanged(run_module, engine, check):
    name = engine.name("missing")

    result = run_module("volume", check=check, diff=True, name=name, state="absent")

    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["actions"] == []
    assert result["volume"] == {"name": name, "exists": False}
    assert result["diff"] == {"before": {}, "after": {}}
    assert engine.inspect(name) is None


def test_absent_removes_an_empty_volume_after_check_mode_predicts_it(run_module, engine):
    name = engine.create_volume("empty", labels={"tier": "scratch"})
    args = dict(name=name, state="absent")

    check = run_module("volume", check=True, diff=True, **args)
    assert not check.get("failed"), check
    assert check["changed"] is True
    assert check["actions"] == ["remove volume %s" % name]
    assert check["diff"] == {
        "before": dict(name=name, driver="local", driver_opts={}, labels={"tier": "scratch"}),
        "after": {},
    }
    assert check["usage"] == {"entries": 0, "bytes": 0, "disk_bytes": 0, "empty": True}
    assert engine.inspect(name) is not None, "check mode removed the volume"

    real = run_module("volume", diff=True, **args)
    assert not real.get("failed"), real
    assert real["changed"] is True
    assert real["actions"] == check["actions"]
    assert real["diff"] == check["diff"]
    assert real["volume"] == {"name": name, "exists": False}
    assert engine.inspect(name) is None

    again = run_module("volume", **args)
    assert again["changed"] is False and not again.get("failed"), again
    check_again = run_module("volume", check=True, **args)
    assert check_again["changed"] is False and not check_again.get("failed"), check_again


def test_absent_refuses_a_volume_with_data_and_keeps_it(run_module, engine):
    name = engine.create_volume("data")
    held = engine.fill(name)
    snapshot = engine.snapshot(name)

    for check in (True, False):
        result = run_module("volume", check=check, name=name, state="absent")
        assert result.get("failed") is True, result
        assert result["changed"] is False
        assert "Volume %s holds %d entries (%d bytes)" % (name, held["entries"], held["bytes"]) in result["msg"]
        assert "force: true" in result["msg"]
        usage = result["usage"]
        assert (usage["entries"], usage["bytes"], usage["empty"]) == (held["entries"], held["bytes"], False)
        assert usage["disk_bytes"] > 0

    assert engine.inspect(name) is not None
    assert engine.snapshot(name) == snapshot
    assert engine.helpers_on(name) == []


def test_absent_counts_data_behind_directories_nobody_may_read_and_keeps_it(run_module, engine):
    # The helper runs without most capabilities; a tree it could not read must not look empty.
    name = engine.create_volume("locked")
    engine.run(
        name,
        "mkdir -p /data/locked/inner && head -c 100 /dev/zero > /data/locked/inner/file && "
        "chown -R 1000:1000 /data/locked && chmod 000 /data/locked/inner /data/locked/inner/file /data/locked",
    )

    result = run_module("volume", name=name, state="absent")

    assert result.get("failed") is True, result
    assert "holds 3 entries (100 bytes)" in result["msg"]
    assert engine.inspect(name) is not None


def test_absent_with_force_removes_a_volume_holding_data(run_module, engine):
    name = engine.create_volume("forced")
    engine.fill(name)
    args = dict(name=name, state="absent", force=True)

    check = run_module("volume", check=True, **args)
    assert not check.get("failed"), check
    assert check["changed"] is True
    assert engine.inspect(name) is not None, "check mode removed the volume"

    real = run_module("volume", **args)
    assert not real.get("failed"), real
    assert real["changed"] is True
    assert engine.inspect(name) is None

    again = run_module("volume", **args)
    assert again["changed"] is False and not again.get("failed"), again


def test_absent_refuses_a_volume_used_by_running_and_stopped_containers_even_with_force(run_module, engine):
    name = engine.create_volume("in-use")
    running = engine.container("running", name, state="running")
    created = engine.container("created", name, state="created", read_only=True, mount_path="/mnt/ro")
    exited = engine.container("exited", name, state="exited")
    users = sorted(
        [
            dict(name=running.name, id=running.id, state="running", running=True, read_only=False, mount_path="/data", labels={}),
            dict(name=created.name, id=created.id, state="created", running=False, read_only=True, mount_path="/mnt/ro", labels={}),
            dict(name=exited.name, id=exited.id, state="exited", running=False, read_only=False, mount_path="/data", labels={}),
        ],
        key=lambda user: user["name"],
    )

    for check, force in ((False, False), (True, True), (False, True)):
        result = run_module("volume", check=check, name=name, state="absent", force=force)
        assert result.get("failed") is True, (check, force, result)
        assert result["changed"] is False
        msg = result["msg"]
        assert "Volume %s is used by 3 containers" % name in msg
        assert "%s (running, rw at /data)" % running.name in msg
        assert "%s (created, ro at /mnt/ro)" % created.name in msg
        assert "%s (exited, rw at /data)" % exited.name in msg
        assert result["containers"] == users

    assert engine.inspect(name) is not None
    for container in (running, created, exited):
        container.reload()
    assert running.status == "running"
