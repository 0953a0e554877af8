# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the collection's playbooks as an operator does (``ansible-playbook persist.docker.NAME``)
and read what they print (the ansible.posix.json callback, with set_stats data)."""

from __future__ import annotations

import json
import subprocess
import sys

import adhoc_process


def run_playbook(name, inventory, extra_vars, timeout=900):
    """Runs persist.docker.NAME; returns (exit code, its JSON output)."""
    env = dict(
        adhoc_process.ansible_environment(),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_SHOW_CUSTOM_STATS="true",
    )
    command = [sys.executable, "-m", "ansible.cli.playbook", name, "-i", str(inventory), "-e", json.dumps(extra_vars)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        return run.returncode, json.loads(run.stdout)
    except ValueError:
        raise AssertionError("%s printed no JSON: %s %s" % (name, run.stdout[-3000:], run.stderr[-3000:]))


def failures(output):
    """The messages of the tasks that failed (and were not rescued) in a JSON output."""
    messages = []
    for play in output["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("failed") and not result.get("ansible_loop_var"):
                    messages.append(result.get("msg", ""))
    return messages
