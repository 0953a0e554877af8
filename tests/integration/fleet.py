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
import subprocess
import sys
import tempfile
import threading
import time

from second_engine import HELPER_IMAGE, SecondEngine, load_images, reap_orphans

# The data containers of the scenarios run the same Debian image as the helpers.
DATA_IMAGE = "persist-test/debian:bookworm"
IMAGES = (HELPER_IMAGE, DATA_IMAGE)
DATA = "/data"


class Fleet:
    """``size`` engines, started in parallel; ``remove`` stops them and deletes their data roots."""

    def __init__(self, size):
        self.engines = [SecondEngine() for _ in range(size)]
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


class ControllerUsage(threading.Thread):
    """Samples what an ansible-playbook run costs the controller: its main process and its
    forks (workers), not the modules they start (which run on the managed nodes). Memory as
    PSS, so that the pages the forks share with the main process count once; CPU as the
    seconds each of those processes used, as last seen (workers live for the whole play)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_bytes = 0
        self.peak_processes = 0
        self.cpu_ticks = {}
        self.done = threading.Event()

    @property
    def cpu_seconds(self):
        return round(sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK"), 1)

    @property
    def main_cpu_seconds(self):
        """The main process's share: it alone queues every task and takes in every result."""
        return round(self.cpu_ticks.get(self.pid, 0) / os.sysconf("SC_CLK_TCK"), 1)

    def run(self):
        import adhoc_process

        while not self.done.wait(0.25):
            total = processes = 0
            for pid in adhoc_process.process_tree(self.pid):
                try:
                    with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
                        if b"ansible.cli.playbook" not in cmdline.read():
                            continue
                    with open("/proc/%d/smaps_rollup" % pid) as rollup:
                        total += 1024 * sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
                    with open("/proc/%d/stat" % pid) as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                    self.cpu_ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
                    processes += 1
                except (OSError, ValueError, IndexError):
                    continue  # gone meanwhile
            self.peak_bytes = max(self.peak_bytes, total)
            self.peak_processes = max(self.peak_processes, processes)


def run_playbook(name, inventory_data, extra_vars, directory, forks=4, extra_args=(), measure=None):
    """``ansible-playbook persist.docker.NAME`` as an operator runs it, with the JSON callback.

    Returns (rc, the JSON output, wall seconds). The inventory is written into ``directory``.
    ``measure``, a dict, receives the controller's peak memory and CPU time (``ControllerUsage``).
    """
    import adhoc_process

    path = os.path.join(directory, "inventory-%s.json" % secrets.token_hex(3))
    with open(path, "w") as handle:
        json.dump(inventory_data, handle)
    env = dict(
        adhoc_process.ansible_environment(),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_SHOW_CUSTOM_STATS="true",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    command = [sys.executable, "-m", "ansible.cli.playbook", name, "-i", path, "--forks", str(forks),
               "-e", json.dumps(extra_vars)] + list(extra_args)
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = ControllerUsage(process.pid)
    if measure is not None:
        sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=1200)
    finally:
        if process.poll() is None:
            adhoc_process.kill_tree(process)
        sampler.done.set()
    seconds = round(time.monotonic() - started, 1)
    if measure is not None:
        sampler.join()
        measure.update(peak_bytes=sampler.peak_bytes, peak_processes=sampler.peak_processes, cpu_seconds=sampler.cpu_seconds,
                       main_cpu_seconds=sampler.main_cpu_seconds)
    try:
        return process.returncode, json.loads(stdout), seconds
    except ValueError:
        raise AssertionError("%s printed no JSON (rc %s): %s %s" % (name, process.returncode, stdout[-3000:], stderr[-3000:]))


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
