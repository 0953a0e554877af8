# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which containers a backup or restore stops, pauses or refuses, and in which order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._container_policy import (
    POLICY_LABEL,
    READS,
    WRITES,
    PolicyRefusal,
    consistency_method,
    dependencies,
    effective_policy,
    plan,
    start_order,
)


def user(name, running=True, read_only=False):
    return {"name": name, "id": "id-" + name, "state": "running" if running else "exited", "running": running,
            "read_only": read_only, "mount_path": "/data"}


def actions(entries):
    return dict((entry["name"], entry["action"]) for entry in entries)


def test_the_option_wins_over_labels_and_labels_over_the_default():
    assert effective_policy("ignore", {POLICY_LABEL: "stop"}) == ("ignore", "option")
    assert effective_policy(None, {POLICY_LABEL: " Stop "}) == ("stop", "label")
    assert effective_policy(None, {"other": "x"}) == ("fail", "default")
    with pytest.raises(ValueError, match="freeze is not one of fail, stop, pause, ignore"):
        effective_policy(None, {POLICY_LABEL: "freeze"})


def test_a_backup_cares_only_about_running_writers():
    users = [user("writer"), user("reader", read_only=True), user("stopped", running=False)]
    entries = plan(users, {}, "stop", READS)
    assert actions(entries) == {"writer": "stop", "reader": "none", "stopped": "none"}


def test_a_restore_cares_about_every_running_user_and_refuses_to_pause_them():
    users = [user("writer"), user("reader", read_only=True), user("stopped", running=False)]
    assert actions(plan(users, {}, "stop", WRITES)) == {"writer": "stop", "reader": "stop", "stopped": "none"}
    with pytest.raises(PolicyRefusal) as refusal:
        plan(users, {}, "pause", WRITES)
    assert refusal.value.reason == "pause"
    assert [entry["name"] for entry in refusal.value.containers] == ["writer", "reader"]


def test_the_default_refuses_naming_exactly_the_containers_in_the_way():
    users = [user("writer"), user("labelled"), user("reader", read_only=True)]
    with pytest.raises(PolicyRefusal) as refusal:
        plan(users, {"id-labelled": {POLICY_LABEL: "stop"}}, None, READS)
    assert refusal.value.reason == "fail"
    assert [entry["name"] for entry in refusal.value.containers] == ["writer"]
    entries = plan(users, {"id-labelled": {POLICY_LABEL: "stop"}}, None, READS, refuse=False)
    assert actions(entries) == {"writer": "fail", "labelled": "stop", "reader": "none"}


def test_the_method_says_how_consistency_was_had():
    assert consistency_method([]) == "no running writer"
    entries = plan([user("a"), user("b")], {"id-b": {POLICY_LABEL: "ignore"}}, None, READS, refuse=False)
    assert consistency_method(entries) == "live copy while containers ran (crash-consistent at best)"
    assert consistency_method(plan([user("a")], {}, "pause", READS)) == "containers paused (crash-consistent only)"


def test_dependencies_come_from_network_namespace_links_volumes_from_and_compose():
    by_name = {"db": "id-db", "cache": "id-cache", "files": "id-files"}
    services = {("shop", "queue"): {"id-queue"}}
    inspect = {
        "Id": "id-app",
        "HostConfig": {"NetworkMode": "container:id-db", "Links": ["/cache:/app/cache"], "VolumesFrom": ["files:ro"]},
        "Config": {"Labels": {"com.docker.compose.project": "shop",
                              "com.docker.compose.depends_on": "queue:service_started:false,missing:service_healthy:true"}},
    }
    assert dependencies(inspect, by_name, services) == {"id-db", "id-cache", "id-files", "id-queue"}
    assert dependencies({"Id": "x", "HostConfig": {"NetworkMode": "none"}}, by_name, services) == set()


def test_start_order_puts_dependencies_first_and_is_stable():
    names = {"a": "app", "d": "db", "c": "cache"}
    assert start_order(["a", "d", "c"], {"a": {"d", "c"}, "c": {"d"}}, names) == ["d", "c", "a"]
    # Without dependencies: name order.
    assert start_order(["a", "d", "c"], {}, names) == ["a", "c", "d"]
    # A cycle cannot hang or drop anyone.
    assert sorted(start_order(["a", "d"], {"a": {"d"}, "d": {"a"}}, names)) == ["a", "d"]


@given(st.data())
def test_start_order_respects_every_dependency_of_an_acyclic_graph(data):
    count = data.draw(st.integers(min_value=1, max_value=12))
    ids = ["c%02d" % number for number in range(count)]
    # Only edges to lower numbers: acyclic by construction.
    needs = dict(
        (container, set(data.draw(st.lists(st.sampled_from(ids[:number]), max_size=3))) if number else set())
        for number, container in enumerate(ids)
    )
    shuffled = data.draw(st.permutations(ids))
    order = start_order(shuffled, needs, dict((container, container) for container in ids))
    assert sorted(order) == ids
    position = dict((container, index) for index, container in enumerate(order))
    for container, needed in needs.items():
        for other in needed:
            assert position[other] < position[container]


def test_a_label_never_leaves_a_container_running_while_its_volume_is_written():
    """An image can carry labels into every container made from it: a label may make a
    container stop, but its ignore counts as fail for a restore or copy target; only the
    task's own option can say ignore there."""
    labels = {"id-app": {POLICY_LABEL: "ignore"}}
    with pytest.raises(PolicyRefusal) as refused:
        plan([user("app")], labels, None, WRITES)
    assert [entry["name"] for entry in refused.value.containers] == ["app"]
    assert refused.value.containers[0]["policy"] == "fail" and refused.value.containers[0]["policy_from"] == "label"
    assert actions(plan([user("app")], labels, "ignore", WRITES)) == {"app": "ignore"}
    assert actions(plan([user("app")], labels, None, READS)) == {"app": "ignore"}
    assert actions(plan([user("app")], {"id-app": {POLICY_LABEL: "stop"}}, None, WRITES)) == {"app": "stop"}
