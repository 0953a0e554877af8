# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database images of tests/images (PostgreSQL 15, MariaDB 10.11, Redis 7.0) are real servers.

Each test starts a server on a fresh named volume (host network, a port picked free at test
time, never a default port), writes data with the database's own client through ``docker exec``,
replaces the container by a new one on the same volume and reads the data back. These images
stand in for the official ones here (``postgres:15``, ``mariadb:10.11``, ``redis:7.0``), so the
tests also check the parts of the official interface that the database role relies on.
"""

from __future__ import annotations

import errno
import secrets
import socket
import time

import pytest
from docker.errors import ImageNotFound

POSTGRES_IMAGE = "persist-test/postgres:15"
MARIADB_IMAGE = "persist-test/mariadb:10.11"
REDIS_IMAGE = "persist-test/redis:7.0"
# The official names each local build carries (scripts/lib.sh, ensure_images).
OFFICIAL_NAMES = {
    POSTGRES_IMAGE: ("postgres:15", "postgres:15-bookworm"),
    MARIADB_IMAGE: ("mariadb:10.11", "mariadb:10"),
    REDIS_IMAGE: ("redis:7.0", "redis:7"),
}
PGDATA = "/var/lib/postgresql/data"
# Servers start in a few seconds; the machine is shared and may be slow.
HEALTHY_WITHIN = 180
STOP_WITHIN = 60
# The uid/gid the images give their server's user (fixed so volumes keep their owner).
SERVER_UID = 999


def free_port():
    """A TCP port that nothing on this host listens on now, on any address, IPv4 or IPv6.

    Other test sessions run at the same time, so default ports (5432, 3306, 6379) are never used.
    """
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("0.0.0.0", 0))
            port = probe.getsockname()[1]
            if _ipv6_port_free(port):
                return port
    raise AssertionError("found no free TCP port in 50 attempts")


def _ipv6_port_free(port):
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            probe.bind(("::", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


@pytest.fixture(scope="module", autouse=True)
def images_built(docker_client):
    """The three images must exist: scripts/test builds them (ensure_images) before the tests."""
    for image in OFFICIAL_NAMES:
        try:
            docker_client.images.get(image)
        except ImageNotFound:
            pytest.fail("image %s is missing: run `source scripts/lib.sh && ensure_images` first" % image)


def start_server(engine, suffix, image, mounts, command=None, environment=None):
    """A server container in the host's network; ``mounts`` maps volume names to paths."""
    return engine.client.containers.run(
        image,
        command,
        name=engine.container_name(suffix),
        detach=True,
        environment=environment or {},
        volumes={volume: {"bind": path, "mode": "rw"} for volume, path in mounts.items()},
        network_mode="host",
    )


def logs_of(container):
    return container.logs().decode("utf-8", "replace")


def wait_until_healthy(container, timeout=HEALTHY_WITHIN):
    """Wait for the image's HEALTHCHECK to pass; fail with the container's log if it does not."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        state = container.attrs["State"]
        health = state.get("Health") or {}
        if health.get("Status") == "healthy":
            return
        if state["Status"] in ("exited", "dead"):
            pytest.fail(
                "%s exited (code %s) before it was healthy; its log:\n%s" % (container.name, state["ExitCode"], logs_of(container)[-4000:])
            )
        if time.monotonic() > deadline:
            checks = [entry.get("Output", "") for entry in health.get("Log") or []][-3:]
            pytest.fail(
                "%s was not healthy within %d s (health %s; last checks %r); its log:\n%s"
                % (container.name, timeout, health.get("Status"), checks, logs_of(container)[-4000:])
            )
        time.sleep(1)


def run_in(container, command, environment=None, expect_exit=0):
    """``docker exec`` ``command`` in ``container``; assert its exit code, return its output."""
    result = container.exec_run(command, environment=environment)
    output = result.output.decode("utf-8", "replace")
    if expect_exit is not None:
        assert result.exit_code == expect_exit, "%r in %s exited %s, not %s:\n%s" % (command, container.name, result.exit_code, expect_exit, output)
    return output


def stop_cleanly(container):
    """``docker stop``; the server must exit with status 0."""
    container.stop(timeout=STOP_WITHIN)
    container.reload()
    state = container.attrs["State"]
    assert state["Status"] == "exited"
    assert state["ExitCode"] == 0, "%s exited %s on docker stop:\n%s" % (container.name, state["ExitCode"], logs_of(container)[-4000:])


def run_once(engine, suffix, image, mounts, command=None, environment=None):
    """Run a one-off container of ``image`` without network; return (exit code, output)."""
    container = engine.client.containers.run(
        image,
        command,
        name=engine.container_name(suffix),
        detach=True,
        environment=environment or {},
        volumes={volume: {"bind": path, "mode": "rw"} for volume, path in mounts.items()},
        network_mode="none",
    )
    exit_code = container.wait(timeout=HEALTHY_WITHIN)["StatusCode"]
    output = logs_of(container)
    container.remove()
    return exit_code, output


def test_each_image_carries_its_official_names_and_mysql_is_not_faked(docker_client):
    for image, names in OFFICIAL_NAMES.items():
        image_id = docker_client.images.get(image).id
        for name in names:
            assert docker_client.images.get(name).id == image_id, "%s does not point at %s" % (name, image)
    mariadb_id = docker_client.images.get(MARIADB_IMAGE).id
    for name in ("mysql:8.0", "mysql:8", "mysql:latest"):
        try:
            assert docker_client.images.get(name).id != mariadb_id, "%s is MariaDB in disguise" % name
        except ImageNotFound:
            pass


def test_postgres_refuses_to_initialise_without_a_password(engine):
    volume = engine.create_volume("pg-nopass")
    exit_code, output = run_once(engine, "pg-nopass", POSTGRES_IMAGE, {volume: PGDATA})
    assert exit_code == 1
    assert "POSTGRES_PASSWORD is not set" in output and "POSTGRES_HOST_AUTH_METHOD=trust" in output
    # Nothing was initialised: the volume is still empty.
    assert engine.run(volume, "ls -A /data", read_only=True) == ""


def test_postgres_data_survives_a_new_container_clean_stop_and_amcheck(engine):
    volume = engine.create_volume("pg-data")
    scripts = engine.create_volume("pg-initdb")
    # An init script of each kind; they must run once, on first start, in POSTGRES_DB.
    engine.run(
        scripts,
        "echo 'CREATE TABLE seeded (note text);' > /data/10-schema.sql && cat > /data/20-seed.sh <<'EOF'\n"
        'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "INSERT INTO seeded VALUES (\'from init.d\')"\n'
        "EOF\n",
    )
    password = "pw-%s'\"x" % secrets.token_hex(4)
    port = free_port()
    environment = {"POSTGRES_PASSWORD": password, "POSTGRES_USER": "owner", "POSTGRES_DB": "app", "PGPORT": str(port)}
    first = start_server(engine, "pg-first", POSTGRES_IMAGE, {volume: PGDATA, scripts: "/docker-entrypoint-initdb.d"}, environment=environment)
    wait_until_healthy(first)
    tcp = ["psql", "-X", "-w", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U", "owner", "-d", "app"]
    with_password = {"PGPASSWORD": password}

    # Over TCP the password is required, and accepted.
    refused = run_in(first, tcp + ["-c", "SELECT 1"], expect_exit=2)
    assert "password" in refused
    run_in(
        first,
        tcp + ["-c", "CREATE TABLE numbers AS SELECT n, md5(n::text) AS digest FROM generate_series(1, 20000) AS n; CREATE INDEX ON numbers (digest);"],
        environment=with_password,
    )
    expected = run_in(first, tcp + ["-Atc", "SELECT count(*), sum(n), max(digest) FROM numbers"], environment=with_password)
    # The amcheck extension is there and works (pg_amcheck below relies on it).
    run_in(first, tcp + ["-c", "CREATE EXTENSION amcheck; SELECT bt_index_check('numbers_digest_idx', true);"], environment=with_password)
    assert expected.strip().startswith("20000|200010000|")
    assert run_in(first, tcp + ["-Atc", "SELECT note FROM seeded"], environment=with_password).strip() == "from init.d"
    assert run_in(first, tcp + ["-Atc", "SHOW server_encoding"], environment=with_password).strip() == "UTF8"

    stop_cleanly(first)
    assert "database system is shut down" in logs_of(first)
    exit_code, control = run_once(engine, "pg-control", POSTGRES_IMAGE, {volume: PGDATA}, ["pg_controldata"])
    assert exit_code == 0, control
    assert "Database cluster state:               shut down\n" in control
    first.remove()

    # No password now: the entrypoint must not initialise an existing cluster again. The port
    # comes from an argument to postgres this time.
    port = free_port()
    second = start_server(engine, "pg-second", POSTGRES_IMAGE, {volume: PGDATA}, command=["-c", "port=%d" % port])
    wait_until_healthy(second)
    log = logs_of(second)
    assert "database system was shut down at" in log
    for sign_of_a_crash in ("not properly shut down", "automatic recovery in progress", "was interrupted"):
        assert sign_of_a_crash not in log
    assert "initialising" not in log

    tcp[tcp.index("-p") + 1] = str(port)
    assert run_in(second, tcp + ["-Atc", "SELECT count(*), sum(n), max(digest) FROM numbers"], environment=with_password) == expected
    assert run_in(second, tcp + ["-Atc", "SELECT count(*) FROM seeded"], environment=with_password).strip() == "1"
    checked = run_in(second, ["pg_amcheck", "-h", "/var/run/postgresql", "-p", str(port), "-U", "owner", "--all", "--install-missing", "--heapallindexed"])
    assert "corrupt" not in checked.lower()
    assert run_in(second, tcp + ["-Atc", "SELECT extname FROM pg_extension WHERE extname = 'amcheck'"], environment=with_password).strip() == "amcheck"
    owner = engine.run(volume, "stat -c '%u:%g %a' /data /data/PG_VERSION", read_only=True).split()
    assert owner == ["%d:%d" % (SERVER_UID, SERVER_UID), "700", "%d:%d" % (SERVER_UID, SERVER_UID), "600"]


def test_mariadb_refuses_to_initialise_without_a_root_password_choice(engine):
    volume = engine.create_volume("maria-nopass")
    exit_code, output = run_once(engine, "maria-nopass", MARIADB_IMAGE, {volume: "/var/lib/mysql"}, environment={"MARIADB_DATABASE": "shop"})
    assert exit_code == 1
    assert "no root password is given" in output and "MARIADB_ROOT_PASSWORD" in output
    assert engine.run(volume, "ls -A /data", read_only=True) == ""


def test_mariadb_data_survives_a_new_container_and_mysql_variables_work(engine):
    volume = engine.create_volume("maria-data")
    root_password = "root-%s'\\x" % secrets.token_hex(4)
    user_password = "clerk-%s" % secrets.token_hex(4)
    # Only the MYSQL_* spellings: the entrypoint must honour them as the official image does.
    environment = {
        "MYSQL_ROOT_PASSWORD": root_password,
        "MYSQL_DATABASE": "shop_db",
        "MYSQL_USER": "clerk",
        "MYSQL_PASSWORD": user_password,
    }
    port = free_port()
    first = start_server(engine, "maria-first", MARIADB_IMAGE, {volume: "/var/lib/mysql"}, command=["--port=%d" % port], environment=environment)
    wait_until_healthy(first)

    def client(user, password, port, *sql):
        return ["mariadb", "--protocol=tcp", "-h", "127.0.0.1", "-P", str(port), "-u", user, "-p" + password, "--batch", "--skip-column-names"] + list(sql)

    clerk_sql = client("clerk", user_password, port, "shop_db", "-e")
    run_in(
        first,
        clerk_sql
        + [
            "CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(40)) ENGINE=InnoDB;"
            "INSERT INTO orders VALUES (1, 'ledger'), (2, 'stamp'), (3, 'ink');"
        ],
    )
    expected = run_in(first, clerk_sql + ["SELECT id, item FROM orders ORDER BY id"])
    assert expected == "1\tledger\n2\tstamp\n3\tink\n"
    # Root has the password over TCP (root@'%'), and a wrong password is refused.
    assert run_in(first, client("root", root_password, port, "-e", "SELECT CURRENT_USER()")).strip() == "root@%"
    refused = run_in(first, client("root", "wrong", port, "-e", "SELECT 1"), expect_exit=1)
    assert "Access denied" in refused
    # The clerk sees its own database only.
    assert run_in(first, clerk_sql + ["SHOW DATABASES"]).split() == ["information_schema", "shop_db"]

    stop_cleanly(first)
    assert "Shutdown complete" in logs_of(first)
    first.remove()

    # No variables now: the entrypoint must not initialise the existing data again.
    port = free_port()
    second = start_server(engine, "maria-second", MARIADB_IMAGE, {volume: "/var/lib/mysql"}, command=["--port=%d" % port])
    wait_until_healthy(second)
    log = logs_of(second)
    assert "crash recovery" not in log.lower()
    assert "initialising" not in log
    assert run_in(second, client("clerk", user_password, port, "shop_db", "-e", "SELECT id, item FROM orders ORDER BY id")) == expected
    check = run_in(second, ["mariadb-check", "-uroot", "-p" + root_password, "--check", "shop_db"])
    assert check.split() == ["shop_db.orders", "OK"]
    owner = engine.run(volume, "stat -c '%u:%g' /data /data/shop_db/orders.ibd", read_only=True).split()
    assert owner == ["%d:%d" % (SERVER_UID, SERVER_UID)] * 2


def test_redis_data_survives_a_new_container_and_data_is_given_to_redis(engine):
    volume = engine.create_volume("redis-data")
    # A file that root left on the volume: the entrypoint hands /data to the redis user.
    engine.run(volume, "echo left-by-root > /data/note.txt && chown 0:0 /data /data/note.txt")
    port = free_port()
    first = start_server(engine, "redis-first", REDIS_IMAGE, {volume: "/data"}, command=["redis-server", "--port", str(port), "--appendonly", "yes"])
    wait_until_healthy(first)
    cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
    assert run_in(first, cli + ["SET", "greeting", "hello from redis"]).strip() == "OK"
    assert run_in(first, cli + ["RPUSH", "queue", "a", "b", "c"]).strip() == "3"
    assert run_in(first, cli + ["CONFIG", "GET", "appendonly"]).split() == ["appendonly", "yes"]
    assert run_in(first, cli + ["CONFIG", "GET", "dir"]).split() == ["dir", "/data"]
    # The server runs as redis, not as root.
    assert "Uid:\t%d\t" % SERVER_UID in run_in(first, ["cat", "/proc/1/status"])

    stop_cleanly(first)
    first.remove()
    owners = engine.run(volume, "stat -c '%n %u' /data /data/note.txt /data/appendonlydir", read_only=True).split("\n")
    assert owners[:3] == ["/data %d" % SERVER_UID, "/data/note.txt %d" % SERVER_UID, "/data/appendonlydir %d" % SERVER_UID]

    port = free_port()
    second = start_server(engine, "redis-second", REDIS_IMAGE, {volume: "/data"}, command=["redis-server", "--port", str(port), "--appendonly", "yes"])
    wait_until_healthy(second)
    cli = ["redis-cli", "-h", "127.0.0.1", "-p", str(port)]
    assert run_in(second, cli + ["GET", "greeting"]).strip() == "hello from redis"
    assert run_in(second, cli + ["LRANGE", "queue", "0", "-1"]).split() == ["a", "b", "c"]
    assert "DB loaded from append only file" in logs_of(second)
