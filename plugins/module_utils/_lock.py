# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""A per-volume lock that lives with the engine, so it holds across controllers.

The lock is a container with a fixed name (``persist-lock-<volume>``): the engine creates a
name at most once, which makes taking the lock atomic for every client of that engine. The
container runs ``cat`` on a stdin that only the holder has attached; when the holder process
dies, the engine sees the connection close and the container exits. A lock whose container
has exited, whose owner process on this host is gone, or that is older than its expiry is
stale and is broken by the next run, which reports it. Its labels say which containers the
holder was about to stop or pause, so that the run that breaks it can start them again.
"""

from __future__ import annotations

import time

from ansible_collections.persist.docker.plugins.module_utils._docker_api import NameTaken, parse_docker_time
from ansible_collections.persist.docker.plugins.module_utils._errors import EngineError, EngineRefused, VolumeLocked
from ansible_collections.persist.docker.plugins.module_utils._ownership import owner_is_gone, owner_token
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import per_volume_name

LOCK_LABEL = "persist.docker.lock"
OPERATION_LABEL = "persist.docker.lock.operation"
LOCK_OWNER_LABEL = "persist.docker.lock.owner"
ACQUIRED_LABEL = "persist.docker.lock.acquired"
EXPIRES_LABEL = "persist.docker.lock.expires"
STOPS_LABEL = "persist.docker.lock.stops"
PAUSES_LABEL = "persist.docker.lock.pauses"
POLL_SECONDS = 0.5
STARTING_GRACE_SECONDS = 60


def lock_name(volume):
    """The lock container's name: readable for ordinary volume names, hashed otherwise."""
    return per_volume_name("persist-lock-", volume)


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _ids(label_value):
    return [item for item in (label_value or "").split(",") if item]


def describe_owner(token):
    """``pid 123 on host web1`` from an owner token (host/pid/start time)."""
    try:
        host, pid, _started = token.rsplit("/", 2)
    except (AttributeError, ValueError):
        return "an unknown process"
    return "pid %s on host %s" % (pid, host)


class VolumeLock:
    """The lock on one volume for one operation; see the module docstring."""

    def __init__(self, api, helpers, volume, operation, timeout, expiry):
        self.api = api
        self.helpers = helpers
        self.volume = volume
        self.operation = operation
        self.timeout = timeout
        self.expiry = expiry
        self.name = lock_name(volume)
        self.broken = []
        self.waited = 0.0
        self.acquired_at = None
        self.released_at = None
        self._started = None
        self._run = None

    def acquire(self, stops=(), pauses=()):
        """Take the lock, waiting up to ``timeout`` seconds (counted from the first call),
        breaking stale locks on the way. ``stops`` and ``pauses`` are the ids of containers
        this run may stop or pause, recorded for whoever has to clean up after it; those of
        a broken lock are recorded too, since this run now owes their restart."""
        if self._started is None:
            self._started = time.monotonic()
        deadline = self._started + self.timeout
        while True:
            now = time.time()
            inherited_stops = [container for broken in self.broken for container in broken["stops"]]
            inherited_pauses = [container for broken in self.broken for container in broken["pauses"]]
            labels = {
                LOCK_LABEL: self.volume,
                OPERATION_LABEL: self.operation,
                LOCK_OWNER_LABEL: owner_token(),
                ACQUIRED_LABEL: str(int(now)),
                EXPIRES_LABEL: str(int(now + self.expiry)),
                STOPS_LABEL: ",".join(sorted(set(stops) | set(inherited_stops))),
                PAUSES_LABEL: ",".join(sorted(set(pauses) | set(inherited_pauses))),
            }
            try:
                self._run = self.helpers.start_holder(self.name, labels, "holding the lock on volume %s" % self.volume)
                self.waited = round(time.monotonic() - self._started, 3)
                self.acquired_at = time.time()
                return
            except NameTaken:
                pass
            holder = self._inspect(self.name)
            if holder is not None:
                reason = self._stale_reason(holder)
                if reason:
                    self._break(holder, reason)
                    continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error(holder)
            time.sleep(min(POLL_SECONDS, remaining))

    def held(self):
        """Whether this run still holds the lock (nobody broke it, the engine kept it)."""
        if self._run is None:
            return False
        holder = self._inspect(self._run.container_id)
        return bool(holder and holder["State"].get("Running"))

    def release(self):
        if self._run is not None:
            self._run.remove()
            self._run = None
            self.released_at = time.time()

    def abandon(self):
        """Let go of the lock as a killed run would: the lock container exits and stays, so
        the next run breaks it and starts the containers its labels name (after it finished
        what this run left half done)."""
        if self._run is not None:
            self._run.detach()
            self._run = None

    def _inspect(self, reference):
        try:
            return self.api.inspect_container(reference)
        except EngineRefused as exc:
            raise EngineError("Cannot inspect the lock container %s of volume %s: %s" % (reference, self.volume, exc), volume_name=self.volume)

    @staticmethod
    def _stale_reason(holder):
        labels = holder["Config"].get("Labels") or {}
        state = holder["State"]
        if state.get("Status") == "created":
            # Created, not yet started: its run is between the two calls that take a lock.
            created = parse_docker_time(holder.get("Created")) or 0
            if time.time() - created < STARTING_GRACE_SECONDS:
                return None
        if not state.get("Running"):
            return "the run that held it ended without releasing it (it was killed, or the engine restarted)"
        owner = labels.get(LOCK_OWNER_LABEL)
        if owner_is_gone(owner):
            return "its owner (%s) is gone" % describe_owner(owner)
        try:
            expires = int(labels.get(EXPIRES_LABEL, ""))
        except ValueError:
            return None
        if expires < time.time():
            return "it expired at %s (lock_expiry)" % _iso(expires)
        return None

    def _break(self, holder, reason):
        try:
            removed = self.api.remove_container(holder["Id"])
        except EngineRefused:
            removed = False
        if not removed:
            return  # another waiter broke it first (or is removing it): not ours to report
        labels = holder["Config"].get("Labels") or {}
        self.broken.append(
            {
                "lock": self.name,
                "operation": labels.get(OPERATION_LABEL),
                "owner": describe_owner(labels.get(LOCK_OWNER_LABEL)),
                "acquired": _iso(int(labels.get(ACQUIRED_LABEL) or 0)),
                "reason": reason,
                "stops": _ids(labels.get(STOPS_LABEL)),
                "pauses": _ids(labels.get(PAUSES_LABEL)),
            }
        )

    def _timeout_error(self, holder):
        labels = (holder or {}).get("Config", {}).get("Labels") or {}
        since = labels.get(ACQUIRED_LABEL)
        return VolumeLocked(
            "Volume %s is locked by another run (%s by %s since %s); waited %d s (lock_timeout). "
            "Run the task again later or raise lock_timeout. If no run is active, the lock is "
            "broken by the next run once its holder is gone, or remove it with "
            "'docker rm -f %s'."
            % (
                self.volume,
                labels.get(OPERATION_LABEL, "an operation"),
                describe_owner(labels.get(LOCK_OWNER_LABEL)),
                _iso(int(since)) if since and since.isdigit() else "an unknown time",
                self.timeout,
                self.name,
            ),
            volume_name=self.volume,
            lock=self.name,
        )
