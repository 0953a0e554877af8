# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.volume with state=present: create, compare, recreate only when empty."""

from __future__ import annotations

TMPFS_OPTS = {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}


def test_create_is_predicted_by_check_mode_then_done_once_with_labels_and_driver_opts(run_module, engine):
    name = engine.name("create")
    args = dict(name=name, driver_opts=TMPFS_OPTS, labels={"persist.backup": "true", "tier": 1, "flag": True})
    # Docker stores labels and options as strings; the module must say so in its results.
    labels = {"persist.backup": "true", "tier": "1", "flag": "true"}
    wanted = dict(name=name, driver="local", driver_opts=TMPFS_OPTS, labels=labels)

    check = run_module("volume", check=True, diff=True, **args)
    assert not check.get("failed"), check
    assert check["changed"] is True
    assert check["actions"] == ["create volume %s with driver local" % name]
    assert check["diff"] == {"before": {}, "after": wanted}
    assert check["volume"] == dict(wanted, exists=True)
    assert engine.inspect(name) is None, "check mode created the volume"

    real = run_module("volume", diff=True, **args)
    assert not real.get("failed"), real
    assert real["changed"] is True
    assert real["actions"] == check["actions"]
    assert real["diff"] == check["diff"]
    inspect = engine.inspect(name)
    assert inspect["Driver"] == "local"
    assert inspect["Options"] == TMPFS_OPTS
    assert inspect["Labels"] == labels
    assert real["volume"]["mountpoint"] == inspect["Mountpoint"]
    assert real["volume"]["created"] == inspect["CreatedAt"]
    # The options are real: a container that mounts the volume gets a tmpfs of 1 MiB.
    mount = engine.run(name, "grep ' /data ' /proc/mounts")
    assert mount.split()[2] == "tmpfs" and "size=1024k" in mount

    again = run_module("volume", diff=True, **args)
    assert not again.get("failed"), again
    assert again["changed"] is False
    assert again["actions"] == [] and again["differences"] == []
    assert again["diff"]["before"] == again["diff"]["after"] == wanted

    check_again = run_module("volume", check=True, **args)
    assert check_again["changed"] is False and not check_again.get("failed"), check_again
    assert engine.inspect(name) == inspect


def test_existing_volume_that_differs_fails_listing_each_difference_and_is_left_untouched(run_module, engine):
    name = engine.create_volume("differs", labels={"tier": "gold", "owner": "ops"}, driver_opts=TMPFS_OPTS)
    before = engine.inspect(name)
    args = dict(
        name=name,
        driver="persist-test-other-driver",
        driver_opts=dict(TMPFS_OPTS, o="size=2m"),
        labels={"tier": "silver", "new": "x"},
    )

    for check in (True, False):
        result = run_module("volume", check=check, diff=True, **args)
        assert result.get("failed") is True, result
        assert result["changed"] is False
        msg = result["msg"]
        assert "Volume %s exists with other settings than requested" % name in msg
        assert "driver is 'local', wanted 'persist-test-other-driver'" in msg
        assert "driver_opts[o] is 'size=1m', wanted 'size=2m'" in msg
        assert "labels[tier] is 'gold', wanted 'silver'" in msg
        assert "labels[new] is (unset), wanted 'x'" in msg
        assert "owner" not in msg, "a label the request does not name is not a difference"
        assert result["differences"] == [
            {"option": "driver", "key": None, "current": "local", "wanted": "persist-test-other-driver"},
            {"option": "driver_opts", "key": "o", "current": "size=1m", "wanted": "size=2m"},
            {"option": "labels", "key": "new", "current": None, "wanted": "x"},
            {"option": "labels", "key": "tier", "current": "gold", "wanted": "silver"},
        ]
        assert engine.inspect(name) == before


def test_driver_opts_must_match_exactly_so_an_option_left_out_is_a_difference(run_module, engine):
    name = engine.create_volume("opts", driver_opts=TMPFS_OPTS)
    before = engine.inspect(name)

    result = run_module("volume", name=name, driver_opts={"type": "tmpfs", "device": "tmpfs"})

    assert result.get("failed") is True, result
    assert "driver_opts[o] is 'size=1m', wanted (unset)" in result["msg"]
    assert result["differences"] == [{"option": "driver_opts", "key": "o", "current": "size=1m", "wanted": None}]
    assert engine.inspect(name) == before


def test_labels_beyond_the_request_and_values_equal_as_strings_are_no_difference(run_module, engine):
    name = engine.create_volume(
        "same",
        labels={"count": "1", "enabled": "true", "com.docker.compose.project": "demo"},
        driver_opts=TMPFS_OPTS,
    )
    before = engine.inspect(name)

    for check in (True, False):
        result = run_module(
            "volume", check=check, diff=True, name=name, labels={"count": 1, "enabled": True}
        )
        assert not result.get("failed"), result
        assert result["changed"] is False
        assert result["differences"] == []
        assert result["volume"]["labels"] == before["Labels"]
        assert result["volume"]["driver_opts"] == TMPFS_OPTS, "unset driver_opts are not compared"
    assert engine.inspect(name) == before


def test_recreate_if_empty_recreates_an_empty_volume_keeping_labels_not_requested(run_module, engine):
    name = engine.create_volume("recreate", labels={"tier": "old", "keep": "me"})
    args = dict(name=name, labels={"tier": "new"}, recreate="if_empty")
    expected_diff = {
        "before": dict(name=name, driver="local", driver_opts={}, labels={"tier": "old", "keep": "me"}),
        "after": dict(name=name, driver="local", driver_opts={}, labels={"tier": "new", "keep": "me"}),
    }

    check = run_module("volume", check=True, diff=True, **args)
    assert not check.get("failed"), check
    assert check["changed"] is True
    assert check["diff"] == expected_diff
    assert check["differences"] == [{"option": "labels", "key": "tier", "current": "old", "wanted": "new"}]
    assert check["usage"]["empty"] is True and check["usage"]["entries"] == 0
    assert engine.inspect(name)["Labels"] == {"tier": "old", "keep": "me"}, "check mode recreated it"

    real = run_module("volume", diff=True, **args)
    assert not real.get("failed"), real
    assert real["changed"] is True
    assert real["diff"] == check["diff"]
    assert real["actions"] == check["actions"]
    assert engine.inspect(name)["Labels"] == {"tier": "new", "keep": "me"}

    again = run_module("volume", diff=True, **args)
    assert not again.get("failed"), again
    assert again["changed"] is False
    check_again = run_module("volume", check=True, **args)
    assert check_again["changed"] is False and not check_again.get("failed"), check_again
    assert engine.helpers_on(name) == []


def test_recreate_if_empty_refuses_a_volume_with_data_naming_entries_and_bytes(run_module, engine):
    name = engine.create_volume("full", labels={"tier": "old"})
    held = engine.fill(name)
    snapshot = engine.snapshot(name)

    for check in (True, False):
        result = run_module("volume", check=check, name=name, labels={"tier": "new"}, recreate="if_empty")
        assert result.get("failed") is True, result
        assert result["changed"] is False
        assert "holds %d entries (%d bytes)" % (held["entries"], held["bytes"]) in result["msg"]
        assert "labels[tier] is 'old', wanted 'new'" in result["msg"]
        usage = result["usage"]
        assert (usage["entries"], usage["bytes"], usage["empty"]) == (held["entries"], held["bytes"], False)

    assert engine.inspect(name)["Labels"] == {"tier": "old"}
    assert engine.snapshot(name) == snapshot
    assert engine.helpers_on(name) == []


def test_recreate_if_empty_refuses_a_volume_that_a_stopped_container_references(run_module, engine):
    name = engine.create_volume("used", labels={"tier": "old"})
    user = engine.container("user", name, state="created")

    result = run_module("volume", name=name, labels={"tier": "new"}, recreate="if_empty")

    assert result.get("failed") is True, result
    assert result["changed"] is False
    assert "used by 1 container:" in result["msg"]
    assert "%s (created, rw at /data)" % user.name in result["msg"]
    assert result["containers"] == [
        dict(name=user.name, id=user.id, state="created", running=False, read_only=False, mount_path="/data", labels={})
    ]
    assert engine.inspect(name)["Labels"] == {"tier": "old"}


def test_recreate_that_the_engine_rejects_keeps_the_existing_volume(run_module, engine):
    # The local driver accepts only type, device and o: the new volume cannot be created.
    name = engine.create_volume("rejected", labels={"tier": "old"})
    before = engine.inspect(name)

    result = run_module(
        "volume",
        name=name,
        labels={"tier": "new"},
        driver_opts={"persist-test-no-such-option": "x"},
        recreate="if_empty",
    )

    assert result.get("failed") is True, result
    assert name in result["msg"] and "persist-test-no-such-option" in result["msg"]
    after = engine.inspect(name)
    assert after is not None, "the failed recreate left the volume removed: %r" % result
    assert (after["Driver"], after["Options"], after["Labels"]) == (before["Driver"], before["Options"], before["Labels"])


def test_aliases_volume_name_and_options_address_the_same_settings(run_module, engine):
    name = engine.create_volume("aliases", labels={"tier": "gold"}, driver_opts=TMPFS_OPTS)

    result = run_module("volume", volume_name=name, options=TMPFS_OPTS, labels={"tier": "gold"})

    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["volume"]["name"] == name
