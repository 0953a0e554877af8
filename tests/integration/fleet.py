# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet of simulated Docker hosts on one machine, and the inventory that describes it.

Each host is a dockerd of its own (second_engine.SecondEngine: own socket, data root, exec
root, pid file and config file, no bridge, no iptables), started all at once and given the
images the scenarios need with ``docker save | docker load``. The inventory's hosts are
``ansible_connection: local`` entries whose ``persist_docker_host`` names their engine: the
playbooks treat them as different machines. Since they share this machine's file system,
each host also gets a backup directory and a textfile directory of its own, as separate
machines have.

``Fleet`` belongs to one test session (the ``fleet`` fixture): the tests share its engines
and name what they create on them with a prefix of their own (``FleetVolumes``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time

import playbooks
from second_engine import HELPER_IMAGE, SecondEngine, load_images, reap_orphans

# The data containers of the scenarios run the same Debian image as the helpers.
DATA_IMAGE = "persist-test/debian:bookworm"
IMAGES = (HELPER_IMAGE, DATA_IMAGE)
DATA = "/data"


class Fleet:
    """``size`` engines, started in parallel; ``remove`` stops them and deletes their data roots."""

    def __init__(self, size):
        self.engines = [SecondEngine() for number in range(size)]
        self.clients = []
        self.names = ["fleet-%d" % number for number in range(1, size + 1)]
        self.start_seconds = None
        self.load_seconds = None

    def start(self, images=IMAGES):
        reap_orphans()
        started = time.monotonic()
        for engine in self.engines:
            engine.launch()
        self.clients = [engine.wait_until_ready() for engine in self.engines]
        self.start_seconds = round(time.monotonic() - started, 1)
        started = time.monotonic()
        load_images(self.engines, *images)
        self.load_seconds = round(time.monotonic() - started, 1)
        return self

    def remove(self):
        """Stop every engine at once (SIGTERM, then SIGKILL) and remove what it kept."""
        for client in self.clients:
            client.close()
        threads = [threading.Thread(target=engine.remove) for engine in self.engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def __getitem__(self, name):
        """(engine, client) of host ``name``."""
        index = self.names.index(name)
        return self.engines[index], self.clients[index]

    def restart(self, name):
        """Start the engine of host ``name`` again (after a test stopped it) on its data root."""
        index = self.names.index(name)
        engine = self.engines[index]
        if not engine.running():
            self.clients[index].close()
            self.clients[index] = engine.start()
        return self.clients[index]

    def processes(self):
        """The pids of every dockerd of this fleet still running (and their containerd)."""
        pids = []
        for engine in self.engines:
            if engine.running():
                pids.append(engine.process.pid)
        return pids


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (for a host that cannot be reached)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FleetVolumes:
    """One test's volumes on the fleet's engines and the per-host directories of its runs.

    Each host gets the same volumes (``per_host`` of them, ``size`` bytes of random data each,
    plus a small file), labelled with a label only this test's volumes carry: the backup role
    selects them by it and never sees another test's volumes on the shared engines.
    """

    def __init__(self, fleet, tag):
        self.fleet = fleet
        self.token = secrets.token_hex(3)
        self.prefix = "pt-%s-%s-" % (tag, self.token)
        self.label = "persist.test.fleet-%s" % self.token
        self.root = tempfile.mkdtemp(prefix=self.prefix)
        self.volumes = {}  # host -> [volume names]
        self.containers = {}  # host -> [container names]

    def create(self, hosts, per_host=1, size=2 * 1024 * 1024):
        """The volumes on each of ``hosts``, filled (all at once, one thread per host)."""
        def fill(host):
            _engine, client = self.fleet[host]
            names = []
            for number in range(1, per_host + 1):
                name = "%s%s-data%d" % (self.prefix, host, number)
                client.volumes.create(name=name, labels={self.label: "true", "persist.backup": "true"})
                names.append(name)
                client.containers.run(
                    DATA_IMAGE, ["sh", "-c", "head -c %d /dev/urandom > %s/blob && echo %s > %s/name" % (size, DATA, name, DATA)],
                    volumes={name: {"bind": DATA, "mode": "rw"}}, network_mode="none", remove=True,
                )
            self.volumes[host] = names

        threads = [threading.Thread(target=fill, args=(host,)) for host in hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        missing = [host for host in hosts if host not in self.volumes]
        assert not missing, "could not create the volumes on %s" % missing
        return self

    def container(self, host, suffix, command, **create_args):
        """A running container of the test on ``host`` (no network), removed at the end."""
        _engine, client = self.fleet[host]
        name = "%s%s" % (self.prefix, suffix)
        self.containers.setdefault(host, []).append(name)
        return client.containers.run(DATA_IMAGE, command, name=name, detach=True, network_mode="none", **create_args)

    def backup_dir(self, host):
        return os.path.join(self.root, host, "backups")

    def host_vars(self, host):
        """What an inventory says about ``host``: its engine and its own directories."""
        engine, _client = self.fleet[host]
        return {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "persist_docker_host": engine.url,
            "persist_backup_dir": self.backup_dir(host),
            "persist_backup_textfile_dir": os.path.join(self.root, host, "textfiles"),
        }

    def archives(self, host):
        """{archive path: mtime in ns} of every file below the host's backup directory but its reports."""
        found = {}
        for directory, _dirs, files in os.walk(self.backup_dir(host)):
            if os.path.basename(directory) == "reports":
                continue
            for name in files:
                path = os.path.join(directory, name)
                found[path] = os.stat(path).st_mtime_ns
        return found

    def remove(self):
        """Remove the test's containers, volumes (with any helper left on them) and directories,
        on the engines that still answer."""
        for host in self.fleet.names:
            engine, client = self.fleet[host]
            if not engine.running():
                continue
            for name in self.containers.get(host, []):
                _remove_quietly(client.containers, name, force=True)
            for container in client.containers.list(all=True, filters={"name": self.prefix}):
                container.remove(force=True)
            for name in self.volumes.get(host, []):
                # Helpers, locks and swap records that a run stopped in the middle left on the volume.
                for container in client.containers.list(all=True, sparse=True, filters={"label": "persist.docker.helper", "volume": name}):
                    container.remove(force=True)
                for lock in ("persist-lock-%s" % name, "persist-swap-%s" % name):
                    _remove_quietly(client.containers, lock, force=True)
                _remove_quietly(client.volumes, name, force=True)
            # Scratch volumes of this test's test restores that a stopped engine kept (the module
            # removes its own otherwise); other tests of the session may be restoring theirs now.
            for volume in client.volumes.list(filters={"label": "persist.docker.scratch"}):
                if volume.name.startswith("persist-verify-" + self.prefix):
                    volume.remove(force=True)
        shutil.rmtree(self.root, ignore_errors=True)


def _remove_quietly(collection, name, **kwargs):
    from docker.errors import NotFound

    try:
        collection.get(name).remove(**kwargs)
    except NotFound:
        pass


def unreachable_host_vars():
    """A host that cannot be reached: ssh to a port of 127.0.0.1 that nothing listens on."""
    return {
        "ansible_connection": "ssh",
        "ansible_host": "127.0.0.1",
        "ansible_port": free_port(),
        "ansible_user": "root",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5",
    }


def inventory(hosts):
    """A YAML/JSON inventory: every host in the group docker_hosts (the playbooks' default)."""
    return {"all": {"children": {"docker_hosts": {"hosts": hosts}}}}


def run_playbook(name, inventory_data, extra_vars, directory, forks=4, measure=None):
    """``ansible-playbook persist.docker.NAME`` over the fleet (playbooks.run_playbook), with the
    inventory ``inventory_data`` written into ``directory``. Returns (rc, the JSON output, wall
    seconds); ``measure``, a dict, also receives what the run cost the controller."""
    path = os.path.join(directory, "inventory-%s.json" % secrets.token_hex(3))
    with open(path, "w") as handle:
        json.dump(inventory_data, handle)
    measured = {} if measure is None else measure
    rc, output = playbooks.run_playbook(name, path, extra_vars, timeout=1200, forks=forks, measure=measured)
    return rc, output, measured["wall_seconds"]


def summary_of(output):
    """The playbook's fleet summary, as set_stats stored it (persist_backup)."""
    return output["global_custom_stats"]["persist_backup"]


def per_host(output):
    return {entry["host"]: entry for entry in summary_of(output)["per_host"]}


def role_report(entry):
    """The backup role's JSON report of one host, as it wrote it on the host."""
    with open(entry["report_path"]) as handle:
        return json.load(handle)


def stats_of(output, key):
    """{host: count} of the hosts with a non-zero ``key`` (failures, unreachable, changed) in the recap."""
    return {host: counts[key] for host, counts in output["stats"].items() if counts[key]}
