# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action group group/persist.docker.docker carries connection options to every module.

pytest-ansible plays a single task without module_defaults, so this test runs a real
ansible-playbook on a generated playbook and reads the registered results back as JSON.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: The group defaults point both modules at the engine (DOCKER_HOST points elsewhere)
      module_defaults:
        group/persist.docker.docker:
          docker_host: "{{ engine_address }}"
      block:
        - persist.docker.volume:
            name: "{{ volume }}"
            labels: {made-by: module-defaults}
          register: created
        - persist.docker.volume_info:
            name: "{{ volume }}"
          register: described

    - name: The group defaults point both modules at an address with no engine
      module_defaults:
        group/persist.docker.docker:
          docker_host: "{{ wrong_address }}"
      block:
        - persist.docker.volume:
            name: "{{ volume }}"
          register: volume_wrong
          ignore_errors: true
        - persist.docker.volume_info:
            name: "{{ volume }}"
          register: info_wrong
          ignore_errors: true

    - ansible.builtin.copy:
        dest: "{{ results_file }}"
        content: "{{ {'created': created, 'described': described,
                      'volume_wrong': volume_wrong, 'info_wrong': info_wrong} | to_json }}"
"""


def test_module_defaults_of_the_action_group_set_docker_host_for_both_modules(engine, tmp_path):
    name = engine.name("module-defaults")
    engine_address = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    wrong_address = "unix:///nonexistent-%s.sock" % secrets.token_hex(4)
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(PLAYBOOK)
    results_file = tmp_path / "results.json"
    extra_vars = dict(
        volume=name, engine_address=engine_address, wrong_address=wrong_address, results_file=str(results_file)
    )
    # Without the group defaults the modules would fall back to this unreachable address.
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent-env-%s.sock" % secrets.token_hex(4), ANSIBLE_NOCOLOR="1")

    run = subprocess.run(
        [sys.executable, "-m", "ansible.cli.playbook", "-i", "localhost,", "-e", json.dumps(extra_vars), str(playbook)],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(results_file.read_text())
    assert results["created"]["changed"] is True
    assert engine.inspect(name)["Labels"] == {"made-by": "module-defaults"}
    assert results["described"]["exists"] is True
    assert results["described"]["volume"]["labels"] == {"made-by": "module-defaults"}
    for key in ("volume_wrong", "info_wrong"):
        assert results[key]["failed"] is True
        assert results[key]["msg"].startswith("Cannot reach the Docker engine at %s:" % wrong_address)
