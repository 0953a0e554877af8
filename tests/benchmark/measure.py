# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Timing one command and the peak memory of the processes that do its work.

A command runs as a child process in its own session (so that Ctrl-C reaches only the
benchmark, which then kills the command's whole process tree). While it runs, a thread
walks the command's process tree every ``POLL_SECONDS`` through ``/proc/PID/task/*/children``
and reads ``VmHWM`` (the kernel's high-water mark of the resident set) of every process
that does the work: the module's python (``AnsiballZ_<module>.py``) for our rows, tar,
gzip, zstd and cp for the others. VmHWM only grows, so the last value seen is the peak
up to that moment; only growth in the last poll interval before a process exits is missed.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

import adhoc_process

POLL_SECONDS = 0.02
# Processes that do the work of the recipe and limit rows (the shell and the docker CLI do not).
TOOL_NAMES = frozenset(("tar", "gzip", "zstd", "cp"))


class Measurement:
    """What one timed run gave: wall seconds, peak RSS, the module's own lifetime."""

    def __init__(self, wall_seconds, peak_rss_bytes, worker_seconds, returncode, stdout, stderr):
        self.wall_seconds = wall_seconds
        self.peak_rss_bytes = peak_rss_bytes
        self.worker_seconds = worker_seconds
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def _children(pid):
    found = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return found
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as listing:
                found.extend(int(child) for child in listing.read().split())
        except OSError:
            continue
    return found


def _high_water_mark(pid):
    """VmHWM of ``pid`` in bytes, or None when it is gone (or a zombie, which has none)."""
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _describe(pid):
    """(comm, cmdline) of ``pid``, or None when it is gone."""
    try:
        with open("/proc/%d/comm" % pid) as comm, open("/proc/%d/cmdline" % pid, "rb") as cmdline:
            return comm.read().strip(), cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def module_process(module):
    """A predicate for the python that runs ``module`` (AnsiballZ wrapper and module share it)."""
    marker = "AnsiballZ_%s.py" % module

    def is_worker(comm, cmdline):
        return marker in cmdline and comm.startswith("python")

    return is_worker


def tool_process(comm, cmdline):  # pylint: disable=unused-argument
    """The predicate for tar, gzip, zstd and cp (the recipe's and the limit's workers)."""
    return comm in TOOL_NAMES


def verified_process(comm, cmdline):
    """The predicate for the verified rows' workers: the limit's tools and hashrelay.py."""
    return comm in TOOL_NAMES or (comm.startswith("python") and "hashrelay.py" in cmdline)


def floor_process(comm, cmdline):
    """The predicate for floor.py (the floor rows' worker)."""
    return comm.startswith("python") and "floor.py" in cmdline


class TreeSampler(threading.Thread):
    """Polls the process trees under ``roots()`` and keeps each worker's highest VmHWM."""

    def __init__(self, roots, is_worker):
        super().__init__(daemon=True)
        self._roots = roots
        self._is_worker = is_worker
        self._stop_event = threading.Event()
        self._workers = set()
        self.peaks = {}  # worker pid -> highest VmHWM seen
        self.first_seen = None
        self.last_seen = None

    def run(self):
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(POLL_SECONDS)
        self.sample()

    def sample(self):
        tree = list(self._roots())
        for pid in tree:
            tree.extend(_children(pid))
        now = time.monotonic()
        for pid in tree:
            # Only workers are remembered: a process forked by the shell or by Ansible is
            # described again on every poll until it has exec'd the worker's program.
            if pid not in self._workers:
                described = _describe(pid)
                if described is None or not self._is_worker(*described):
                    continue
                self._workers.add(pid)
            mark = _high_water_mark(pid)
            if mark is None:
                continue
            self.peaks[pid] = max(mark, self.peaks.get(pid, 0))
            if self.first_seen is None:
                self.first_seen = now
            self.last_seen = now

    def stop(self):
        self._stop_event.set()
        self.join()

    def peak_rss(self):
        """Each worker at its own peak, summed (one process for our rows; tar + zstd and the
        like for a pipeline, an upper bound of what they held at once)."""
        return sum(self.peaks.values()) if self.peaks else None

    def worker_seconds(self):
        if self.first_seen is None:
            return None
        return self.last_seen - self.first_seen


def timed(argv, is_worker, env=None, extra_roots=None, timeout=1800):
    """Run ``argv`` to its end; a Measurement. ``extra_roots()`` may name more pids whose
    trees hold workers (a container's processes are children of the engine, not of the CLI).
    Interrupted (Ctrl-C, SIGTERM, timeout), the command is killed with every process it started."""
    started = time.monotonic()
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )

    def roots():
        return [process.pid] + (list(extra_roots()) if extra_roots else [])

    sampler = TreeSampler(roots, is_worker)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        adhoc_process.kill_tree(process)
        raise
    finally:
        wall = time.monotonic() - started
        sampler.stop()
    return Measurement(
        wall, sampler.peak_rss(), sampler.worker_seconds(), process.returncode,
        stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"),
    )


def run_module(module, args):
    """``ansible localhost -c local -m persist.docker.MODULE -a JSON``, timed as a whole, with
    the module process's peak RSS; returns (Measurement, result dict)."""
    measured = timed(adhoc_process.command(module, args), module_process(module), env=adhoc_process.ansible_environment())
    try:
        result = adhoc_process.parse(measured.stdout, measured.stderr)
    except (AssertionError, ValueError):
        result = {"failed": True, "msg": "no module result (exit %s): %s %s"
                  % (measured.returncode, measured.stdout[-2000:], measured.stderr[-2000:])}
    return measured, result
