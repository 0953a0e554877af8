# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Who owns what a run leaves on the engine or the host: an owner token names the process
(host name, pid, start time), so that a later run can tell what a killed run abandoned
from what a live run still uses (helpers, locks, swap records, scratch volumes)."""

from __future__ import annotations

import os
import socket


def _process_start_time(pid):
    """The start time of process ``pid`` in clock ticks since boot, or None if it is gone
    (a zombie, dead but not yet reaped by its parent, is gone too)."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def owner_token():
    """Identify this process: host name, pid and start time (pids are reused)."""
    pid = os.getpid()
    return "%s/%d/%s" % (socket.gethostname(), pid, _process_start_time(pid) or "?")


def owner_is_gone(token):
    """True only when ``token`` names a process on this host that no longer runs."""
    try:
        host, pid, started = token.rsplit("/", 2)
        pid = int(pid)
    except (AttributeError, ValueError):
        return False
    if host != socket.gethostname():
        return False
    return _process_start_time(pid) != started
