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

A guard made with ``late_quiesce`` leaves the stop or pause to the work, which calls
``quiesce()`` once it needs the containers still: a restore writes its staging tree while
they run, and stops them only to read that tree back and swap it in.

Whatever fails, the way back runs: containers that were running run again, post-commands
run once pre-commands ran, and the lock is released. A failure on the way back is reported
with the original one, or as the failure of a task whose work itself succeeded.
"""

from __future__ import annotations

from ansible_collections.persist.docker.plugins.module_utils._container_policy import (
    POLICIES,
    consistency_method,
)
from ansible_collections.persist.docker.plugins.module_utils._errors import (
    ContainersInTheWay,
    PersistError,
    VolumeLocked,
)
from ansible_collections.persist.docker.plugins.module_utils._hooks import hook_argument_spec, raise_for, run_hooks
from ansible_collections.persist.docker.plugins.module_utils._lock import VolumeLock
from ansible_collections.persist.docker.plugins.module_utils._options import DEFAULT_LOCK_EXPIRY, DEFAULT_LOCK_TIMEOUT, DEFAULT_STOP_TIMEOUT
from ansible_collections.persist.docker.plugins.module_utils._quiesce import Quiescer
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import describe_users


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
    messages; ``late_quiesce``: see the module docstring."""

    def __init__(self, engine, volumes, options, check_mode, operation, late_quiesce=False):
        self.engine = engine
        self.api = engine.api
        self.volumes = sorted(volumes)
        self.options = options
        self.check_mode = check_mode
        self.operation = operation
        self.quiet = Quiescer(engine, self.volumes, options.containers, options.stop_timeout)
        self.locks = []
        self.hooks = []
        self.actions = []
        self._pre_started = False
        self._late = late_quiesce
        self._quiesced = False
        # The operation's result, set by it, so that a failure on the way back still reports it.
        self.result = None
        # Volumes left in the middle of a swap: their containers are not started again.
        self._held = set()

    @property
    def entries(self):
        """The plan: one entry per container that mounts a volume (see Quiescer.plan)."""
        return self.quiet.entries

    # -- entering ----------------------------------------------------------------------

    def __enter__(self):
        try:
            self._enter()
        except BaseException as exc:
            self._leave(exc)
            raise
        return self

    def _enter(self):
        self.quiet.entries = self.quiet.plan()
        if self.check_mode:
            self._describe_plan(performed=False)
            return
        self.engine.helpers.prepare()
        self._lock_all()
        self.quiet.note_interrupted(self.locks)
        self._pre_started = True
        self.hooks.extend(run_hooks(self.api, self.options.pre_commands, "pre", stop_at_failure=True))
        raise_for(self.hooks, "so nothing was done to the data")
        if not self._late:
            self.quiesce()
        self._describe_plan(performed=True)

    def quiesce(self):
        """Stop and pause the containers the plan says (once; nothing in check mode)."""
        if self.check_mode or self._quiesced:
            return
        self._quiesced = True
        self.quiet.quiesce()

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
            self.quiet.entries = self.quiet.plan()
            if _acted(self.entries) <= acted:
                return
            for lock in self.locks:
                lock.release()

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
        if not self._quiesced:
            raise AssertionError("internal error: the work commits before the containers in the way were stopped")
        for lock in self.locks:
            if not lock.held():
                raise VolumeLocked(
                    "The lock on volume %s was lost while this run worked (the engine restarted, or the "
                    "run took longer than lock_expiry and another run broke the lock); nothing was "
                    "committed." % lock.volume,
                    volume_name=lock.volume,
                )
        changed = [
            entry for entry in self.quiet.plan(refuse=False)
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
        problems = self.quiet.resume(self._held) + self._post_commands()
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
        return {
            "consistency": self.quiet.report(self.check_mode),
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

    def stops_containers(self):
        """Whether quiesce() stops or pauses a container."""
        return not self.check_mode and not self._quiesced and any(entry["action"] in ("stop", "pause") for entry in self.entries)

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
