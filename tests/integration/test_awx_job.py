# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX/Tower job runs of the project skeleton in extensions/awx, reproduced with ansible-runner.

Each job is laid out as AWX lays one out (awx_job.AwxJob): the wrapper playbooks as the
project, the collection installed from the tarball built from this checkout, an inventory
script over the fleet's engines, the survey's answers typed as AWX types them, the job's
limit and forks on the command line, and the credential type's injectors. The tests read
what AWX reads: the job's status, the playbook_on_stats event (failures, unreachable hosts)
and its artifact_data, which a workflow hands to its next node.
"""

from __future__ import annotations

import os

import pytest

from awx_job import AwxJob, build_collection, credential_type, install_collection, survey_answers
from fleet import role_report, unreachable_host_vars


@pytest.fixture(scope="module")
def collections(tmp_path_factory):
    """The project's requirements_collections: persist.docker installed from its built tarball."""
    directory = tmp_path_factory.mktemp("awx-project-sync")
    return install_collection(build_collection(directory / "dist"), directory / "requirements_collections")


def test_backup_job_over_a_healthy_fleet_succeeds_and_its_artifacts_feed_the_verify_job_of_a_workflow(
        fleet, fleet_volumes, collections, tmp_path):
    fleet_volumes.create(fleet.names)
    inventory = {"docker_hosts": {name: fleet_volumes.host_vars(name) for name in fleet.names}}
    # The verify job test-restores; the backup job need not (the fleet tests prove the role's).
    template_vars = {"persist_backup_volume_labels": [fleet_volumes.label], "persist_backup_test_restore": False}

    backup = AwxJob(tmp_path, 101, "backup.yml", inventory, collections, limit="docker_hosts", forks=4,
                    template_vars=template_vars, survey=survey_answers("backup")).run()

    assert backup.status == "successful" and backup.runner.rc == 0, backup.failed_messages()
    stats = backup.stats()
    assert stats["failures"] == {} and stats["dark"] == {}
    assert sorted(stats["ok"]) == fleet.names
    summary = stats["artifact_data"]["persist_backup"]
    assert summary["run_id"] == "awx-101"
    assert summary["hosts"] == {"total": 4, "ok": 4, "failed": 0, "unreachable": 0, "pending": 0}
    assert summary["volumes"]["backed_up"] == 4 and summary["volumes"]["failed"] == 0
    # The job ran the collection that the project sync installed, not this checkout.
    task_paths = {event["event_data"].get("task_path", "") for event in backup.events()}
    assert any(path.startswith(str(collections / "ansible_collections/persist/docker/roles/backup/")) for path in task_paths)

    # The workflow's next node: AWX passes the artifacts to it as extra variables.
    verify = AwxJob(tmp_path, 102, "verify.yml", inventory, collections, limit="docker_hosts", forks=4,
                    template_vars=dict(stats["artifact_data"]), survey=survey_answers("verify")).run()

    assert verify.status == "successful", verify.failed_messages()
    verified = verify.stats()["artifact_data"]["persist_verify"]
    verdicts = [volume for entry in verified["per_host"] for volume in entry["volumes"]]
    assert sorted(verdict["volume"] for verdict in verdicts) == sorted(name for host in fleet.names for name in fleet_volumes.volumes[host])
    assert all(verdict["status"] == "passed" for verdict in verdicts), verdicts


def test_backup_job_over_a_broken_fleet_fails_and_its_stats_name_the_failed_and_the_unreachable_host(
        fleet, fleet_volumes, collections, tmp_path):
    fleet_volumes.create(["fleet-1", "fleet-2"])
    hosts = {name: fleet_volumes.host_vars(name) for name in ("fleet-1", "fleet-2")}
    hosts["fleet-broken"] = dict(fleet_volumes.host_vars("fleet-1"), persist_docker_host="unix:///run/pt-no-engine.sock",
                                 persist_backup_dir=str(tmp_path / "broken-backups"))
    hosts["fleet-down"] = unreachable_host_vars()
    template_vars = {"persist_backup_volume_labels": [fleet_volumes.label], "persist_backup_test_restore": False}

    # The job's limit leaves fleet-2 out.
    job = AwxJob(tmp_path, 201, "backup.yml", {"docker_hosts": hosts}, collections, limit="docker_hosts:!fleet-2",
                 template_vars=template_vars, survey=survey_answers("backup")).run()

    assert job.status == "failed" and job.runner.rc != 0
    stats = job.stats()
    assert stats["failures"] == {"fleet-broken": 1}
    assert stats["dark"] == {"fleet-down": 1}
    assert "fleet-2" not in stats["processed"]
    summary = stats["artifact_data"]["persist_backup"]
    assert summary["hosts"] == {"total": 3, "ok": 1, "failed": 1, "unreachable": 1, "pending": 0}
    seen = {entry["host"]: entry for entry in summary["per_host"]}
    assert seen["fleet-1"]["status"] == "ok"
    assert seen["fleet-broken"]["status"] == "error" and "unix:///run/pt-no-engine.sock" in seen["fleet-broken"]["error"]
    assert seen["fleet-down"]["status"] == "unreachable" and "Connection refused" in seen["fleet-down"]["error"]
    assert fleet_volumes.archives("fleet-2") == {}
    assert any(message.startswith("the backup role failed: Cannot reach the Docker engine at unix:///run/pt-no-engine.sock")
               for message in job.failed_messages()), job.failed_messages()


def _texts_of(job):
    """Everything AWX keeps of a job: its events and its stdout."""
    return [path.read_text() for path in job.artifacts.rglob("*") if path.is_file()]


def test_verify_and_restore_jobs_open_encrypted_backups_with_the_identity_credential_and_never_show_it(
        fleet, fleet_volumes, collections, tmp_path, run_module):
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    secret = str(identity)
    fleet_volumes.create(["fleet-2"])
    [volume] = fleet_volumes.volumes["fleet-2"]
    engine, client = fleet["fleet-2"]
    made = run_module("volume_backup", volume=volume, dest="%s/%s" % (fleet_volumes.backup_dir("fleet-2"), volume),
                      encrypt_recipients=[str(identity.to_public())], docker_host=engine.url)
    assert made["changed"] is True and made["archive"]["path"].endswith(".age"), made
    inventory = {"docker_hosts": {"fleet-2": fleet_volumes.host_vars("fleet-2")}}
    identity_type = credential_type("persist_docker_identity")
    verify_survey = survey_answers("verify", persist_hosts="fleet-2")
    template_vars = {"persist_backup_volumes": [volume]}

    verify = AwxJob(tmp_path, 301, "verify.yml", inventory, collections, template_vars=template_vars, survey=verify_survey,
                    credentials=[(identity_type, {"decrypt_identity": secret})]).run()
    stranger = str(pyrage.x25519.Identity.generate())
    wrong = AwxJob(tmp_path, 302, "verify.yml", inventory, collections, template_vars=template_vars, survey=verify_survey,
                   credentials=[(identity_type, {"decrypt_identity": stranger})]).run()

    assert verify.status == "successful", verify.failed_messages()
    [verdict] = verify.stats()["artifact_data"]["persist_verify"]["per_host"][0]["volumes"]
    assert verdict["status"] == "passed" and verdict["archive"] == made["archive"]["path"], verdict
    assert wrong.status == "failed"
    message = wrong.failed_messages()[-1]
    assert "1 of 1 volumes on fleet-2 have no restorable latest backup" in message and "identit" in message, message

    # A restore job from the survey, an optional answer left blank (AWX 24 sends null for it).
    copy = fleet_volumes.prefix + "restored"
    fleet_volumes.volumes["fleet-2"].append(copy)
    restore = AwxJob(tmp_path, 303, "restore.yml", inventory, collections, credentials=[(identity_type, {"decrypt_identity": secret})],
                     survey=survey_answers("restore", blank=None, persist_hosts="fleet-2", persist_volume=copy,
                                           persist_source_volume=volume)).run()

    assert restore.status == "successful", restore.failed_messages()
    restored = restore.stats()["artifact_data"]["persist_restore"]
    assert restored["restored"] is True and restored["created_volume"] is True
    assert restored["archive"]["path"] == made["archive"]["path"]
    listing = client.containers.run("persist-test/debian:bookworm", ["cat", "/data/name"], remove=True, network_mode="none",
                                    volumes={copy: {"bind": "/data", "mode": "ro"}})
    assert listing.decode().strip() == volume
    for job in (verify, wrong, restore):
        assert not any(secret in text or stranger in text for text in _texts_of(job)), "job %s shows the identity" % job.job_id


def test_migrate_job_with_its_optional_answers_left_blank_moves_a_volume_through_the_controller(
        fleet, fleet_volumes, collections, tmp_path):
    fleet_volumes.create(["fleet-3"])
    [volume] = fleet_volumes.volumes["fleet-3"]
    fleet_volumes.volumes["fleet-4"] = [volume]  # the arrival, removed with the rest
    inventory = {"docker_hosts": {name: fleet_volumes.host_vars(name) for name in ("fleet-3", "fleet-4")}}

    # AWX 17 to 23 send an empty string for a blank optional answer.
    job = AwxJob(tmp_path, 401, "migrate.yml", inventory, collections,
                 survey=survey_answers("migrate", blank="", persist_source_host="fleet-3", persist_dest_host="fleet-4",
                                       persist_volume=volume)).run()

    assert job.status == "successful", job.failed_messages()
    moved = job.stats()["artifact_data"]["persist_migrate"]
    assert moved["status"] == "migrated" and moved["method"] == "archive" and moved["dest_volume"] == volume, moved
    assert moved["tree_digest"]["source"] == moved["tree_digest"]["dest"]


def test_backup_and_verify_jobs_give_the_off_host_credential_to_ssh_and_s3_targets_that_name_none_and_never_show_it(
        fleet, fleet_volumes, collections, tmp_path):
    from offsite_servers import MotoServer, SshServer, running

    fleet_volumes.create(["fleet-3"])
    [volume] = fleet_volumes.volumes["fleet-3"]
    inventory = {"docker_hosts": {"fleet-3": fleet_volumes.host_vars("fleet-3")}}
    with running(SshServer()) as ssh_server, running(MotoServer(auth=True)) as s3_server:
        target_dir = ssh_server.directory("awx")
        bucket = s3_server.bucket()
        # The job template names the targets; their secrets come only from the credential.
        targets = [ssh_server.target(target_dir, private_key=None),
                   {key: value for key, value in s3_server.target(bucket).items() if key not in ("access_key", "secret_key")}]
        with open(ssh_server.client_key) as handle:
            ssh_key = handle.read()
        secrets_given = {"s3_access_key": s3_server.access_key, "s3_secret_key": s3_server.secret_key, "ssh_private_key": ssh_key}
        offsite_type = credential_type("persist_docker_offsite")
        template_vars = {"persist_backup_volume_labels": [fleet_volumes.label], "persist_backup_test_restore": False,
                         "persist_backup_offsite": targets}

        backup = AwxJob(tmp_path, 501, "backup.yml", inventory, collections, template_vars=template_vars,
                        survey=survey_answers("backup", persist_hosts="fleet-3"), credentials=[(offsite_type, secrets_given)]).run()
        verify = AwxJob(tmp_path, 502, "verify.yml", inventory, collections, template_vars={"persist_backup_offsite": targets},
                        survey=survey_answers("verify", persist_hosts="fleet-3"), credentials=[(offsite_type, secrets_given)]).run()
        # Without the credential the targets have no keys: the copy fails, naming its target.
        keyless = AwxJob(tmp_path, 503, "verify.yml", inventory, collections, template_vars={"persist_backup_offsite": targets},
                         survey=survey_answers("verify", persist_hosts="fleet-3")).run()

        assert backup.status == "successful", backup.failed_messages()
        [entry] = backup.stats()["artifact_data"]["persist_backup"]["per_host"]
        [report] = role_report(entry)["volumes"]
        assert [target["errors"] for target in report["offsite"]] == [[], []], report["offsite"]
        archive = os.path.basename(report["archive"]["path"])
        assert sorted(os.listdir(target_dir)) == [archive, archive + ".json"]
        objects = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        assert sorted(item["Key"] for item in objects) == [archive, archive + ".json"]
        assert verify.status == "successful", verify.failed_messages()
        [verdict] = verify.stats()["artifact_data"]["persist_verify"]["per_host"][0]["volumes"]
        assert [copy["status"] for copy in verdict["offsite"]] == ["passed", "passed"], verdict
        assert keyless.status == "failed"
        made = [event["event_data"]["res"]["path"] for event in backup.events()
                if event["event"] == "runner_on_ok" and event["event_data"].get("task") == "Make a private file for the SSH key"]
        assert made and all(path.startswith(str(backup.tmp) + "/persist-offsite-key-") for path in made), made
        shown = [value.strip() for value in secrets_given.values()]
        for job in (backup, verify, keyless):
            assert job.tmp_files("persist-offsite-key-*") == [], "job %s left the SSH key on the host" % job.job_id
            assert not any(secret in text for secret in shown for text in _texts_of(job)), "job %s shows a secret" % job.job_id
