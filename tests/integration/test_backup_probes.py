# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup role's database probes (roles/backup/vars/main.yml, __backup_probes), run by
backup_verify on test-restored copies of real PostgreSQL, MariaDB and Redis volumes: each
server starts on its copy with no network and no password and answers; on a copy that holds
no database, the probe fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from test_postgres_consistency import _wait_ready

PROBES = yaml.safe_load((Path(__file__).resolve().parents[2] / "roles/backup/vars/main.yml").read_text())["__backup_probes"]

# How each server runs on its volume, as the database role runs it, and how a client writes to it.
SERVERS = {
    "postgres": dict(
        image="postgres:15", path="/var/lib/postgresql/data", command=["postgres"],
        environment={"POSTGRES_PASSWORD": "not-a-secret", "POSTGRES_USER": "appadmin"},
        write=["psql", "-U", "appadmin", "-d", "postgres", "-c", "CREATE DATABASE shop"], user="postgres", client_env={},
    ),
    "mariadb": dict(
        image="mariadb:10.11", path="/var/lib/mysql", command=["mariadbd"],
        environment={"MARIADB_ROOT_PASSWORD": "not-a-secret"},
        write=["mariadb", "-uroot", "-e", "CREATE DATABASE shop"], user=None, client_env={"MYSQL_PWD": "not-a-secret"},
    ),
    "redis": dict(
        image="redis:7.0", path="/data", command=["redis-server", "--appendonly", "yes"],
        environment={}, write=["redis-cli", "SET", "order:1", "shipped"], user=None, client_env={},
    ),
}


def _test_restore(run_module, backup_dir, volume, engine_name):
    """backup_verify's test restore of the volume's latest backup, with the probe the role gives
    it for a database of engine_name (test_restore.yml); returns (result, the verdict)."""
    server, probe = SERVERS[engine_name], PROBES[engine_name]
    verified = run_module(
        "backup_verify", path=str(backup_dir), volume=volume, test_restore=True,
        probe=dict(image=server["image"], path=server["path"], user=probe["user"], entrypoint=["sh", "-c"],
                   command=[probe["script"], server["path"]], timeout=180),
    )
    return verified, verified["verdicts"][0]


@pytest.mark.parametrize("engine_name", sorted(SERVERS))
def test_probe_starts_the_database_on_its_restored_copy_and_gets_an_answer(run_module, engine, backup_dir, engine_name):
    server = SERVERS[engine_name]
    volume = engine.create_volume("probe-%s" % engine_name)
    container = engine.container(
        "probe-%s" % engine_name, volume, state="running", mount_path=server["path"], image=server["image"],
        command=server["command"], environment=server["environment"],
    )
    _wait_ready(container)
    code, output = container.exec_run(server["write"], user=server["user"], environment=server["client_env"])
    assert code == 0, output.decode()
    backed_up = run_module("volume_backup", volume=volume, dest=str(backup_dir), containers="stop")
    assert backed_up["changed"], backed_up

    verified, verdict = _test_restore(run_module, backup_dir, volume, engine_name)

    assert not verified.get("failed"), verified
    assert verdict["checks"]["probe"] == "passed", verdict
    assert verdict["probe"]["exit_code"] == 0
    assert "persist-probe-" in verdict["probe"]["output"], verdict["probe"]["output"]


# Data the server cannot load: a tree of other files, or for Redis (which starts empty on a
# directory without its files) an append-only file that is not one.
NOT_A_DATABASE = {
    "postgres": "mkdir /data/sub && echo hello > /data/sub/greeting.txt",
    "mariadb": "mkdir /data/sub && echo hello > /data/sub/greeting.txt",
    "redis": "mkdir /data/appendonlydir && echo 'file appendonly.aof.1.base.rdb seq 1 type b' "
             "> /data/appendonlydir/appendonly.aof.manifest && echo garbage > /data/appendonlydir/appendonly.aof.1.base.rdb",
}


@pytest.mark.parametrize("engine_name", sorted(SERVERS))
def test_probe_fails_on_a_copy_whose_data_the_server_cannot_load(run_module, engine, backup_dir, engine_name):
    volume = engine.create_volume("no-db-%s" % engine_name)
    engine.run(volume, NOT_A_DATABASE[engine_name])
    run_module("volume_backup", volume=volume, dest=str(backup_dir))

    verified, verdict = _test_restore(run_module, backup_dir, volume, engine_name)

    assert verified.get("failed") is True
    assert verdict["checks"]["test_restore"] == "passed" and verdict["checks"]["probe"] == "failed", verdict
    assert verdict["probe"]["exit_code"] not in (0, None), verdict["probe"]
