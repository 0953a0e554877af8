# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup playbook (and its role) with encryption at rest and a copy off the host: the
archive is an age file, checked in full and test-restored with the key, sent to a real SSH
server (sshd on 127.0.0.1, offsite_servers) and checked there; the report says so per
volume and target; a second run sends nothing. The Molecule scenario ``backup`` covers the
role itself; its node has no network to reach an off-host target."""

from __future__ import annotations

import json
import os
import sys

import pytest
from pyrage import x25519

from offsite_servers import SshServer, running, sha256_of
from playbooks import failures, run_playbook
from volume_trees import write_file


@pytest.fixture(scope="module")
def ssh_server():
    with running(SshServer()) as server:
        yield server


def test_the_backup_playbook_encrypts_ships_and_reports_each_copy(engine, backup_dir, ssh_server, tmp_path):
    name = engine.create_volume("role-offsite")
    write_file(engine.mountpoint(name) / "orders.csv", b"order,total\n1,42\n" * 1000)
    identity = x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text("%s\n" % identity)
    target_dir = ssh_server.directory("role")
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    extra_vars = dict(
        persist_hosts="localhost",
        persist_report_dir=str(tmp_path / "controller"),
        persist_backup_dir=str(backup_dir),
        persist_backup_volumes=[name],
        persist_backup_volume_labels=[],
        persist_backup_encrypt_recipients=[str(identity.to_public())],
        persist_backup_decrypt_identity_file=str(key),
        persist_backup_offsite=[ssh_server.target(target_dir)],
        persist_backup_test_restore_interval_days=0,
        persist_backup_textfile_dir=str(tmp_path / "textfiles"),
    )

    rc, output = run_playbook("persist.docker.backup", inventory, extra_vars)

    assert rc == 0, failures(output)
    with open(os.path.join(str(backup_dir), "reports", "latest.json")) as handle:
        report = json.load(handle)
    [volume] = report["volumes"]
    assert volume["status"] == "backed_up", volume
    archive = volume["archive"]["path"]
    assert archive.endswith(".tar.zst.age")
    assert volume["verification"]["status"] == "passed"
    assert volume["verification"]["checks"]["tree_digest"] == "passed", "the key opened it for the full check"
    assert volume["test_restore"]["status"] == "passed", volume["test_restore"]
    [shipped] = volume["offsite"]
    assert shipped["sent"] == [os.path.basename(archive)] and shipped["verified"] is True and shipped["errors"] == []
    assert shipped["bytes"] == os.path.getsize(archive)
    copies = sorted(os.listdir(target_dir))
    assert copies == [os.path.basename(archive), os.path.basename(archive) + ".json"]
    assert sha256_of(os.path.join(target_dir, copies[0])) == volume["archive"]["sha256"]

    rc, output = run_playbook("persist.docker.backup", inventory, extra_vars)

    assert rc == 0, failures(output)
    with open(os.path.join(str(backup_dir), "reports", "latest.json")) as handle:
        [again] = json.load(handle)["volumes"]
    assert again["status"] == "unchanged", again
    assert again["offsite"][0]["sent"] == [] and again["offsite"][0]["present"] == 1
    assert sorted(os.listdir(target_dir)) == copies


def test_a_target_that_refuses_the_copy_fails_the_volume_naming_it_and_keeps_the_local_backup(engine, backup_dir, ssh_server, tmp_path):
    name = engine.create_volume("role-offsite-refused")
    write_file(engine.mountpoint(name) / "file", b"data")
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    wrong_key = ssh_server.target(ssh_server.directory("refused"), private_key=ssh_server.other_key)
    extra_vars = dict(
        persist_hosts="localhost", persist_report_dir=str(tmp_path / "controller"), persist_backup_dir=str(backup_dir),
        persist_backup_volumes=[name], persist_backup_volume_labels=[], persist_backup_offsite=[wrong_key],
        persist_backup_test_restore=False, persist_backup_textfile_dir=str(tmp_path / "textfiles"),
    )

    rc, output = run_playbook("persist.docker.backup", inventory, extra_vars)

    assert rc != 0
    with open(os.path.join(str(backup_dir), "reports", "latest.json")) as handle:
        [volume] = json.load(handle)["volumes"]
    assert volume["status"] == "failed"
    assert volume["error"]["step"] == "Copy the backups off the host", volume["error"]
    assert "ssh://" in volume["error"]["message"] and name in volume["error"]["message"]
    assert os.path.exists(volume["archive"]["path"]), "the local backup is kept"


def test_the_verify_playbook_checks_the_copies_off_the_host_and_names_one_altered_there(engine, backup_dir, ssh_server, tmp_path):
    name = engine.create_volume("role-offsite-verify")
    write_file(engine.mountpoint(name) / "file", b"data" * 1000)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
    target_dir = ssh_server.directory("verify")
    target = ssh_server.target(target_dir)
    common = dict(persist_hosts="localhost", persist_backup_dir=str(backup_dir), persist_backup_volumes=[name],
                  persist_backup_offsite=[target])
    rc, output = run_playbook("persist.docker.backup", inventory, dict(
        common, persist_report_dir=str(tmp_path / "controller"), persist_backup_volume_labels=[],
        persist_backup_test_restore=False, persist_backup_textfile_dir=str(tmp_path / "textfiles")))
    assert rc == 0, failures(output)

    rc, output = run_playbook("persist.docker.verify", inventory, common)

    assert rc == 0, failures(output)
    [verdict] = output["global_custom_stats"]["persist_verify"]["per_host"][0]["volumes"]
    assert verdict["status"] == "passed" and [copy["status"] for copy in verdict["offsite"]] == ["passed"], verdict

    copy = [entry for entry in os.listdir(target_dir) if entry.endswith(".tar.zst")][0]
    with open(os.path.join(target_dir, copy), "r+b") as handle:
        handle.seek(10)
        handle.write(b"\0" * 8)
    rc, output = run_playbook("persist.docker.verify", inventory, common)

    assert rc != 0
    [verdict] = output["global_custom_stats"]["persist_verify"]["per_host"][0]["volumes"]
    assert verdict["status"] == "failed" and copy in verdict["message"], verdict
