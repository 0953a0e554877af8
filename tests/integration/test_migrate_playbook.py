# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migrate playbook moves a PostgreSQL of the database role from one host to another.

The two hosts of the inventory are this machine with two engines: host-a uses the engine of
the other tests, host-b a second dockerd of the test's own (second_engine), given the images
as an offline site gets them. The database moves to host-b by volume_copy across the engines,
then back to host-a by archive through the controller; each time it starts on the new host
with every row, and the old host keeps its stopped container and its volume as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from playbooks import failures, run_playbook
from second_engine import load_images
from test_database_images import free_port

PASSWORD = "Migrate pass'word $1"
ROWS = "500:125250"
ROWS_AND_ONE = "501:125751"


def _psql(client, container, sql, port):
    code, output = client.containers.get(container).exec_run(
        ["psql", "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-tA", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
         "-d", "appdb", "-c", sql],
        environment={"PGPASSWORD": PASSWORD},
    )
    assert code == 0, output.decode()
    return output.decode().strip()


@pytest.fixture
def two_hosts(engine, second_engine, docker_client, tmp_path):
    """host-a (this engine) and host-b (a second engine with the database's image), and the
    database role's variables for a PostgreSQL named for this test."""
    other, other_client = second_engine
    load_images([other], "postgres:15")
    port = free_port()
    database = engine.container_name("migrate-db")
    volume = engine.name("migrate-db-data")
    inventory = tmp_path / "inventory.json"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(json.dumps({"all": {"hosts": {
        "host-a": local,
        "host-b": dict(local, persist_docker_host=other.url),
    }}}))
    database_vars = {
        "database_engine": "postgres",
        "database_password": PASSWORD,
        "database_dbname": "appdb",
        "database_network_mode": "host",
        "database_port": port,
        "database_volume": volume,
        "database_healthcheck": {"interval": "1s"},
        "database_wait_delay": 1,
    }
    return dict(inventory=inventory, other=other, other_client=other_client, port=port, database=database,
                volume=volume, database_vars=database_vars)


def _deploy_on_host_a(hosts, tmp_path):
    playbook = tmp_path / "deploy.yml"
    playbook.write_text("- hosts: host-a\n  gather_facts: false\n  roles: [persist.docker.database]\n")
    run = subprocess.run(
        [sys.executable, "-m", "ansible.cli.playbook", str(playbook), "-i", str(hosts["inventory"]),
         "-e", json.dumps(dict(hosts["database_vars"], database_name=hosts["database"]))],
        env=dict(os.environ, ANSIBLE_NOCOLOR="1"), capture_output=True, text=True, timeout=600, check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def _migrate(hosts, source, dest, **more):
    extra_vars = dict(
        persist_source_host=source, persist_dest_host=dest, persist_volume=hosts["volume"],
        persist_database=hosts["database"], persist_database_vars=hosts["database_vars"], **more)
    return run_playbook("persist.docker.migrate", hosts["inventory"], extra_vars)


def test_migrate_moves_a_postgres_volume_to_another_engine_and_back_with_every_row(
        two_hosts, docker_client, run_module, tmp_path, monkeypatch):
    hosts = two_hosts
    other_client, port, database, volume = hosts["other_client"], hosts["port"], hosts["database"], hosts["volume"]
    _deploy_on_host_a(hosts, tmp_path)
    _psql(docker_client, database, "CREATE TABLE orders (id integer PRIMARY KEY, note text NOT NULL); "
          "INSERT INTO orders SELECT n, 'order ' || n FROM generate_series(1, 500) AS n", port)
    # The runs' temporary directory is this test's: what is left there is theirs.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))

    # host-a -> host-b, by volume_copy straight into the other engine.
    rc, output = _migrate(hosts, "host-a", "host-b", persist_dest_docker_host=hosts["other"].url)

    assert rc == 0, failures(output)
    moved = output["global_custom_stats"]["persist_migrate"]
    assert moved["status"] == "migrated" and moved["method"] == "copy" and moved["database"] == database
    assert moved["tree_digest"]["source"] == moved["tree_digest"]["dest"]
    assert moved["downtime_seconds"] > 0 and moved["stopped_on_source"] == [database]
    assert other_client.containers.get(database).status == "running"
    assert _psql(other_client, database, "SELECT count(*) || ':' || sum(id) FROM orders", port) == ROWS
    assert docker_client.containers.get(database).status == "exited", "the old host's database must stay stopped"
    left = run_module("volume_info", name=volume, size=True)
    assert (left["volume"]["usage"]["entries"], left["volume"]["usage"]["bytes"]) == (moved["entries"], moved["bytes"])
    printed = [line for play in output["plays"] for task in play["tasks"] for result in task["hosts"].values()
               if isinstance(result.get("msg"), list) for line in result["msg"]]
    assert any(line.startswith("The database %s answers on host-b; it was down for " % database) for line in printed), printed

    # Back to host-a, by archive through the controller: the old copy there holds data, so
    # the migration refuses until persist_confirm, and nothing stops meanwhile.
    _psql(other_client, database, "INSERT INTO orders VALUES (501, 'written on host-b')", port)

    rc, output = _migrate(hosts, "host-b", "host-a", persist_method="archive")

    assert rc != 0
    assert any("Volume %s on host-a already holds" % volume in message and "persist_confirm=true" in message
               for message in failures(output)), failures(output)
    assert other_client.containers.get(database).status == "running"

    rc, output = _migrate(hosts, "host-b", "host-a", persist_method="archive", persist_confirm=True)

    assert rc == 0, failures(output)
    back = output["global_custom_stats"]["persist_migrate"]
    assert back["status"] == "migrated" and back["method"] == "archive"
    assert back["tree_digest"]["source"] == back["tree_digest"]["dest"]
    assert docker_client.containers.get(database).status == "running"
    assert _psql(docker_client, database, "SELECT count(*) || ':' || sum(id) FROM orders", port) == ROWS_AND_ONE
    assert other_client.containers.get(database).status == "exited"
    assert other_client.volumes.get(volume).name == volume, "host-b keeps its volume until the operator removes it"
    carried = [result["path"] for play in output["plays"] for task in play["tasks"]
               if task["task"]["name"] == "Make a temporary directory on the controller" for result in task["hosts"].values()]
    assert carried and all(path.startswith(str(temporary) + "/persist-migrate.") for path in carried), carried
    assert list(temporary.glob("persist-migrate.*")) == [], "the archive carried through the controller was not removed"
