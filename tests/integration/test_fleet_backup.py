# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup playbook over a fleet: four hosts, each a Docker engine of its own (fleet.Fleet).

One engine is stopped in the middle of the run and one host cannot be reached: every other
host is backed up and its archives checked and test-restored, the summary names exactly the
failed and the unreachable host with the reason, and the run fails. A second run over an
unchanged fleet writes nothing. The wall time of a run over one host and over four (forks 4)
is measured for docs/fleet.md.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from fleet import FleetVolumes, inventory, per_host, role_report, run_playbook, stats_of, summary_of, unreachable_host_vars

REPO_ROOT = Path(__file__).resolve().parents[2]
VICTIM = "fleet-3"
TIMINGS = REPO_ROOT / "tests" / "output" / "fleet-timings.json"


class EngineStopper(threading.Thread):
    """Stops ``engine`` as soon as its engine starts an exec in ``container`` (the pre-command
    of the victim's second volume), so that the engine goes away in the middle of the run."""

    def __init__(self, engine, client, container):
        super().__init__(daemon=True)
        self.engine = engine
        self.events = client.events(decode=True, filters={"event": "exec_start", "container": container.id},
                                    until=int(time.time()) + 600)
        self.stopped_at = None

    def run(self):
        for _event in self.events:
            self.engine.stop()
            self.stopped_at = time.time()
            return


def test_backup_playbook_backs_up_every_healthy_host_and_names_the_stopped_engine_and_the_unreachable_host(
        fleet, fleet_volumes):
    fleet_volumes.create(fleet.names, per_host=2)
    hosts = {name: fleet_volumes.host_vars(name) for name in fleet.names}
    hosts["fleet-down"] = unreachable_host_vars()
    # The victim's second volume starts with a pre-command; the engine stops while it runs.
    victim_engine, victim_client = fleet[VICTIM]
    app = fleet_volumes.container(VICTIM, "app", ["sleep", "infinity"], stop_signal="SIGKILL")
    first, second = fleet_volumes.volumes[VICTIM]
    hosts[VICTIM]["persist_backup_volume_overrides"] = {second: {"pre_commands": [{"container": app.name, "command": ["sleep", "60"]}]}}
    stopper = EngineStopper(victim_engine, victim_client, app)
    stopper.start()
    try:
        rc, output, _seconds = run_playbook(
            "persist.docker.backup", inventory(hosts), {"persist_backup_volume_labels": [fleet_volumes.label]}, fleet_volumes.root)
    finally:
        stopper.events.close()
        stopper.join(timeout=120)
        fleet.restart(VICTIM)

    assert stopper.stopped_at is not None, "the victim's pre-command never started"
    assert rc != 0
    summary = summary_of(output)
    assert summary["hosts"] == {"total": 5, "ok": 3, "failed": 1, "unreachable": 1, "pending": 0}
    hosts_seen = per_host(output)
    assert {name for name, entry in hosts_seen.items() if entry["status"] == "ok"} == {"fleet-1", "fleet-2", "fleet-4"}
    assert hosts_seen[VICTIM]["status"] == "failed"
    assert hosts_seen["fleet-down"]["status"] == "unreachable"
    assert "Connection refused" in hosts_seen["fleet-down"]["error"]
    # The victim's first volume was done before its engine stopped; the second says the engine
    # went away during its pre-command, and that its data was not touched.
    [failure] = hosts_seen[VICTIM]["failed_volumes"]
    assert failure["message"].startswith(second + ": pre-command 'sleep 60' in container %s could not run" % app.name), failure
    assert "Connection aborted" in failure["message"] and "nothing was done to the data" in failure["message"], failure
    victim_volumes = {volume["volume"]: volume for volume in role_report(hosts_seen[VICTIM])["volumes"]}
    assert victim_volumes[first]["status"] == "backed_up" and victim_volumes[second]["status"] == "failed"
    # Every healthy host: each volume backed up, its archive checked in full and test-restored.
    for name in ("fleet-1", "fleet-2", "fleet-4"):
        report = role_report(hosts_seen[name])
        assert sorted(volume["volume"] for volume in report["volumes"]) == fleet_volumes.volumes[name]
        for volume in report["volumes"]:
            assert volume["status"] == "backed_up", volume
            assert volume["verification"]["status"] == "passed", volume
            assert volume["test_restore"]["status"] == "passed", volume
            assert os.path.isfile(volume["archive"]["path"]) and os.path.isfile(volume["archive"]["path"] + ".json")
    # Ansible (and AWX) count the victim as failed and the host that could not be reached as unreachable.
    assert stats_of(output, "failures") == {VICTIM: 1}
    assert stats_of(output, "unreachable") == {"fleet-down": 1}


@pytest.fixture(scope="module")
def first_run(fleet, tmp_path_factory):
    """The four hosts' first backup run (one volume of 2 MiB each, forks 4), measured."""
    state = FleetVolumes(fleet, "idem").create(fleet.names)
    hosts = {name: state.host_vars(name) for name in fleet.names}
    extra_vars = {"persist_backup_volume_labels": [state.label]}
    memory = {}
    rc, output, seconds = run_playbook("persist.docker.backup", inventory(hosts), extra_vars, state.root, measure=memory)
    yield dict(volumes=state, hosts=hosts, extra_vars=extra_vars, rc=rc, output=output, seconds=seconds, memory=memory)
    state.remove()


def test_backup_playbook_second_run_over_an_unchanged_fleet_reports_every_host_unchanged_and_writes_nothing(first_run):
    state, hosts = first_run["volumes"], first_run["hosts"]
    assert first_run["rc"] == 0, stats_of(first_run["output"], "failures")
    assert summary_of(first_run["output"])["volumes"]["backed_up"] == 4
    written = {name: state.archives(name) for name in hosts}
    assert all(len(files) == 2 for files in written.values()), written  # an archive and its sidecar each

    rc, output, _seconds = run_playbook("persist.docker.backup", inventory(hosts), first_run["extra_vars"], state.root)

    assert rc == 0
    assert stats_of(output, "changed") == {}, "a run over an unchanged fleet changed something"
    summary = summary_of(output)
    assert summary["hosts"] == {"total": 4, "ok": 4, "failed": 0, "unreachable": 0, "pending": 0}
    assert summary["volumes"]["unchanged"] == 4 and summary["volumes"]["backed_up"] == 0
    assert summary["bytes_written"] == 0 and summary["volumes"]["test_restores"] == 0
    for name, entry in per_host(output).items():
        [volume] = role_report(entry)["volumes"]
        assert volume["status"] == "unchanged" and not volume["written"] and volume["skipped_reason"], volume
        assert state.archives(name) == written[name], "%s: the archives changed" % name


def test_fleet_run_time_with_one_host_and_with_four_hosts_at_forks_4(fleet, first_run):
    """The four hosts' first run (measured by first_run) against one host's first run with the
    same volume; docs/fleet.md quotes the numbers this writes into tests/output."""
    single = FleetVolumes(fleet, "one").create(["fleet-1"])
    try:
        memory = {}
        rc, output, seconds = run_playbook(
            "persist.docker.backup", inventory({"fleet-1": single.host_vars("fleet-1")}),
            {"persist_backup_volume_labels": [single.label]}, single.root, measure=memory)
        assert rc == 0, stats_of(output, "failures")
        one_host = role_report(per_host(output)["fleet-1"])
    finally:
        single.remove()

    four_hosts = [role_report(entry) for entry in per_host(first_run["output"]).values()]
    # The four hosts ran side by side: each started before any of them finished.
    assert max(report["started_epoch"] for report in four_hosts) < min(report["finished_epoch"] for report in four_hosts)

    def measured(output, wall_seconds, usage, reports):
        tasks = sum(counts["ok"] + counts["skipped"] + counts["failures"] for counts in output["stats"].values())
        return {"wall_seconds": wall_seconds, "role_seconds": sorted(report["duration_seconds"] for report in reports),
                "host_tasks": tasks, "controller_cpu_seconds": usage["cpu_seconds"],
                "controller_main_cpu_seconds": usage["main_cpu_seconds"],
                "controller_peak_pss_bytes": usage["peak_bytes"], "controller_processes": usage["peak_processes"]}

    timings = {
        "forks": 4,
        "cpus": os.cpu_count(),
        "volume_bytes": 2 * 1024 * 1024,
        "one_host": measured(output, seconds, memory, [one_host]),
        "four_hosts": measured(first_run["output"], first_run["seconds"], first_run["memory"], four_hosts),
        "engines": {"start_seconds": fleet.start_seconds, "image_load_seconds": fleet.load_seconds},
    }
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text(json.dumps(timings, indent=2) + "\n")
    print("fleet timings: %s" % json.dumps(timings))
