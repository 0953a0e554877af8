# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup playbook's batches over the fleet: persist_serial and persist_max_fail_percentage.

As the playbook documents them: hosts run in batches of persist_serial, one batch after the
other; by default every batch runs whatever failed before (even a batch whose only host
failed, which Ansible alone would take as the end of the run), and the failed hosts fail
after the last batch; with persist_max_fail_percentage, the run stops before the next batch
when more than that share of a batch failed, and the hosts never started are "pending" in
the summary. A "broken" host is one whose engine socket does not exist: its role fails at once.
"""

from __future__ import annotations

import os

import pytest

from fleet import FleetVolumes, inventory, per_host, role_report, run_playbook, stats_of, summary_of

HEALTHY = ["fleet-1", "fleet-2", "fleet-3"]


@pytest.fixture
def batch_fleet(fleet):
    """A broken host first, then three healthy ones, each with one volume of this test."""
    state = FleetVolumes(fleet, "batch").create(HEALTHY)
    hosts = {"fleet-broken": dict(state.host_vars("fleet-1"), persist_docker_host="unix:///run/pt-no-engine.sock",
                                  persist_backup_dir=os.path.join(state.root, "fleet-broken", "backups"))}
    hosts.update((name, state.host_vars(name)) for name in HEALTHY)
    # Test restores are the role's business (test_fleet_backup); here only the batches count.
    extra_vars = {"persist_backup_volume_labels": [state.label], "persist_backup_test_restore": False}
    yield state, hosts, extra_vars
    state.remove()


def batches_of(output):
    """The hosts of each batch of the backup play, in order (the JSON callback has a play per batch)."""
    return [sorted({host for task in play["tasks"] for host in task["hosts"]})
            for play in output["plays"] if play["play"]["name"] == "Back up the Docker volumes of the fleet"]


def test_serial_runs_the_batches_one_after_another_and_a_batch_whose_only_host_failed_does_not_stop_the_run(batch_fleet):
    state, hosts, extra_vars = batch_fleet

    del hosts["fleet-3"]  # three batches are enough

    rc, output, _seconds = run_playbook("persist.docker.backup", inventory(hosts), dict(extra_vars, persist_serial=1),
                                        state.root)

    assert rc != 0
    assert batches_of(output) == [["fleet-broken"], ["fleet-1"], ["fleet-2"]]
    summary = summary_of(output)
    assert summary["hosts"] == {"total": 3, "ok": 2, "failed": 1, "unreachable": 0, "pending": 0}
    seen = per_host(output)
    assert seen["fleet-broken"]["status"] == "error" and "unix:///run/pt-no-engine.sock" in seen["fleet-broken"]["error"]
    reports = [role_report(seen[name]) for name in ("fleet-1", "fleet-2")]
    for earlier, later in zip(reports, reports[1:]):
        assert later["started_epoch"] >= earlier["finished_epoch"], "%s started before %s finished" % (later["host"], earlier["host"])
    assert all(report["totals"]["backed_up"] == 1 for report in reports)
    # The broken host fails once, after the last batch.
    assert stats_of(output, "failures") == {"fleet-broken": 1}


def test_max_fail_percentage_stops_before_the_next_batch_and_leaves_its_hosts_pending(batch_fleet):
    state, hosts, extra_vars = batch_fleet

    # Batches of two: the broken host and fleet-1, then fleet-2 and fleet-3. One of two failed
    # is 50 %, more than 49 %: the second batch never starts.
    rc, output, _seconds = run_playbook(
        "persist.docker.backup", inventory(hosts), dict(extra_vars, persist_serial=2, persist_max_fail_percentage=49),
        state.root)

    assert rc != 0
    assert batches_of(output) == [["fleet-1", "fleet-broken"]]
    summary = summary_of(output)
    assert summary["hosts"] == {"total": 4, "ok": 1, "failed": 1, "unreachable": 0, "pending": 2}
    seen = per_host(output)
    # A failing host never stops the others of its batch.
    assert seen["fleet-1"]["status"] == "ok" and role_report(seen["fleet-1"])["totals"]["backed_up"] == 1
    assert seen["fleet-2"]["status"] == seen["fleet-3"]["status"] == "pending"
    assert state.archives("fleet-2") == state.archives("fleet-3") == {}
    assert stats_of(output, "failures") == {"fleet-broken": 1}


def test_a_persist_backup_variable_of_one_host_that_the_role_does_not_have_fails_that_host_naming_it(batch_fleet):
    state, hosts, extra_vars = batch_fleet
    del hosts["fleet-broken"]
    # An inventory's per-host setting with a typo; another host has a valid setting that the
    # others do not have.
    hosts["fleet-2"]["persist_backup_retension"] = {"keep_daily": 3}
    hosts["fleet-3"]["persist_backup_retention"] = {"keep_last": 2}

    rc, output, _seconds = run_playbook("persist.docker.backup", inventory(hosts), extra_vars, state.root)

    assert rc != 0
    failed = [result["msg"] for play in output["plays"] for task in play["tasks"]
              for host, result in task["hosts"].items() if result.get("failed") and host == "fleet-2"]
    assert failed and failed[0].startswith("persist_backup_retension is not a variable of the persist.docker.backup role"), failed
    assert stats_of(output, "failures") == {"fleet-2": 1}
    seen = per_host(output)
    assert seen["fleet-2"]["status"] == "error" and "before its backup started" in seen["fleet-2"]["error"]
    assert seen["fleet-1"]["status"] == seen["fleet-3"]["status"] == "ok"
    assert role_report(seen["fleet-3"])["volumes"][0]["status"] == "backed_up"
