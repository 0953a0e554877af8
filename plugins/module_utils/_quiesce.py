# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The containers in the way of a backup, restore or copy (a part of _consistency): which
containers mount the volumes and what is done to each (the plan, from the containers policy
and the containers' labels), stopping and pausing them, and starting them again in the order
their dependencies need; also those an interrupted run left stopped or paused."""

from __future__ import annotations

import time
from typing import Any, Dict, List, Set

from ansible_collections.persist.docker.plugins.module_utils._container_policy import (
    POLICY_LABEL,
    WRITES,
    PolicyRefusal,
    consistency_method,
    dependencies,
    plan,
    start_order,
)
from ansible_collections.persist.docker.plugins.module_utils._errors import ContainersInTheWay, EngineError, EngineRefused
from ansible_collections.persist.docker.plugins.module_utils._helper import HELPER_LABEL
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import describe_users, mount_table


class Quiescer:
    """The containers in the way of one Consistency guard. ``volumes`` is its list of
    (volume name, READS or WRITES); ``policy`` the task's ``containers`` option (None: the
    labels decide); ``stop_timeout`` what each container gets to stop."""

    def __init__(self, engine, volumes, policy, stop_timeout):
        self.engine = engine
        self.api = engine.api
        self.volumes = volumes
        self.policy = policy
        self.stop_timeout = stop_timeout
        self.entries: List[Dict[str, Any]] = []
        self.left_by_interrupted_run: List[Dict[str, Any]] = []
        self._names: Dict[str, str] = {}
        self._stopped: Dict[str, float] = {}
        self._downtime: Dict[str, float] = {}
        self._paused: List[str] = []
        self._kept_stopped: List[str] = []

    def plan(self, refuse=True):
        """Plan entries for every container that mounts one of the volumes (see
        _container_policy.plan for ``refuse``); the names of all containers are kept for
        messages."""
        summaries = self.engine.containers()
        # Helper containers (ours, of this or another run) are never in the way.
        table = mount_table([summary for summary in summaries if HELPER_LABEL not in (summary.get("Labels") or {})])
        labels_of = dict((summary["Id"], summary.get("Labels") or {}) for summary in summaries)
        self._names = dict((summary["Id"], (summary.get("Names") or ["/" + summary["Id"][:12]])[0].lstrip("/")) for summary in summaries)
        entries: Dict[str, Dict[str, Any]] = {}
        for volume, access in self.volumes:
            try:
                planned = plan(table.get(volume, []), labels_of, self.policy, access, refuse)
            except PolicyRefusal as refusal:
                raise self._refusal(volume, refusal)
            except ValueError as exc:
                raise ContainersInTheWay(
                    "A container that mounts volume %s has a bad %s label: %s. Fix the label, or set "
                    "the containers option, which wins over labels." % (volume, POLICY_LABEL, exc),
                    volume_name=volume,
                )
            for entry in planned:
                entry["volume"] = volume
                known = entries.get(entry["id"])
                # A container that mounts two of the volumes gets the stronger action.
                if known is None or known["action"] == "none":
                    entries[entry["id"]] = entry
        return sorted(entries.values(), key=lambda entry: (entry["name"], entry["id"]))

    def _refusal(self, volume, refusal):
        containers = describe_users(refusal.containers)
        if refusal.reason == "pause":
            return ContainersInTheWay(
                "Volume %s would be written while container(s) %s are paused; a paused container "
                "keeps its files open and would see them change under it. Use containers: stop "
                "(or the label %s=stop) for a restore." % (volume, containers, POLICY_LABEL),
                volume_name=volume,
                containers=refusal.containers,
            )
        doing = "a copy taken while they write may be corrupt"
        labels = "stop|pause|ignore"
        if (volume, WRITES) in self.volumes:
            doing = "a restore under them would change files they have open"
            labels = "stop (a label never leaves a container running while its volume is written: only the task's containers: ignore does)"
        return ContainersInTheWay(
            "Volume %s is in use by running container(s): %s; %s. Choose what to do with them: "
            "containers: stop (stop them, do the work, start them again), pause (backups only; "
            "crash-consistent) or ignore (a live copy), or label each container %s=%s."
            % (volume, containers, doing, POLICY_LABEL, labels),
            volume_name=volume,
            containers=refusal.containers,
        )

    def note_interrupted(self, locks):
        """Containers that a killed run stopped or paused (its broken lock says which) are
        started or unpaused again by ``resume``."""
        for lock in locks:
            for broken in lock.broken:
                for container_id, wanted in [(c, "stop") for c in broken["stops"]] + [(c, "pause") for c in broken["pauses"]]:
                    state = self._state(container_id)
                    if state is None:
                        continue
                    if (wanted == "stop" and not state["Running"]) or (wanted == "pause" and state.get("Paused")):
                        self.left_by_interrupted_run.append(
                            {"id": container_id, "name": self._names.get(container_id, container_id[:12]), "left": wanted,
                             "volume": lock.volume}
                        )

    def _state(self, container_id):
        try:
            return self.api.container_state(container_id)
        except EngineRefused as exc:
            raise EngineError("Cannot inspect container %s: %s" % (container_id[:12], exc))

    def quiesce(self):
        """Stop (in reverse start order) and pause the containers the plan says."""
        to_stop = [entry for entry in self.entries if entry["action"] == "stop"]
        order = self._start_order([entry["id"] for entry in to_stop])
        for container_id in reversed(order):
            entry = next(entry for entry in to_stop if entry["id"] == container_id)
            started = time.monotonic()
            try:
                self.api.stop(container_id, timeout=self.stop_timeout)
            except EngineRefused as exc:
                raise ContainersInTheWay(
                    "Cannot stop container %s: %s. Containers stopped before it are started again; "
                    "nothing was done to the data." % (entry["name"], exc.explanation),
                    container=entry["name"],
                )
            self._stopped[container_id] = started
            state = self._state(container_id) or {}
            entry["killed_after_stop_timeout"] = state.get("ExitCode") == 137
        for entry in self.entries:
            if entry["action"] != "pause" or entry["state"] == "paused":
                continue
            try:
                self.api.pause(entry["id"])
            except EngineRefused as exc:
                raise ContainersInTheWay(
                    "Cannot pause container %s: %s. Nothing was done to the data." % (entry["name"], exc.explanation),
                    container=entry["name"],
                )
            self._paused.append(entry["id"])

    def _start_order(self, ids):
        needs = {}
        by_name = dict((name, container_id) for container_id, name in self._names.items())
        inspected = {}
        for container_id in ids:
            try:
                inspected[container_id] = self.api.inspect_container(container_id) or {"Id": container_id}
            except Exception:  # gone, or the engine is: start in name order
                inspected[container_id] = {"Id": container_id}
        services: Dict[Any, Set[str]] = {}
        for container_id, details in inspected.items():
            labels = (details.get("Config") or {}).get("Labels") or {}
            key = (labels.get("com.docker.compose.project"), labels.get("com.docker.compose.service"))
            services.setdefault(key, set()).add(container_id)
        for container_id, details in inspected.items():
            needs[container_id] = dependencies(details, by_name, services)
        return start_order(ids, needs, self._names)

    def _held_back(self, container_id, volume, held):
        """Whether a container is kept stopped because ``volume`` (the one it was stopped
        for) is held; recorded as a problem to report."""
        if volume not in held:
            return False
        self._kept_stopped.append(self._names.get(container_id, container_id[:12]))
        return True

    def resume(self, held):
        """Start again (in dependency order) and unpause what this run and an interrupted one
        stopped or paused, but for the containers of the ``held`` volumes; the problems met,
        as sentences."""
        problems = []
        self._kept_stopped = []
        volume_of = dict((entry["id"], entry["volume"]) for entry in self.entries)
        volume_of.update((left["id"], left["volume"]) for left in self.left_by_interrupted_run)
        restart = list(self._stopped) + [left["id"] for left in self.left_by_interrupted_run if left["left"] == "stop"]
        restart = [container_id for container_id in restart if not self._held_back(container_id, volume_of.get(container_id), held)]
        for container_id in self._start_order(restart) if restart else []:
            name = self._names.get(container_id, container_id[:12])
            try:
                self.api.start(container_id)
            except EngineRefused as exc:
                problems.append("container %s could not be started again: %s" % (name, exc))
            except Exception as exc:  # the engine is gone: the next run starts it (lock labels)
                problems.append(
                    "container %s could not be started again (%s); run the task again once the engine "
                    "answers, and it will start it" % (name, exc)
                )
            if container_id in self._stopped:
                self._downtime[container_id] = round(time.monotonic() - self._stopped[container_id], 3)
        if self._kept_stopped:
            problems.append(
                "container(s) %s were left stopped, because volume(s) %s hold a swap that is not finished; the "
                "run that finishes it starts them again" % (", ".join(sorted(set(self._kept_stopped))), ", ".join(sorted(held))))
        unpause = self._paused + [left["id"] for left in self.left_by_interrupted_run if left["left"] == "pause"]
        for container_id in unpause:
            try:
                self.api.unpause(container_id)
            except Exception as exc:
                problems.append("container %s could not be unpaused: %s" % (self._names.get(container_id, container_id[:12]), exc))
        return problems

    def _performed(self, entry):
        """Whether the entry's action happened (a restore that failed before it stopped its
        containers stopped none)."""
        if entry["action"] == "pause":
            return entry["id"] in self._paused or entry["state"] == "paused"
        if entry["action"] == "stop":
            return entry["id"] in self._stopped
        return entry["action"] == "ignore"

    def report(self, check_mode):
        """The ``consistency`` part of a result."""
        containers = []
        for entry in self.entries:
            shown = dict((key, entry[key]) for key in ("name", "id", "volume", "state", "read_only", "mount_path", "policy", "policy_from", "action"))
            shown["performed"] = not check_mode and self._performed(entry)
            if entry["id"] in self._downtime:
                shown["downtime_seconds"] = self._downtime[entry["id"]]
            if "killed_after_stop_timeout" in entry:
                shown["killed_after_stop_timeout"] = entry["killed_after_stop_timeout"]
            containers.append(shown)
        return {
            "method": consistency_method(self.entries),
            "containers": containers,
            "restarted_after_interrupted_run": self.left_by_interrupted_run,
        }
