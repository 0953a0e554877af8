# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helper containers: none is left behind, abandoned ones are reaped, live ones are not."""

from __future__ import annotations

import secrets
import threading

import pytest
from docker.errors import NotFound

from ansible_collections.persist.docker.plugins.module_utils._docker_api import EngineAPI


@pytest.mark.parametrize(
    "module, args",
    [
        ("volume_info", {"size": True}),
        ("volume", {"state": "absent"}),
        ("volume", {"labels": {"tier": "new"}, "recreate": "if_empty"}),
    ],
    ids=["info-size", "absent-refused", "recreate-refused"],
)
def test_measuring_usage_leaves_no_helper_container(run_module, engine, module, args):
    name = engine.create_volume("measured", labels={"tier": "old"})
    engine.fill(name)

    for check in (True, False):
        result = run_module(module, check=check, name=name, **args)
        usage = result["volume"]["usage"] if module == "volume_info" else result["usage"]
        assert usage["entries"] == 3, result
        assert engine.helpers_on(name) == []


# Alone: any module run on the engine reaps what a dead owner left (conftest, "alone").
@pytest.mark.alone
def test_next_run_reaps_a_helper_whose_owner_died_and_spares_those_of_other_hosts(
    run_module, engine, docker_client, this_host
):
    name = engine.create_volume("reap")
    other_host = "persist-test-other-%s" % secrets.token_hex(4)
    # pid 999999 does not run here, so the run that started this helper is gone.
    abandoned = engine.fake_helper("dead-owner", "%s/999999/0" % this_host, running=False)
    # A run on another host may still be using these; only that host can tell.
    live_elsewhere = engine.fake_helper("other-host-running", "%s/4242/1234" % other_host, running=True)
    stopped_elsewhere = engine.fake_helper("other-host-stopped", "%s/4242/1234" % other_host, running=False)

    result = run_module("volume_info", name=name, size=True)

    assert not result.get("failed"), result
    assert abandoned.id[:12] in result["reaped_helpers"]
    with pytest.raises(NotFound):
        docker_client.containers.get(abandoned.id)
    assert live_elsewhere.id[:12] not in result["reaped_helpers"]
    assert stopped_elsewhere.id[:12] not in result["reaped_helpers"]
    live_elsewhere.reload()
    assert live_elsewhere.status == "running"
    stopped_elsewhere.reload()
    assert stopped_elsewhere.status == "exited"


# Alone: any module run on the engine reaps what a dead owner left (conftest, "alone").
@pytest.mark.alone
def test_two_runs_removing_the_same_leftover_at_once_both_go_on(engine, docker_client, this_host):
    """Runs on one host reap the same abandoned helper; the engine refuses the second of two
    simultaneous removals (409, one is under way). Neither may fail: one removed it, the
    other finds it gone."""
    api = EngineAPI(docker_client.api)
    for attempt in range(3):
        leftover = engine.fake_helper("removed-twice-%d" % attempt, "%s/999999/0" % this_host, running=True)
        start = threading.Barrier(2)
        results, errors = [], []

        def remove():
            start.wait()
            try:
                results.append(api.remove_container(leftover.id))
            except Exception as exc:  # the test's point: none may get here
                errors.append(exc)

        threads = [threading.Thread(target=remove) for _side in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert sorted(results) == [False, True]
        with pytest.raises(NotFound):
            docker_client.containers.get(leftover.id)
