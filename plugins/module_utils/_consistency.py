# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Consistency around live containers: lock, pre-commands, stop/pause, and the way back.

``Consistency`` is a context manager around the data work of a backup, restore or copy:

    lock the volumes -> pre-commands -> stop or pause the containers in the way
    -> the work (which calls ``before_commit()`` before it makes anything final)
    -> start/unpause those containers -> post-commands -> unlock

Whatever fails, the way back runs: containers that were running run again, post-commands
run once pre-commands ran, and the lock is released. A failure on the way back is reported
with the original one, or as the failure of a task whose work itself succeeded.
"""

from __future__ import annotations

import time

from ansible_collections.persist.docker.plugins.module_utils._container_policy import (
    POLICIES,
    POLICY_LABEL,
    WRITES,
    PolicyRefusal,
    consistency_method,
    dependencies,
    plan,
    start_order,
)
from ansible_collections.persist.docker.plugins.module_utils._errors import (
    ContainersInTheWay,
    EngineError,
    EngineRefused,
    PersistError,
    VolumeLocked,
)
from ansible_collections.persist.docker.plugins.module_utils._helper import HELPER_LABEL
from ansible_collections.persist.docker.plugins.module_utils._hooks import hook_argument_spec, raise_for, run_hooks
from ansible_collections.persist.docker.plugins.module_utils._lock import VolumeLock
from ansible_collections.persist.docker.plugins.module_utils._options import DEFAULT_LOCK_EXPIRY, DEFAULT_LOCK_TIMEOUT, DEFAULT_STOP_TIMEOUT
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import describe_users, mount_table


def consistency_argument_spec():
    """The options of every module that reads or writes volume data (doc fragment
    ``persist.docker._docker.consistency``)."""
    return dict(
        containers=dict(type="str", choices=list(POLICIES)),
        stop_timeout=dict(type="int", default=DEFAULT_STOP_TIMEOUT),
        pre_commands=dict(type="list", elements="dict", options=hook_argument_spec(), default=[]),
        post_commands=dict(type="list", elements="dict", options=hook_argument_spec(), default=[]),
        lock_timeout=dict(type="int", default=DEFAULT_LOCK_TIMEOUT),
        lock_expiry=dict(type="int", default=DEFAULT_LOCK_EXPIRY),
        recovery=dict(type="str", default="finish", choices=["finish", "discard"]),
    )


def _acted(entries):
    """Ids of the plan entries the operation stops or pauses."""
    return set(entry["id"] for entry in entries if entry["action"] in ("stop", "pause"))


class Consistency:
    """See the module docstring. ``volumes`` is a list of (volume name, READS or WRITES);
    ``options`` is an _options.ConsistencyOptions; ``operation`` names the module for lock labels and
    messages."""

    def __init__(self, engine, volumes, options, check_mode, operation):
        self.engine = engine
        self.api = engine.api
        self.volumes = sorted(volumes)
        self.options = options
        self.check_mode = check_mode
        self.operation = operation
        self.entries = []
        self.locks = []
        self.hooks = []
        self.actions = []
        self.left_by_interrupted_run = []
        self._stopped = {}
        self._downtime = {}
        self._paused = []
        self._pre_started = False
        # The operation's result, set by it, so that a failure on the way back still reports it.
        self.result = None
        self._names = {}
        # Volumes left in the middle of a swap: their containers are not started again.
        self._held = set()
        self._kept_stopped = []

    # -- the plan ----------------------------------------------------------------------

    def _plan(self, refuse=True):
        """Plan entries for every container that mounts one of the volumes (see
        _container_policy.plan for ``refuse``)."""
        summaries = self.engine.containers()
        # Helper containers (ours, of this or another run) are never in the way.
        table = mount_table([summary for summary in summaries if HELPER_LABEL not in (summary.get("Labels") or {})])
        labels_of = dict((summary["Id"], summary.get("Labels") or {}) for summary in summaries)
        self._names = dict((summary["Id"], (summary.get("Names") or ["/" + summary["Id"][:12]])[0].lstrip("/")) for summary in summaries)
        entries = {}
        for volume, access in self.volumes:
            try:
                planned = plan(table.get(volume, []), labels_of, self.options.containers, access, refuse)
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

    # -- entering ----------------------------------------------------------------------

    def __enter__(self):
        try:
            self._enter()
        except BaseException as exc:
            self._leave(exc)
            raise
        return self

    def _enter(self):
        self.entries = self._plan()
        if self.check_mode:
            self._describe_plan(performed=False)
            return
        self.engine.helpers.prepare()
        self._lock_all()
        self._recover_interrupted_run()
        self._pre_started = True
        self.hooks.extend(run_hooks(self.api, self.options.pre_commands, "pre", stop_at_failure=True))
        raise_for(self.hooks, "so nothing was done to the data")
        self._quiesce()
        self._describe_plan(performed=True)

    def _lock_all(self):
        """Lock every volume (in name order, so two runs never wait on each other), then
        check that the plan still holds: while this run waited, containers may have started."""
        for volume, _access in self.volumes:
            self.locks.append(VolumeLock(
                self.api, self.engine.helpers, volume, self.operation,
                self.options.lock_timeout, self.options.lock_expiry,
            ))
        while True:
            acted = _acted(self.entries)
            stops = sorted(entry["id"] for entry in self.entries if entry["action"] == "stop")
            pauses = sorted(entry["id"] for entry in self.entries if entry["action"] == "pause")
            for lock in self.locks:
                lock.acquire(stops, pauses)
            self.entries = self._plan()
            if _acted(self.entries) <= acted:
                return
            for lock in self.locks:
                lock.release()

    def _recover_interrupted_run(self):
        """Containers that a killed run stopped or paused (its broken lock says which) are
        started or unpaused again on the way back of this run."""
        for lock in self.locks:
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

    def _quiesce(self):
        to_stop = [entry for entry in self.entries if entry["action"] == "stop"]
        order = self._start_order([entry["id"] for entry in to_stop])
        for container_id in reversed(order):
            entry = next(entry for entry in to_stop if entry["id"] == container_id)
            started = time.monotonic()
            try:
                self.api.stop(container_id, timeout=self.options.stop_timeout)
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
        services = {}
        for container_id, details in inspected.items():
            labels = (details.get("Config") or {}).get("Labels") or {}
            key = (labels.get("com.docker.compose.project"), labels.get("com.docker.compose.service"))
            services.setdefault(key, set()).add(container_id)
        for container_id, details in inspected.items():
            needs[container_id] = dependencies(details, by_name, services)
        return start_order(ids, needs, self._names)

    def _describe_plan(self, performed):
        verbs = {"stop": "stop container %s and start it again afterwards", "pause": "pause container %s and unpause it afterwards",
                 "ignore": "leave container %s running (live copy, as its policy says)"}
        for entry in self.entries:
            if entry["action"] in verbs:
                self.actions.append(verbs[entry["action"]] % entry["name"])
        if not performed:
            for phase in ("pre", "post"):
                for hook in self.options.commands(phase):
                    self.actions.append("run %s-command in container %s" % (phase, hook["container"]))

    # -- the commit point --------------------------------------------------------------

    def before_commit(self):
        """Raise unless the data read or written is still consistent: every lock is still
        held and no container that had to be stopped or paused runs now."""
        if self.check_mode:
            return
        for lock in self.locks:
            if not lock.held():
                raise VolumeLocked(
                    "The lock on volume %s was lost while this run worked (the engine restarted, or the "
                    "run took longer than lock_expiry and another run broke the lock); nothing was "
                    "committed." % lock.volume,
                    volume_name=lock.volume,
                )
        changed = [
            entry for entry in self._plan(refuse=False)
            if entry["action"] in ("stop", "fail") or (entry["action"] == "pause" and entry["state"] != "paused")
        ]
        if changed:
            raise ContainersInTheWay(
                "While this run worked, container(s) %s started (or were unpaused) by someone else; what "
                "was read or written may be inconsistent, so nothing was committed. Run the task again."
                % describe_users(changed),
                containers=changed,
            )

    def hold(self, volume):
        """Keep the containers of ``volume`` stopped on the way back: it is left in the middle
        of a swap (a mix of two trees) or with a journal nobody can vouch for. Its lock is let
        go as a killed run's would be, so the run that finishes the swap starts them."""
        self._held.add(volume)

    # -- leaving -----------------------------------------------------------------------

    def __exit__(self, exc_type, exc_value, traceback):
        self._leave(exc_value)
        return False

    def _leave(self, error):
        """The way back; raises when it had problems (merged with ``error`` if any)."""
        problems = self._resume() + self._post_commands()
        for lock in self.locks:
            if lock.volume in self._held:
                lock.abandon()
                continue
            try:
                lock.release()
            except Exception as exc:  # the lock is broken by the next run once we are gone
                problems.append("the lock %s could not be removed (%s); the next run breaks it" % (lock.name, exc))
        if isinstance(error, PersistError):
            error.details.update(self.report())
        if not problems:
            return
        summary = "; ".join(problems)
        if isinstance(error, PersistError):
            error.msg = "%s Also: %s." % (error.msg, summary)
            return
        if error is not None:
            raise ContainersInTheWay("%s failed (%s). Also: %s." % (self.operation, error, summary), **self.report()) from error
        details = dict(self.result or {})
        details.update(self.report())
        raise ContainersInTheWay("The %s itself succeeded, but: %s." % (self.operation, summary), **details)

    def _held_back(self, container_id, volume):
        """Whether a container is kept stopped because ``volume`` (the one it was stopped
        for) is held; recorded as a problem to report."""
        if volume not in self._held:
            return False
        self._kept_stopped.append(self._names.get(container_id, container_id[:12]))
        return True

    def _resume(self):
        problems = []
        self._kept_stopped = []
        volume_of = dict((entry["id"], entry["volume"]) for entry in self.entries)
        volume_of.update((left["id"], left["volume"]) for left in self.left_by_interrupted_run)
        restart = list(self._stopped) + [left["id"] for left in self.left_by_interrupted_run if left["left"] == "stop"]
        restart = [container_id for container_id in restart if not self._held_back(container_id, volume_of.get(container_id))]
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
                "run that finishes it starts them again" % (", ".join(sorted(set(self._kept_stopped))), ", ".join(sorted(self._held))))
        unpause = self._paused + [left["id"] for left in self.left_by_interrupted_run if left["left"] == "pause"]
        for container_id in unpause:
            try:
                self.api.unpause(container_id)
            except Exception as exc:
                problems.append("container %s could not be unpaused: %s" % (self._names.get(container_id, container_id[:12]), exc))
        return problems

    def _post_commands(self):
        if not self._pre_started:
            return []
        reports = run_hooks(self.api, self.options.post_commands, "post", stop_at_failure=False)
        self.hooks.extend(reports)
        try:
            raise_for(reports, "")
        except PersistError as exc:
            return [exc.msg.strip()]
        return []

    # -- what the result and the sidecar say --------------------------------------------

    def report(self):
        containers = []
        for entry in self.entries:
            shown = dict((key, entry[key]) for key in ("name", "id", "volume", "state", "read_only", "mount_path", "policy", "policy_from", "action"))
            shown["performed"] = not self.check_mode and entry["action"] in ("stop", "pause", "ignore")
            if entry["id"] in self._downtime:
                shown["downtime_seconds"] = self._downtime[entry["id"]]
            if "killed_after_stop_timeout" in entry:
                shown["killed_after_stop_timeout"] = entry["killed_after_stop_timeout"]
            containers.append(shown)
        return {
            "consistency": {
                "method": consistency_method(self.entries),
                "containers": containers,
                "restarted_after_interrupted_run": self.left_by_interrupted_run,
            },
            "lock": {
                "names": [lock.name for lock in self.locks],
                "waited_seconds": max([lock.waited for lock in self.locks] or [0.0]),
                "broken": [broken for lock in self.locks for broken in lock.broken],
                # Seconds since the epoch, for comparing runs: from the first lock taken to the last released.
                "acquired_at": min([lock.acquired_at for lock in self.locks if lock.acquired_at] or [None]),
                "released_at": max([lock.released_at for lock in self.locks if lock.released_at] or [None]),
            },
            "hooks": self.hooks,
        }

    def live_copy(self):
        """Whether a running container was left running on a volume (``ignore``): the data may
        change while it is read, and the user accepted that."""
        return any(entry["action"] == "ignore" for entry in self.entries)

    def record(self):
        """What the sidecar keeps about how consistency was obtained."""
        return {
            "method": consistency_method(self.entries),
            "containers": [
                {"name": entry["name"], "action": entry["action"], "policy_from": entry["policy_from"]}
                for entry in self.entries if entry["action"] != "none"
            ],
            "hooks": [
                {"phase": hook["phase"], "container": hook["container"], "command": hook["command"], "rc": hook["rc"]}
                for hook in self.hooks if hook["phase"] == "pre"
            ],
        }
