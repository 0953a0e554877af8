# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the collection's playbooks as an operator does (``ansible-playbook persist.docker.NAME``)
and read what they print (the ansible.posix.json callback, with set_stats data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import adhoc_process


def run_playbook(name, inventory, extra_vars, timeout=900, forks=None, measure=None):
    """Runs persist.docker.NAME; returns (exit code, its JSON output).

    ``forks``: the run's ``--forks``. ``measure``, a dict, receives the run's wall seconds and
    what it cost the controller (``ControllerUsage``: peak memory, processes, CPU time).
    """
    env = dict(
        adhoc_process.ansible_environment(),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_SHOW_CUSTOM_STATS="true",
    )
    command = [sys.executable, "-m", "ansible.cli.playbook", name, "-i", str(inventory), "-e", json.dumps(extra_vars)]
    if forks is not None:
        command += ["--forks", str(forks)]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    usage = ControllerUsage(process.pid)
    if measure is not None:
        usage.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            adhoc_process.kill_tree(process)
        usage.done.set()
    if measure is not None:
        usage.join()
        measure.update(wall_seconds=round(time.monotonic() - started, 1), peak_bytes=usage.peak_bytes,
                       peak_processes=usage.peak_processes, cpu_seconds=usage.cpu_seconds, main_cpu_seconds=usage.main_cpu_seconds)
    try:
        return process.returncode, json.loads(stdout)
    except ValueError:
        raise AssertionError("%s printed no JSON (rc %s): %s %s" % (name, process.returncode, stdout[-3000:], stderr[-3000:]))


class ControllerUsage(threading.Thread):
    """Samples what an ansible-playbook run costs the controller: its main process and its
    forks (workers), not the modules they start (which run on the managed nodes). Memory as
    PSS, so that the pages the forks share with the main process count once; CPU as the
    seconds each of those processes used, as last seen (workers live for the whole play)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_bytes = 0
        self.peak_processes = 0
        self.cpu_ticks = {}
        self.done = threading.Event()

    @property
    def cpu_seconds(self):
        return round(sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK"), 1)

    @property
    def main_cpu_seconds(self):
        """The main process's share: it alone queues every task and takes in every result."""
        return round(self.cpu_ticks.get(self.pid, 0) / os.sysconf("SC_CLK_TCK"), 1)

    def run(self):
        while not self.done.wait(0.25):
            total = processes = 0
            for pid in adhoc_process.process_tree(self.pid):
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
                        if b"ansible.cli.playbook" not in cmdline.read():
                            continue
                    with open("/proc/%d/smaps_rollup" % pid) as rollup:
                        total += 1024 * sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
                    with open("/proc/%d/stat" % pid) as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                    self.cpu_ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
                    processes += 1
                except (OSError, ValueError, IndexError):
                    continue  # gone meanwhile
            self.peak_bytes = max(self.peak_bytes, total)
            self.peak_processes = max(self.peak_processes, processes)


def failures(output):
    """The messages of the tasks that failed (and were not rescued) in a JSON output."""
    messages = []
    for play in output["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("failed") and not result.get("ansible_loop_var"):
                    messages.append(result.get("msg", ""))
    return messages
