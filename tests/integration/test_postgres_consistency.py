# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real PostgreSQL under continuous writes: refused by default, consistent with stop,
and still running after a backup that fails.

The load is pgbench's TPC-B-like transaction: every transaction moves an amount between an
account, a teller and a branch and records it in pgbench_history, all or nothing. A restored
copy is consistent when PostgreSQL starts on it, pg_amcheck finds no corruption, and the four
sums agree. The server runs with no network; clients talk to it over its unix socket.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time

import pytest

PG_IMAGE = "persist-test/postgres:15"
PGDATA = "/var/lib/postgresql/data"
ROUNDS = 10
SUMS = (
    "select (select sum(abalance) from pgbench_accounts), (select sum(tbalance) from pgbench_tellers), "
    "(select sum(bbalance) from pgbench_branches), (select coalesce(sum(delta), 0) from pgbench_history), "
    "(select count(*) from pgbench_history)"
)


def _sql(container, statement):
    code, output = container.exec_run(["psql", "-U", "postgres", "-d", "postgres", "-At", "-F", " ", "-c", statement], user="postgres")
    assert code == 0, output.decode()
    return output.decode().strip()


def _wait_ready(container, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        assert container.status == "running", container.logs()[-2000:].decode()
        if container.exec_run(["/usr/local/bin/healthcheck.sh"])[0] == 0:
            return
        time.sleep(0.3)
    raise AssertionError("PostgreSQL did not answer within %d s: %s" % (timeout, container.logs()[-2000:].decode()))


def _postgres(engine, volume, suffix):
    container = engine.container(
        suffix, volume, state="running", mount_path=PGDATA, image=PG_IMAGE, command=["postgres"],
        environment={"POSTGRES_PASSWORD": "not-a-secret"},
    )
    _wait_ready(container)
    return container


def _start_load(container):
    """pgbench in the server's own container, until the container stops."""
    container.exec_run(["sh", "-c", "pgbench -n -c 2 -T 3600 -U postgres postgres >/dev/null 2>&1"], user="postgres", detach=True)
    # Some transactions are in flight before anything else happens.
    before = int(_sql(container, "select count(*) from pgbench_history"))
    deadline = time.monotonic() + 30
    while int(_sql(container, "select count(*) from pgbench_history")) < before + 20:
        assert time.monotonic() < deadline, "pgbench wrote nothing"
        time.sleep(0.1)


@pytest.fixture
def busy_postgres(engine):
    volume = engine.create_volume("pgdata")
    server = _postgres(engine, volume, "pg")
    code, output = server.exec_run(["pgbench", "-i", "-s", "2", "-U", "postgres", "postgres"], user="postgres")
    assert code == 0, output.decode()
    _start_load(server)
    return volume, server


def test_default_policy_refuses_a_busy_postgres_and_leaves_it_serving(run_module, busy_postgres, backup_dir):
    volume, server = busy_postgres
    started = server.attrs["State"]["StartedAt"]

    result = run_module("volume_backup", volume=volume, dest=str(backup_dir))

    assert result.get("failed") is True, result
    assert server.name in result["msg"] and "containers: stop" in result["msg"]
    assert os.listdir(backup_dir) == []
    server.reload()
    assert server.attrs["State"]["StartedAt"] == started
    _wait_ready(server)


def test_stop_gives_backups_that_restore_into_a_consistent_postgres_ten_times_running(run_module, engine, busy_postgres, backup_dir):
    volume, server = busy_postgres

    for number in range(ROUNDS):
        result = run_module("volume_backup", volume=volume, dest=str(backup_dir), containers="stop", if_changed=False)
        assert not result.get("failed"), (number, result)
        [entry] = result["consistency"]["containers"]
        assert (entry["name"], entry["action"], entry["performed"]) == (server.name, "stop", True), number
        assert entry["killed_after_stop_timeout"] is False, number
        # The service is back after every backup, and the load goes on.
        _wait_ready(server)
        _start_load(server)

        copy = engine.create_volume("restored-%d" % number)
        restored = run_module("volume_restore", volume=copy, src=result["archive"]["path"])
        assert not restored.get("failed") and restored["changed"] is True, (number, restored)
        check = _postgres(engine, copy, "check-%d" % number)
        code, output = check.exec_run(
            ["pg_amcheck", "-U", "postgres", "--install-missing", "--heapallindexed", "--all"], user="postgres"
        )
        assert code == 0, (number, output.decode())
        accounts, tellers, branches, history, transactions = _sql(check, SUMS).split()
        assert accounts == tellers == branches == history, (number, accounts, tellers, branches, history)
        assert int(transactions) > 0, number
        check.remove(force=True)
        engine.remove_volume(copy)


@pytest.fixture
def small_filesystem():
    """A 6 MiB tmpfs: too small for the database, big enough for one small backup."""
    directory = tempfile.mkdtemp(prefix="pt-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", directory], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", directory], check=True)
        os.rmdir(directory)


def _digests(directory):
    found = {}
    for entry in sorted(os.listdir(directory)):
        with open(os.path.join(directory, entry), "rb") as handle:
            found[entry] = hashlib.sha256(handle.read()).hexdigest()
    return found


def test_a_full_destination_fails_clearly_keeps_earlier_archives_and_postgres_runs_again(
    run_module, engine, busy_postgres, small_filesystem
):
    volume, server = busy_postgres
    small = engine.create_volume("small")
    engine.fill(small)
    earlier = run_module("volume_backup", volume=small, dest=small_filesystem)
    assert earlier["changed"] is True, earlier
    before = _digests(small_filesystem)

    result = run_module("volume_backup", volume=volume, dest=small_filesystem, containers="stop", compression="none")

    assert result.get("failed") is True, result
    assert "is full (no space left on device)" in result["msg"] and volume in result["msg"]
    assert "nothing was kept under a final name" in result["msg"]
    # Earlier archives are untouched and nothing else is left, not even a temporary file.
    assert _digests(small_filesystem) == before
    [entry] = result["consistency"]["containers"]
    assert entry["action"] == "stop" and entry["downtime_seconds"] > 0
    _wait_ready(server)
    assert int(_sql(server, "select count(*) from pgbench_accounts")) == 200000
