# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The running service of the downtime rows: PostgreSQL on a copy of the postgres data set.

The copy is a volume of its own (the data set's volume keeps its unchanged files, so that the
other rows copy the same tree and its printed digest stays valid). A downtime row stops and
starts the server around its work; ``LiveService.downtime`` measures how long it was down:

* from the engine's ``kill`` event for the container (the moment it was asked to stop: the
  engine sends the image's stop signal then), read from an event stream opened before the row,
* to the moment PostgreSQL logged "database system is ready to accept connections" after it
  was started again, on the engine's time stamp of that log line (the server accepts
  connections from then on; ``pg_isready`` through ``docker exec`` confirms it afterwards).

Both times come from the engine's clock, with nanoseconds; no polling interval adds to them.
"""

from __future__ import annotations

import calendar
import subprocess
import time

import datasets

READY_MESSAGE = "database system is ready to accept connections"
COUNT_ACCOUNTS = "select count(*) from pgbench_accounts"
# A restarted server that replays no WAL is up in a second; this bounds a broken one.
READY_TIMEOUT = 180


class ServiceFailed(Exception):
    """The service did not come back after a row, or its data is not what it was."""


class LiveService:
    """PostgreSQL running on a copy of the data set in a volume of its own, both named with the
    run's prefix (the session's cleanup removes them on failure and on Ctrl-C)."""

    def __init__(self, session, dataset, source_mountpoint, pgbench_scale):
        self.session = session
        self.expected_accounts = pgbench_scale * datasets.ACCOUNTS_PER_SCALE
        self.volume = session.create_volume("%s-live" % dataset)
        # Untimed: the same files as the data set, written out before the server starts.
        subprocess.run(["cp", "-a", source_mountpoint + "/.", session.mountpoint(self.volume) + "/"], check=True)
        subprocess.run(["sync"], check=True)
        self.container = datasets.run_postgres(session.client, self.volume, session.prefix + "%s-live" % dataset)
        self.check_data()

    def downtime(self, command):
        """Run ``command()``, which stops the service and starts it again; return (its result,
        seconds down). ServiceFailed if the service is not back, was not restarted, or its data
        changed. A service that an earlier failed row left stopped is started first, untimed."""
        self._start_if_stopped()
        since = time.time()
        events = self.session.client.api.events(
            since="%.9f" % since, filters={"type": "container", "container": self.container.id}, decode=True)
        try:
            result = command()
            self._wait_ready()
            ready_times = self._ready_log_times(since)
            if not ready_times:
                raise ServiceFailed("PostgreSQL (%s) was not restarted: no %r in its log since the row started"
                                    % (self.container.name, READY_MESSAGE))
            # The server was started again after ``since``, so the container stopped after it: the
            # stream holds its kill (or die) event, and reading it does not block.
            asked_to_stop = self._stop_request_time(events)
        finally:
            events.close()
        back = [stamp for stamp in ready_times if stamp > asked_to_stop]
        if not back:
            raise ServiceFailed("PostgreSQL (%s) logged no %r after it was asked to stop" % (self.container.name, READY_MESSAGE))
        self.check_data()
        return result, back[0] - asked_to_stop

    def check_data(self):
        """ServiceFailed unless pgbench_accounts holds every row pgbench wrote."""
        code, output = self.container.exec_run(["psql", "-U", "postgres", "-tAc", COUNT_ACCOUNTS], user="postgres")
        text = output.decode("utf-8", "replace").strip()
        if code != 0 or text != str(self.expected_accounts):
            raise ServiceFailed("%s in %s gave %r (exit %s), expected %d"
                                % (COUNT_ACCOUNTS, self.container.name, text[-500:], code, self.expected_accounts))

    def remove(self):
        """The container always (it holds no data of its own), the volume unless --keep."""
        self.session.remove_container(self.container.id)
        self.session.remove_volume(self.volume)

    def _start_if_stopped(self):
        self.container.reload()
        if self.container.status != "running":
            self.container.start()
            self._wait_ready()

    def _wait_ready(self):
        try:
            datasets.wait_ready(self.container, READY_TIMEOUT)
        except RuntimeError as error:
            raise ServiceFailed("%s is not back: %s" % (self.container.name, error))

    def _ready_log_times(self, since):
        """The engine's time stamps (epoch seconds) of the server's "ready" lines since ``since``."""
        logs = self.container.logs(stdout=True, stderr=True, timestamps=True, since=since).decode("utf-8", "replace")
        return [_engine_time(line.split(" ", 1)[0]) for line in logs.splitlines() if READY_MESSAGE in line]

    def _stop_request_time(self, events):
        for event in events:
            if event.get("Action") == "kill":
                return event["timeNano"] / 1e9
            if event.get("Action") == "die":
                raise ServiceFailed("PostgreSQL (%s) stopped without being asked to (no kill event before it died)"
                                    % self.container.name)
        raise ServiceFailed("the engine's event stream ended before %s was asked to stop" % self.container.name)


def _engine_time(stamp):
    """Epoch seconds of an RFC 3339 time stamp with nanoseconds, as ``docker logs -t`` writes them."""
    whole, _dot, fraction = stamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)
