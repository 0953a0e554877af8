# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.backup_offsite (and backup_info / backup_verify with target) against a real
sshd on 127.0.0.1 (offsite_servers.SshServer): rsync over ssh, sha256sum on the server.

The local backups are real (volume_backup); backups at spread times are copies of one real
archive with edited sidecars (test_backup_prune.make_backup), complete by every rule.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import tempfile

import pytest

import adhoc_process
from offsite_servers import SshServer, names, prediction, real_backup, running, sha256_of, shared_backup, snapshot
from test_backup_prune import make_backup

SSH_CHECK = ["sha256 of the copy on the target (sha256sum there)"]


@pytest.fixture(scope="module")
def ssh_server():
    with running(SshServer()) as server:
        yield server


@pytest.fixture
def small_archive(run_module, module_engine, module_backup_dir):
    """A real archive of a few KiB."""
    return shared_backup(run_module, module_engine, module_backup_dir, "ssh-small")


@pytest.fixture
def large_archive(run_module, module_engine, module_backup_dir):
    """A real archive of about 160 MB, long enough in transit to be killed half way."""
    return shared_backup(run_module, module_engine, module_backup_dir, "ssh-large", megabytes=160)


def day(number, hour=3):
    return datetime.datetime(2026, 10, number, hour, tzinfo=datetime.timezone.utc)


def on_server(directory):
    """{name: sha256} of what the target directory holds, hidden files included."""
    return snapshot(directory) if os.path.isdir(str(directory)) else {}


def test_check_mode_predicts_the_copies_a_real_run_sends_each_checked_on_the_server_and_a_second_run_sends_nothing(
        run_module, engine, backup_dir, ssh_server, small_archive):
    first, second = engine.name("web"), engine.name("db")
    made = [make_backup(small_archive, backup_dir, first, day(n)) for n in (1, 2, 3)]
    made += [make_backup(small_archive, backup_dir, second, day(n, 4)) for n in (1, 2)]
    local = snapshot(backup_dir)
    target_dir = os.path.join(ssh_server.directory("send"), "web1")
    args = dict(path=str(backup_dir), select="missing", targets=[ssh_server.target(target_dir)])

    check = run_module("backup_offsite", check=True, diff=True, **args)

    assert not check.get("failed"), check
    assert check["changed"] is True
    report = check["targets"][0]
    assert names(report["sent"]) == sorted(made)
    assert all(item["reason"] == "not on the target" and item["verified"] is False for item in report["sent"])
    assert report["created_directory"] is True
    assert not os.path.exists(target_dir), "check mode created the target directory"

    real = run_module("backup_offsite", diff=True, **args)

    assert not real.get("failed"), real
    assert prediction(real) == prediction(check)
    assert real["diff"] == check["diff"]
    assert real["diff"][0]["before"] == {"archives": []} and real["diff"][0]["after"] == {"archives": sorted(made)}
    for item in real["targets"][0]["sent"]:
        assert item["verified"] is True and item["checks"] == SSH_CHECK, item
        assert item["transferred_bytes"] >= item["size"] and item["seconds"] > 0
    expected = dict((name, digest) for name, digest in local.items() if name.replace(".json", "") in made)
    assert on_server(target_dir) == expected, "the server holds exactly the archives and their sidecars, byte for byte"
    assert snapshot(backup_dir) == local, "the backup directory was changed"
    assert real["targets"][0]["target"] == "ssh://root@127.0.0.1:%d%s" % (ssh_server.port, target_dir)

    again_check = run_module("backup_offsite", check=True, **args)
    again = run_module("backup_offsite", **args)

    for result in (again_check, again):
        assert not result.get("failed") and result["changed"] is False, result
        assert result["targets"][0]["sent"] == [] and names(result["targets"][0]["present"]) == sorted(made)

    latest_dir = ssh_server.directory("latest")
    latest = run_module("backup_offsite", path=str(backup_dir), targets=[ssh_server.target(latest_dir)])
    assert names(latest["targets"][0]["sent"]) == sorted([made[2], made[4]]), "select latest sends the newest of each volume"


# A Unix socket's path holds at most 107 bytes; ssh adds 17 to ControlPath while it makes the
# socket. The control socket is TMPDIR/persist-offsite-<pid>-<8>/control: 41 more than TMPDIR
# with a 7-digit pid, 35 with a 1-digit one.
@pytest.mark.parametrize("length", [107 - 17 - 41, 107 - 17 - 35 + 1], ids=["socket-fits", "socket-too-long"])
def test_a_long_temporary_directory_sends_through_a_shared_connection_or_without_one(
        run_module, backup_dir, ssh_server, small_archive, monkeypatch, length):
    """ssh keeps the connection that the run's commands share in a socket below TMPDIR. With the
    longest TMPDIR that leaves room for it, the socket is made; with a longer one, where ssh
    would refuse the path, each command connects anew. Either way the copy arrives, checked."""
    base = tempfile.mkdtemp(prefix="pt-tmpdir-")
    try:
        temporary = os.path.join(base, "t" * (length - len(base) - 1))
        os.mkdir(temporary)
        assert len(temporary) == length
        monkeypatch.setenv("TMPDIR", temporary)
        target_dir = ssh_server.directory("tmpdir-%d" % length)
        name = make_backup(small_archive, backup_dir, "tmpdir", day(1))

        sent = run_module("backup_offsite", path=str(backup_dir), targets=[ssh_server.target(target_dir)])

        assert not sent.get("failed"), sent
        [item] = sent["targets"][0]["sent"]
        assert item["archive"] == name and item["verified"] is True and item["checks"] == SSH_CHECK, item
        assert on_server(target_dir) == snapshot(backup_dir)
        assert os.listdir(temporary) == [], "the run left its private directory"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_retention_on_the_target_deletes_exactly_what_the_gfs_rules_say_and_never_sends_what_it_would_delete(
        run_module, engine, backup_dir, ssh_server, small_archive):
    volume = engine.name("gfs")
    dailies = [make_backup(small_archive, backup_dir, volume, day(n)) for n in range(1, 21)]
    target_dir = ssh_server.directory("gfs")
    args = dict(path=str(backup_dir), select="missing", targets=[ssh_server.target(target_dir)])
    assert run_module("backup_offsite", **args)["totals"]["sent"] == 20
    policy = dict(keep_daily=2, keep_weekly=3)

    check = run_module("backup_offsite", check=True, diff=True, **dict(args, **policy))

    kept = {
        dailies[19]: ["newest", "daily 2026-10-20", "weekly 2026-W43"],
        dailies[18]: ["daily 2026-10-19"],
        dailies[17]: ["weekly 2026-W42"],
        dailies[10]: ["weekly 2026-W41"],
    }
    assert not check.get("failed"), check
    report = check["targets"][0]
    assert dict((item["archive"], item["reasons"]) for item in report["kept"]) == kept
    assert names(report["deleted"]) == sorted(set(dailies) - set(kept))
    assert all(item["reason"] == "kept by no rule of the policy (keep_daily=2, keep_weekly=3)" for item in report["deleted"])
    assert report["sent"] == [] and len(on_server(target_dir)) == 40, "check mode deleted something"
    assert check["diff"][0]["after"] == {"archives": sorted(kept)}

    real = run_module("backup_offsite", diff=True, **dict(args, **policy))

    assert not real.get("failed"), real
    assert prediction(real) == prediction(check)
    assert sorted(on_server(target_dir)) == sorted(list(kept) + [name + ".json" for name in kept])
    assert len(os.listdir(str(backup_dir))) == 40, "retention on the target deleted local backups"

    again = run_module("backup_offsite", **dict(args, **policy))

    assert not again.get("failed") and again["changed"] is False, again
    assert names(again["targets"][0]["skipped"]) == sorted(set(dailies) - set(kept)), "what retention deletes is not sent again"
    assert all(item["reason"] == "retention on the target would delete it at once" for item in again["targets"][0]["skipped"])


def test_info_lists_copies_on_the_target_and_verify_finds_a_copy_altered_there_which_the_next_full_run_repairs(
        run_module, engine, backup_dir, ssh_server, small_archive):
    volume = engine.name("alter")
    archive = real_backup(run_module, engine, backup_dir, "alter-src", megabytes=3)
    older = make_backup(small_archive, backup_dir, volume, day(5))
    target_dir = ssh_server.directory("alter")
    target = ssh_server.target(target_dir)
    assert run_module("backup_offsite", path=str(backup_dir), select="missing", targets=[target])["totals"]["sent"] == 2
    newest = os.path.basename(archive)
    source = newest.rsplit("-", 1)[0]
    # A transfer that never finished: an archive without its sidecar, newer than the rest.
    unfinished = "%s-20261201T000000Z.tar.zst" % source
    with open(os.path.join(target_dir, unfinished), "wb") as handle:
        handle.write(b"partial")

    info = run_module("backup_info", target=target)

    assert not info.get("failed"), info
    status = dict((os.path.basename(item["path"]), item["status"]) for item in info["backups"])
    assert status == {newest: "complete", older: "complete", unfinished: "incomplete"}
    assert info["latest"][source]["path"] == "ssh://root@127.0.0.1:%d%s/%s" % (ssh_server.port, target_dir, newest)
    assert info["latest"][source]["sha256"] == sha256_of(archive)
    assert info["target"] == "ssh://root@127.0.0.1:%d%s" % (ssh_server.port, target_dir)

    quick = run_module("backup_verify", target=target, volume=source)
    assert not quick.get("failed"), quick
    assert quick["verdicts"][0]["checks"]["remote"] == "passed" and quick["verdicts"][0]["checks"]["sha256"] == "passed"
    assert quick["verdicts"][0]["checks"]["tree_digest"] == "skipped"

    # Bit rot on the server: the same size, other bytes in the middle.
    copy = os.path.join(target_dir, newest)
    size = os.path.getsize(copy)
    with open(copy, "r+b") as handle:
        handle.seek(size // 2)
        handle.write(b"\0rot\0")

    for level in ("quick", "full"):
        failed = run_module("backup_verify", target=dict(target, verify=level), volume=source)
        assert failed.get("failed") is True, failed
        verdict = failed["verdicts"][0]
        assert verdict["status"] == "failed" and newest in failed["msg"]
        assert verdict["checks"]["sha256"] == "failed" if level == "full" else verdict["checks"]["remote"] == "failed"
        assert "sha256" in verdict["reason"] and sha256_of(archive) in verdict["reason"]

    repair = run_module("backup_offsite", path=str(backup_dir), volume=source, targets=[dict(target, verify="full")])

    assert not repair.get("failed"), repair
    sent = repair["targets"][0]["sent"]
    assert names(sent) == [newest] and sent[0]["reason"].startswith("the copy on the target failed a check: sha256 on the target is")
    assert sha256_of(copy) == sha256_of(archive)
    full = run_module("backup_verify", target=dict(target, verify="full"), volume=source)
    assert not full.get("failed"), full
    assert full["verdicts"][0]["checks"]["tree_digest"] == "passed" and full["verdicts"][0]["checks"]["safety"] == "passed"


def _left_by_dead_runs():
    """Private directories of backup_offsite runs (/tmp/persist-offsite-<pid>-*) whose process is gone."""
    return [entry for entry in os.listdir(tempfile.gettempdir())
            if entry.startswith("persist-offsite-") and not os.path.exists("/proc/%s" % entry.split("-")[2])]


def _partial_files(directory, name):
    return [entry for entry in os.listdir(directory) if entry.startswith(".persist-partial-" + name)]


# Alone: any off-host run reaps the private directories that dead runs left (conftest, "alone").
@pytest.mark.alone
def test_a_transfer_killed_half_way_leaves_only_a_partial_file_and_the_next_run_resumes_it(
        run_module, backup_dir, ssh_server, large_archive):
    target_dir = ssh_server.directory("kill")
    name = os.path.basename(large_archive)
    size = os.path.getsize(large_archive)
    local = sha256_of(large_archive)
    args = dict(path=os.path.dirname(large_archive), volume=name.rsplit("-", 1)[0], targets=[ssh_server.target(target_dir)])
    process = adhoc_process.start("backup_offsite", args)

    def arriving():
        sizes = [os.path.getsize(os.path.join(target_dir, entry)) for entry in _partial_files(target_dir, name)]
        return any(size > 20 * 1000 * 1000 for size in sizes)

    try:
        assert adhoc_process.wait_until(arriving, timeout=120, interval=0.01), "the transfer never started"
    finally:
        adhoc_process.kill_tree(process)
    # The server's rsync keeps what it received under the temporary name (--partial).
    assert adhoc_process.wait_until(lambda: os.path.exists(os.path.join(target_dir, ".persist-partial-" + name)), timeout=20)
    assert not os.path.exists(os.path.join(target_dir, name)) and not os.path.exists(os.path.join(target_dir, name + ".json"))
    kept = os.path.getsize(os.path.join(target_dir, ".persist-partial-" + name))
    assert 0 < kept < size
    assert sha256_of(large_archive) == local

    assert _left_by_dead_runs(), "the killed run had no private directory to leave (ssh control socket)"

    info = run_module("backup_info", target=ssh_server.target(target_dir))
    assert info["backups"] == [] and info["temporaries"] == ["ssh://root@127.0.0.1:%d%s/.persist-partial-%s" % (ssh_server.port, target_dir, name)]

    resumed = run_module("backup_offsite", **args)

    assert not resumed.get("failed"), resumed
    item = resumed["targets"][0]["sent"][0]
    assert item["resumed_from"] == kept
    assert item["transferred_bytes"] < size - kept // 2, "the resumed run sent the whole archive again"
    assert sha256_of(os.path.join(target_dir, name)) == local
    assert sorted(os.listdir(target_dir)) == sorted([name, name + ".json"])
    assert _left_by_dead_runs() == [], "the private directory of the killed run was not reaped"


@pytest.fixture
def small_target(ssh_server):
    """A 24 MiB tmpfs as the target directory, unmounted at the end."""
    mount_point = ssh_server.directory("full")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mount_point], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", mount_point], check=True)


def test_a_full_remote_disk_fails_that_archive_clearly_keeps_the_local_backup_and_the_next_run_completes_once_there_is_room(
        run_module, engine, backup_dir, ssh_server, small_archive, small_target):
    fits = make_backup(small_archive, backup_dir, engine.name("fits"), day(1))
    big = os.path.basename(real_backup(run_module, engine, backup_dir, "big", megabytes=40))
    local = snapshot(backup_dir)
    args = dict(path=str(backup_dir), select="missing", targets=[ssh_server.target(small_target)])

    result = run_module("backup_offsite", **args)

    assert result.get("failed") is True, result
    assert [error["archive"] for error in result["errors"]] == [big]
    assert "the target's file system is full" in result["msg"] and big in result["msg"] and "No space left on device" in result["msg"]
    assert names(result["targets"][0]["sent"]) == [fits], "the archive that fits was sent all the same"
    assert snapshot(backup_dir) == local
    there = os.listdir(small_target)
    assert big not in there and big + ".json" not in there, "a final name for a copy that did not arrive"
    assert not [entry for entry in there if entry.startswith(".persist-partial-")], "the partial copy was left to fill the disk"
    assert "Its partial copy was removed" in result["msg"]

    subprocess.run(["mount", "-o", "remount,size=96m", small_target], check=True)
    again = run_module("backup_offsite", **args)

    assert not again.get("failed"), again
    assert names(again["targets"][0]["sent"]) == [big] and names(again["targets"][0]["present"]) == [fits]
    assert sha256_of(os.path.join(small_target, big)) == local[big]


def test_a_wrong_key_or_host_key_fails_clearly_sends_nothing_and_the_next_run_with_the_right_ones_sends(
        run_module, engine, backup_dir, ssh_server, small_archive):
    made = make_backup(small_archive, backup_dir, engine.name("creds"), day(1))
    target_dir = ssh_server.directory("creds")
    with open(ssh_server.other_key + ".pub") as handle:
        other_host_key = handle.read()

    wrong_key = run_module("backup_offsite", path=str(backup_dir), targets=[ssh_server.target(target_dir, private_key=ssh_server.other_key)])
    wrong_host = run_module("backup_offsite", path=str(backup_dir), targets=[ssh_server.target(target_dir, host_key=other_host_key)])
    unknown_host = run_module("backup_offsite", path=str(backup_dir), targets=[ssh_server.target(target_dir, host_key=None, known_hosts=os.devnull)])

    assert wrong_key.get("failed") is True, wrong_key
    assert "the server refused the login" in wrong_key["msg"] and "Permission denied (publickey" in wrong_key["msg"]
    for result in (wrong_host, unknown_host):
        assert result.get("failed") is True, result
        assert "host key" in result["msg"] and "checking is never turned off" in result["msg"]
    for result in (wrong_key, wrong_host, unknown_host):
        assert result["errors"][0]["target"] == "ssh://root@127.0.0.1:%d%s" % (ssh_server.port, target_dir)
        assert result["targets"][0]["sent"] == []
    assert os.listdir(target_dir) == []

    right = run_module("backup_offsite", path=str(backup_dir), targets=[ssh_server.target(target_dir)])
    assert not right.get("failed") and names(right["targets"][0]["sent"]) == [made], right
