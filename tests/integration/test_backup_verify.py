# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.backup_verify: good archives pass, each kind of damage fails with its reason,
directories are verified latest or all, test restores go through a scratch volume that is
always removed (and reaped after a killed run), probes pass, fail and time out."""

from __future__ import annotations

import os
import secrets
import shutil
import tarfile
import time

import pytest
from docker.errors import NotFound

import adhoc_process
import crafted_archives as crafted
from crafted_archives import member, root
from volume_trees import snapshot, write_file

SCRATCH_LABEL = "persist.docker.scratch"
OWNER_LABEL = "persist.docker.owner"
HELPER_LABEL = "persist.docker.helper"
PROBE_LABEL = "persist.docker.probe"
# No engine answers here: a run that does not need one must not try to reach it.
NO_ENGINE = "unix:///nonexistent/persist-verify-no-engine.sock"


@pytest.fixture(scope="module")
def reference(module_engine, module_backup_dir):
    """A real backup (2 MiB of random data and a directory of small files), and its volume."""
    name = module_engine.create_volume("verify-reference")
    volume_root = module_engine.mountpoint(name)
    write_file(volume_root / "random", os.urandom(2 << 20))
    os.mkdir(volume_root / "dir")
    for number in range(20):
        write_file(volume_root / "dir" / ("file-%02d" % number), b"content %d\n" % number * 100)
    result = adhoc_process.run("volume_backup", {"volume": name, "dest": str(module_backup_dir)})
    assert result["changed"] is True, result
    return {"volume": name, "archive": result["archive"]}


def _copy(reference, directory, file_name=None):
    """A copy of the reference archive and its sidecar in ``directory``; returns its path."""
    source = reference["archive"]["path"]
    archive = str(directory / (file_name or os.path.basename(source)))
    shutil.copyfile(source, archive)
    shutil.copyfile(source + ".json", archive + ".json")
    return archive


def _edit_sidecar(archive, **changes):
    metadata = crafted.read_sidecar(archive)
    for dotted, value in changes.items():
        section, _sep, key = dotted.partition("__")
        if key:
            metadata[section][key] = value
        else:
            metadata[section] = value
    crafted.write_sidecar(archive, metadata)


def _only_verdict(result):
    assert len(result["verdicts"]) == 1, result
    return result["verdicts"][0]


def _scratch_volumes_of(docker_client, volume):
    return [found.name for found in docker_client.volumes.list(filters={"name": "persist-verify-" + volume})]


def _volume_events(docker_client, since, name_prefix):
    """(action, volume name) of the engine's volume events since ``since`` for names with that prefix."""
    events = docker_client.events(since=since, until=int(time.time()) + 1, filters={"type": "volume"}, decode=True)
    return [(event["Action"], event["Actor"]["ID"]) for event in events if event["Actor"]["ID"].startswith(name_prefix)]


def test_good_archive_passes_every_read_check_in_check_mode_and_for_real_without_any_engine(run_module, backup_dir, reference):
    archive = _copy(reference, backup_dir)

    for check in (True, False):
        # An engine address where none answers: the read checks must not need one.
        result = run_module("backup_verify", check=check, path=archive, docker_host=NO_ENGINE)

        assert not result.get("failed"), result
        assert result["changed"] is False
        assert result["totals"] == {"verified": 1, "passed": 1, "failed": 0}
        verdict = _only_verdict(result)
        assert verdict["status"] == "passed" and verdict["reason"] is None
        assert (verdict["path"], verdict["volume"]) == (archive, reference["volume"])
        assert verdict["checks"] == {
            "sha256": "passed", "tree_digest": "passed", "safety": "passed", "test_restore": "skipped", "probe": "skipped",
        }
        assert verdict["skipped"] == {"test_restore": "test_restore is false", "probe": "test_restore is false"}
        for key in ("sha256", "tree_digest", "size", "entries", "bytes"):
            assert verdict[key] == reference["archive"][key], key
        assert verdict["entries"] == 22


def _wrong_sha256(path):
    _edit_sidecar(path, archive__sha256="0" * 64)


def _wrong_tree_digest(path):
    _edit_sidecar(path, tree__digest="f" * 64)


# (id, how the copy is spoiled, alternatives the reason must contain, the check that fails)
CORRUPTIONS = [
    # A flipped byte in zstd data breaks decompression (read) or, if it decodes, the sha256.
    ("flipped-byte-in-the-middle", crafted.flip_middle_byte, "is corrupt or truncated|does not match its sidecar", "tree_digest|sha256"),
    ("truncated-file", crafted.truncate, "the archive is damaged: archive is", "sha256"),
    ("sidecar-sha256-edited", _wrong_sha256, "does not match its sidecar (sha256 ", "sha256"),
    ("sidecar-tree-digest-edited", _wrong_tree_digest, "passes its checksum but its tree digest differs from the sidecar's", "tree_digest"),
]


@pytest.mark.parametrize("spoil, words, check", [case[1:] for case in CORRUPTIONS], ids=[case[0] for case in CORRUPTIONS])
def test_corrupted_archive_fails_with_a_reason_that_names_it(run_module, backup_dir, reference, spoil, words, check):
    archive = _copy(reference, backup_dir)
    spoil(archive)

    for mode in (True, False):
        result = run_module("backup_verify", check=mode, path=archive, docker_host=NO_ENGINE)

        assert result.get("failed") is True, result
        assert result["msg"].startswith("1 of 1 archive(s) failed verification: %s: " % archive), result["msg"]
        assert result["changed"] is False
        assert result["totals"] == {"verified": 1, "passed": 0, "failed": 1}
        verdict = _only_verdict(result)
        assert verdict["status"] == "failed"
        assert any(word in verdict["reason"] for word in words.split("|")), verdict["reason"]
        assert verdict["reason"] in result["msg"]
        assert "target volume" not in verdict["reason"]  # restore's wording, not a verification's
        assert any(verdict["checks"][name] == "failed" for name in check.split("|")), verdict["checks"]
        assert verdict["checks"]["test_restore"] == verdict["checks"]["probe"] == "not_run"
        assert "sha256" not in verdict  # facts of a verified archive only


def test_sidecar_checks_of_an_archive_that_reads_fine_say_which_one_failed(run_module, backup_dir, reference):
    sha_edited = _copy(reference, backup_dir, "sha.tar.zst")
    _wrong_sha256(sha_edited)
    digest_edited = _copy(reference, backup_dir, "digest.tar.zst")
    _wrong_tree_digest(digest_edited)

    sha = _only_verdict(run_module("backup_verify", path=sha_edited, docker_host=NO_ENGINE))
    digest = _only_verdict(run_module("backup_verify", path=digest_edited, docker_host=NO_ENGINE))

    assert (sha["checks"]["safety"], sha["checks"]["sha256"], sha["checks"]["tree_digest"]) == ("passed", "failed", "not_run")
    assert (digest["checks"]["safety"], digest["checks"]["sha256"], digest["checks"]["tree_digest"]) == ("passed", "passed", "failed")


def test_archive_with_an_unsafe_member_fails_the_safety_check_naming_member_and_rule(run_module, backup_dir, reference):
    template = crafted.read_sidecar(reference["archive"]["path"])
    archive = crafted.write_backup(backup_dir, "hostile", [root(), member("./link", tarfile.SYMTYPE, linkname="../../../etc")], template)
    device = crafted.write_backup(backup_dir, "device", [root(), member("./null", tarfile.CHRTYPE, devmajor=1, devminor=3)], template)

    result = run_module("backup_verify", path=archive, docker_host=NO_ENGINE)

    assert result.get("failed") is True, result
    verdict = _only_verdict(result)
    assert verdict["checks"]["safety"] == "failed"
    assert (verdict["member"], verdict["rule"]) == ("link", "symlink target ../../../etc leaves the volume")
    assert "The archive %s is refused: member link breaks a safety rule" % archive in verdict["reason"]
    assert archive in result["msg"]

    refused = run_module("backup_verify", path=device, docker_host=NO_ENGINE)
    allowed = run_module("backup_verify", path=device, allow_special=True, docker_host=NO_ENGINE)
    assert refused.get("failed") is True and "chardev nodes are refused unless allow_special" in refused["msg"]
    assert not allowed.get("failed"), allowed
    assert _only_verdict(allowed)["checks"]["safety"] == "passed"


def _directory_of_two_volumes(reference, directory):
    """The reference volume: its complete backup and, newer, a damaged and an incomplete
    archive. Another volume: one complete backup (a copy whose sidecar names it)."""
    volume = reference["volume"]
    good = _copy(reference, directory)
    damaged = _copy(reference, directory, "%s-20991230T000000Z.tar.zst" % volume)
    _edit_sidecar(damaged, created="2099-12-30T00:00:00Z")
    crafted.truncate(damaged)
    incomplete = _copy(reference, directory, "%s-20991231T000000Z.tar.zst" % volume)
    os.unlink(incomplete + ".json")
    other_volume = volume + "-other"
    other = _copy(reference, directory, "%s-20260101T000000Z.tar.zst" % other_volume)
    _edit_sidecar(other, created="2026-01-01T00:00:00Z", volume={"name": other_volume, "driver": "local", "driver_opts": {}, "labels": {}})
    return {"good": good, "damaged": damaged, "incomplete": incomplete, "other": other, "other_volume": other_volume}


def test_directory_latest_verifies_the_latest_complete_backup_per_volume_and_warns_about_newer_broken_ones(run_module, backup_dir, reference):
    files = _directory_of_two_volumes(reference, backup_dir)

    result = run_module("backup_verify", path=str(backup_dir), docker_host=NO_ENGINE)

    assert not result.get("failed"), result
    assert [(verdict["path"], verdict["status"]) for verdict in result["verdicts"]] == [
        (files["good"], "passed"), (files["other"], "passed"),
    ]
    assert result["verdicts"][1]["volume"] == files["other_volume"]
    warning = result["verdicts"][0]["warnings"][0]
    assert "was verified instead" in warning
    assert os.path.basename(files["damaged"]) + " (damaged: archive is " in warning
    assert os.path.basename(files["incomplete"]) + " (incomplete: no metadata sidecar" in warning
    assert any(os.path.basename(files["incomplete"]) in shown for shown in result.get("warnings", [])), result.get("warnings")

    only_other = run_module("backup_verify", path=str(backup_dir), volume=files["other_volume"], docker_host=NO_ENGINE)
    assert [verdict["path"] for verdict in only_other["verdicts"]] == [files["other"]]
    assert only_other["verdicts"][0]["warnings"] == []


def test_directory_all_verifies_every_archive_and_fails_the_damaged_and_incomplete_with_their_reasons(run_module, backup_dir, reference):
    files = _directory_of_two_volumes(reference, backup_dir)

    result = run_module("backup_verify", path=str(backup_dir), select="all", docker_host=NO_ENGINE)

    assert result.get("failed") is True, result
    assert result["totals"] == {"verified": 4, "passed": 2, "failed": 2}
    verdicts = dict((verdict["path"], verdict) for verdict in result["verdicts"])
    assert set(verdicts) == set([files["good"], files["damaged"], files["incomplete"], files["other"]])
    assert verdicts[files["good"]]["status"] == verdicts[files["other"]]["status"] == "passed"
    assert verdicts[files["damaged"]]["reason"].startswith("the archive is damaged: archive is ")
    assert verdicts[files["damaged"]]["checks"]["sha256"] == "failed"
    assert verdicts[files["incomplete"]]["reason"] == "the archive is incomplete: no metadata sidecar: the backup did not finish"
    assert verdicts[files["incomplete"]]["volume"] == reference["volume"]
    assert result["msg"].startswith("2 of 4 archive(s) failed verification: ")
    for broken in ("damaged", "incomplete"):
        assert "%s: %s" % (files[broken], verdicts[files[broken]]["reason"]) in result["msg"]


def test_directory_with_no_backup_of_the_volume_asked_for_fails(run_module, backup_dir, reference):
    _copy(reference, backup_dir)

    result = run_module("backup_verify", path=str(backup_dir), volume="persist-no-such-volume", docker_host=NO_ENGINE)

    assert result.get("failed") is True, result
    assert _only_verdict(result)["reason"] == "there is no backup of volume persist-no-such-volume"
    assert "%s: there is no backup of volume persist-no-such-volume" % backup_dir in result["msg"]


def test_check_mode_skips_test_restore_and_probe_and_creates_no_scratch_volume(run_module, docker_client, backup_dir, reference):
    archive = _copy(reference, backup_dir)
    probe = {"command": ["true"], "path": "/restored"}
    since = int(time.time()) - 1

    # Check mode does not even connect: no engine answers at this address.
    offline = run_module("backup_verify", check=True, path=archive, test_restore=True, probe=probe, docker_host=NO_ENGINE)
    online = run_module("backup_verify", check=True, path=archive, test_restore=True, probe=probe)

    for result in (offline, online):
        assert not result.get("failed"), result
        verdict = _only_verdict(result)
        assert verdict["status"] == "passed"
        assert (verdict["checks"]["test_restore"], verdict["checks"]["probe"]) == ("skipped", "skipped")
        assert verdict["skipped"] == {"test_restore": "check mode", "probe": "check mode"}
        assert "test_restore" not in verdict and "probe" not in verdict
    assert _volume_events(docker_client, since, "persist-verify-" + reference["volume"]) == []


def test_test_restore_restores_into_a_scratch_volume_compares_the_digest_and_removes_it(run_module, docker_client, backup_dir, reference):
    archive = _copy(reference, backup_dir)
    since = int(time.time()) - 1

    result = run_module("backup_verify", path=archive, test_restore=True)

    assert not result.get("failed"), result
    assert result["changed"] is False
    verdict = _only_verdict(result)
    assert verdict["checks"] == {
        "sha256": "passed", "tree_digest": "passed", "safety": "passed", "test_restore": "passed", "probe": "skipped",
    }
    assert verdict["skipped"] == {"probe": "no probe given"}
    restored = verdict["test_restore"]
    assert restored["tree_digest"] == reference["archive"]["tree_digest"]
    assert restored["scratch_volume"].startswith("persist-verify-%s-" % reference["volume"])
    assert (restored["driver"], restored["driver_opts"]) == ("local", {})
    events = _volume_events(docker_client, since, restored["scratch_volume"])
    assert ("create", restored["scratch_volume"]) in events
    assert events[-1] == ("destroy", restored["scratch_volume"])
    assert _scratch_volumes_of(docker_client, reference["volume"]) == []


def test_scratch_volume_and_probe_carry_owner_labels_and_the_probe_has_no_network(docker_client, backup_dir, reference, this_host):
    archive = _copy(reference, backup_dir)
    probe = {"command": ["sh", "-c", "cat /proc/net/dev; sleep 4; ls /restored/dir | wc -l"], "path": "/restored"}
    process = adhoc_process.start("backup_verify", {"path": archive, "test_restore": True, "probe": probe})
    try:
        found = {}

        def probe_running():
            probes = docker_client.api.containers(filters={"label": PROBE_LABEL, "status": "running"})
            mine = [c for c in probes if c["Labels"][PROBE_LABEL].startswith("persist-verify-%s-" % reference["volume"])]
            if mine:
                found["probe"] = docker_client.api.inspect_container(mine[0]["Id"])
                found["volume"] = docker_client.api.inspect_volume(mine[0]["Labels"][PROBE_LABEL])
            return bool(mine)

        assert adhoc_process.wait_until(probe_running, timeout=120, interval=0.2)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            adhoc_process.kill_tree(process)
    result = adhoc_process.parse(stdout.decode(), stderr.decode())

    assert not result.get("failed"), result
    labels = found["volume"]["Labels"]
    assert labels[SCRATCH_LABEL] == "true"
    assert labels[OWNER_LABEL].startswith(this_host + "/")
    assert set(labels) == set([SCRATCH_LABEL, OWNER_LABEL])  # not the backed-up volume's labels
    container = found["probe"]
    assert container["Config"]["Labels"][HELPER_LABEL] == "true"
    assert container["Config"]["Labels"][OWNER_LABEL] == labels[OWNER_LABEL]
    assert container["HostConfig"]["NetworkMode"] == "none"
    verdict = _only_verdict(result)
    assert verdict["probe"]["exit_code"] == 0
    output = verdict["probe"]["output"]
    assert "lo:" in output and "eth0" not in output  # the loopback interface only
    assert output.strip().endswith("20")  # the 20 files of dir, read from the restored copy
    assert _scratch_volumes_of(docker_client, reference["volume"]) == []
    assert docker_client.api.containers(all=True, filters={"id": container["Id"]}) == []


def test_probe_that_exits_non_zero_fails_the_verdict_with_its_exit_code_and_output(run_module, docker_client, backup_dir, reference):
    archive = _copy(reference, backup_dir)
    probe = {
        "entrypoint": ["sh", "-c"],
        "command": ["echo checked $(ls $RESTORED | wc -l) entries; echo 'count is wrong' >&2; exit 3"],
        "env": {"RESTORED": "/copy"},
        "path": "/copy",
    }

    result = run_module("backup_verify", path=archive, test_restore=True, probe=probe)

    assert result.get("failed") is True, result
    verdict = _only_verdict(result)
    assert verdict["checks"]["test_restore"] == "passed"
    assert verdict["checks"]["probe"] == "failed"
    assert verdict["probe"]["exit_code"] == 3 and verdict["probe"]["timed_out"] is False
    assert "checked 2 entries" in verdict["probe"]["output"] and "count is wrong" in verdict["probe"]["output"]
    assert "exited with code 3 on the restored copy" in verdict["reason"]
    assert "count is wrong" in verdict["reason"]
    assert archive in result["msg"] and "count is wrong" in result["msg"]
    assert _scratch_volumes_of(docker_client, reference["volume"]) == []


def test_probe_that_runs_past_its_timeout_is_killed_removed_and_reported(run_module, docker_client, backup_dir, reference):
    archive = _copy(reference, backup_dir)
    probe = {"command": ["sh", "-c", "echo waiting for ever; exec sleep 600"], "path": "/copy", "timeout": 3}
    started = time.time()

    result = run_module("backup_verify", path=archive, test_restore=True, probe=probe)

    assert time.time() - started < 120
    assert result.get("failed") is True, result
    verdict = _only_verdict(result)
    assert verdict["checks"]["probe"] == "failed"
    assert verdict["probe"]["timed_out"] is True and verdict["probe"]["exit_code"] is None
    assert 3 <= verdict["probe"]["duration_seconds"] < 60
    assert verdict["reason"] == "probe timed out after 3 s and was killed; its output ends: waiting for ever"
    probes = docker_client.api.containers(all=True, filters={"label": "%s=%s" % (PROBE_LABEL, verdict["test_restore"]["scratch_volume"])})
    assert probes == []
    assert _scratch_volumes_of(docker_client, reference["volume"]) == []


# Alone: any module run on the engine reaps what a dead owner left (conftest, "alone").
@pytest.mark.alone
def test_scratch_volume_of_a_dead_owner_is_reaped_and_those_of_live_or_foreign_owners_are_not(run_module, docker_client, backup_dir, reference, this_host):
    from ansible_collections.persist.docker.plugins.module_utils._ownership import owner_token

    archive = _copy(reference, backup_dir)
    base = "persist-verify-%s-" % reference["volume"]
    owners = {
        # pid 999999 does not run here: its run is gone.
        "dead": "%s/999999/0" % this_host,
        # This test process runs: a run of it may still be using the volume.
        "live": owner_token(),
        # Only the other host can tell whether its run goes on.
        "foreign": "persist-test-other-%s/4242/1234" % secrets.token_hex(4),
    }
    names = dict((kind, base + "%s-%s" % (kind, secrets.token_hex(4))) for kind in owners)
    try:
        for kind, owner in owners.items():
            docker_client.volumes.create(name=names[kind], labels={SCRATCH_LABEL: "true", OWNER_LABEL: owner})

        result = run_module("backup_verify", path=archive, test_restore=True)

        assert not result.get("failed"), result
        assert names["dead"] in result["reaped_scratch_volumes"]
        assert names["live"] not in result["reaped_scratch_volumes"]
        assert names["foreign"] not in result["reaped_scratch_volumes"]
        with pytest.raises(NotFound):
            docker_client.volumes.get(names["dead"])
        assert sorted(_scratch_volumes_of(docker_client, reference["volume"])) == sorted([names["live"], names["foreign"]])
    finally:
        for name in names.values():
            try:
                docker_client.volumes.get(name).remove(force=True)
            except NotFound:
                pass


# Alone: any module run on the engine reaps what a dead owner left (conftest, "alone").
@pytest.mark.alone
def test_a_run_killed_during_its_probe_leaves_a_scratch_volume_and_probe_that_the_next_run_removes(
    docker_client, backup_dir, reference
):
    archive = _copy(reference, backup_dir)
    probe = {"command": ["sleep", "600"], "path": "/copy", "timeout": 900}
    process = adhoc_process.start("backup_verify", {"path": archive, "test_restore": True, "probe": probe})
    left = {}
    try:
        def probe_running():
            for found in docker_client.api.containers(filters={"label": PROBE_LABEL, "status": "running"}):
                if found["Labels"][PROBE_LABEL].startswith("persist-verify-%s-" % reference["volume"]):
                    left.update(probe=found["Id"], volume=found["Labels"][PROBE_LABEL])
                    return True
            return False

        assert adhoc_process.wait_until(probe_running, timeout=120, interval=0.2)
    finally:
        adhoc_process.kill_tree(process)
    try:
        assert _scratch_volumes_of(docker_client, reference["volume"]) == [left["volume"]]

        result = adhoc_process.run("backup_verify", {"path": archive, "test_restore": True})

        assert not result.get("failed"), result
        # The probe is reaped like any helper: by this run, or by a run of any module on this
        # host (another test session's) that came first; either way it is gone.
        assert docker_client.api.containers(all=True, filters={"id": left["probe"]}) == []
        assert result["reaped_scratch_volumes"] == [left["volume"]]
        assert _scratch_volumes_of(docker_client, reference["volume"]) == []
    finally:
        for container in docker_client.api.containers(all=True, filters={"id": left.get("probe", "none")}):
            docker_client.api.remove_container(container["Id"], force=True)
        for name in _scratch_volumes_of(docker_client, reference["volume"]):
            docker_client.volumes.get(name).remove(force=True)


def test_test_restore_of_a_bind_mounted_volume_never_writes_into_the_original_storage(run_module, engine, docker_client, backup_dir):
    storage = backup_dir / "bind-storage"
    storage.mkdir()
    write_file(storage / "precious", b"the original's data")
    name = engine.create_volume("bind", driver_opts={"type": "none", "o": "bind", "device": str(storage)})
    backed_up = run_module("volume_backup", volume=name, dest=str(backup_dir / "archives"))
    assert backed_up["changed"] is True, backed_up
    before = snapshot(storage, with_root_times=True, skip_reserved=False)

    result = run_module("backup_verify", path=backed_up["archive"]["path"], test_restore=True)

    assert not result.get("failed"), result
    verdict = _only_verdict(result)
    assert verdict["checks"]["test_restore"] == "passed"
    assert (verdict["test_restore"]["driver"], verdict["test_restore"]["driver_opts"]) == ("local", {})
    assert "device=%s mounts existing storage (a host directory)" % storage in verdict["warnings"][0]
    assert "so it used a plain local volume" in verdict["warnings"][0]
    assert any("mounts existing storage" in warning for warning in result["warnings"])
    assert snapshot(storage, with_root_times=True, skip_reserved=False) == before
    assert _scratch_volumes_of(docker_client, name) == []


def test_a_path_that_is_not_an_archive_or_does_not_exist_is_refused_with_what_to_give(run_module, backup_dir, reference):
    archive = _copy(reference, backup_dir)

    sidecar = run_module("backup_verify", path=archive + ".json", docker_host=NO_ENGINE)
    missing = run_module("backup_verify", path=str(backup_dir / "gone.tar.zst"), docker_host=NO_ENGINE)

    assert sidecar.get("failed") is True, sidecar
    assert sidecar["msg"].startswith("%s.json is not an archive of persist.docker.volume_backup" % archive)
    assert missing.get("failed") is True, missing
    assert missing["msg"].startswith("%s does not exist" % (backup_dir / "gone.tar.zst"))


def test_probe_without_test_restore_is_refused_before_anything_is_read(run_module, backup_dir, reference):
    archive = _copy(reference, backup_dir)

    result = run_module("backup_verify", path=archive, probe={"command": ["true"], "path": "/copy"}, docker_host=NO_ENGINE)

    assert result.get("failed") is True, result
    assert "set test_restore: true" in result["msg"]
    assert "verdicts" not in result


POSTGRES_IMAGE = "persist-test/postgres:15"
PGDATA = "/var/lib/postgresql/data"
# Started on the restored copy: the image's entrypoint runs postgres (as the postgres user)
# with no TCP listener; psql then asks over the unix socket.
POSTGRES_PROBE = """set -e
/usr/local/bin/entrypoint.sh postgres -c listen_addresses='' &
for attempt in $(seq 240); do
    pg_isready -q -h /var/run/postgresql -U postgres && break
    sleep 0.5
done
rows=$(psql -h /var/run/postgresql -U postgres -d shop -v ON_ERROR_STOP=1 -tAc 'select count(*) from orders')
echo "rows=$rows"
"""


def _wait_healthy(container, timeout=180):
    def healthy():
        container.reload()
        assert container.status == "running", container.logs().decode("utf-8", "replace")
        return container.attrs["State"]["Health"]["Status"] == "healthy"

    assert adhoc_process.wait_until(healthy, timeout=timeout, interval=0.5), container.logs().decode("utf-8", "replace")


def _psql(container, sql):
    exit_code, output = container.exec_run(["psql", "-U", "postgres", "-d", "shop", "-v", "ON_ERROR_STOP=1", "-tAc", sql], user="postgres")
    assert exit_code == 0, output
    return output.decode("utf-8").strip()


def test_test_restore_of_a_real_postgresql_volume_passes_a_probe_that_queries_the_restored_database(run_module, engine, docker_client, backup_dir):
    name = engine.create_volume("pgdata")
    server = docker_client.containers.run(
        POSTGRES_IMAGE,
        name="%s-server-%s" % (name, secrets.token_hex(3)),
        environment={"POSTGRES_PASSWORD": secrets.token_hex(8), "POSTGRES_DB": "shop"},
        volumes={name: {"bind": PGDATA, "mode": "rw"}},
        network_mode="none",
        detach=True,
    )
    try:
        _wait_healthy(server)
        _psql(server, "create table orders (id int primary key, item text)")
        _psql(server, "insert into orders select g, 'item ' || g from generate_series(1, 1234) g")
        assert _psql(server, "select count(*) from orders").endswith("1234")
        server.stop(timeout=60)
        assert server.wait(timeout=60)["StatusCode"] == 0
        backed_up = run_module("volume_backup", volume=name, dest=str(backup_dir))
        assert backed_up["changed"] is True, backed_up
    finally:
        server.remove(force=True)
    probe = {
        "image": POSTGRES_IMAGE,
        "path": PGDATA,
        "entrypoint": ["bash", "-c"],
        "command": [POSTGRES_PROBE],
        "timeout": 180,
    }

    result = run_module("backup_verify", path=str(backup_dir), volume=name, test_restore=True, probe=probe)

    assert not result.get("failed"), result
    verdict = _only_verdict(result)
    assert verdict["path"] == backed_up["archive"]["path"]
    assert verdict["checks"] == {
        "sha256": "passed", "tree_digest": "passed", "safety": "passed", "test_restore": "passed", "probe": "passed",
    }
    assert verdict["test_restore"]["tree_digest"] == backed_up["archive"]["tree_digest"]
    assert verdict["probe"]["exit_code"] == 0
    assert "rows=1234" in verdict["probe"]["output"], verdict["probe"]["output"]
    assert _scratch_volumes_of(docker_client, name) == []
