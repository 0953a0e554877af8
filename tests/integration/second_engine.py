# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker daemons of the tests' own, for the tests that need another engine (another "host").

Each has its own data root, exec root, pid file, config file and socket, no bridge and no
iptables, so the engine the other tests use is never touched; it can be stopped and started
again, and is removed with everything in it at the end. ``fleet.Fleet`` starts several at
once; ``load_images`` gives them images as an offline site does (``docker save | docker load``).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading

import docker

import adhoc_process

# The helper image of the modules (their default helper_image).
HELPER_IMAGE = "debian:bookworm-20250908-slim"


# Every engine lives in a directory of its own under the temporary directory, named with this
# prefix: its data root, exec root, socket, pid file, config file, log and owner file.
ROOT_PREFIX = "pt-dockerd-"


class SecondEngine:
    """A dockerd of its own, with no bridge and no iptables, that can be stopped and started."""

    def __init__(self, token=None):
        token = token or secrets.token_hex(4)
        # Short: the daemon's sockets live below it, and socket paths are limited to 108 bytes.
        self.root = os.path.join(tempfile.gettempdir(), ROOT_PREFIX + token)
        self.data_root = os.path.join(self.root, "data")
        self.exec_root = os.path.join(self.root, "x")
        self.socket = os.path.join(self.root, "docker.sock")
        self.pidfile = os.path.join(self.root, "dockerd.pid")
        # An empty configuration of its own: without one, dockerd reads /etc/docker/daemon.json.
        self.config_file = os.path.join(self.root, "daemon.json")
        # Which test process owns the daemon: a later session removes the daemons of one that died.
        self.owner_file = os.path.join(self.root, "owner")
        self.log = os.path.join(self.root, "dockerd.log")
        self.url = "unix://" + self.socket
        self.process = None

    def launch(self):
        """Start the daemon and return at once (``wait_until_ready`` waits for it)."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        with open(self.owner_file, "w") as owner:
            owner.write("%d %s\n" % (os.getpid(), _start_time(os.getpid())))
        with open(self.config_file, "w") as config:
            config.write("{}\n")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    "dockerd", "--bridge=none", "--iptables=false", "--ip-masq=false",
                    "--data-root", self.data_root, "--exec-root", self.exec_root,
                    "--pidfile", self.pidfile, "--config-file", self.config_file, "-H", self.url,
                ],
                stdout=log, stderr=log, start_new_session=True,
            )

    def wait_until_ready(self, timeout=90):
        """An SDK client of the daemon, once it answers."""
        client = docker.DockerClient(base_url=self.url, version="1.41")  # no version query before it answers
        answered = adhoc_process.wait_until(lambda: self._answers(client), timeout=timeout, interval=0.2)
        assert answered, "dockerd at %s did not answer within %s s: %s" % (self.url, timeout, self._tail())
        return client

    def start(self):
        self.launch()
        return self.wait_until_ready()

    @staticmethod
    def _answers(client):
        try:
            return client.ping()
        except Exception:  # not up yet
            return False

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        """Stop the daemon as an administrator or a reboot does (SIGTERM), and wait for it."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)

    def remove(self):
        if self.running():
            try:
                self.stop()
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=60)
        _remove_root(self.root)

    def _tail(self):
        with open(self.log, "rb") as log:
            return log.read()[-3000:].decode("utf-8", "replace")


def _start_time(pid):
    """When process ``pid`` started (clock ticks since boot), or None when it is gone: a pid
    alone may have been reused. A zombie is gone too (dead, only not yet waited for: a
    container's init may never wait for the orphans it inherits)."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if len(fields) < 20 or fields[0] == "Z" else fields[19]


def _processes_of(root):
    """{pid: command line} of the processes whose command line names ``root``: the dockerd of
    an engine, its containerd and the containers' shims."""
    found = {}
    needle = root.encode() + b"/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as cmdline:
                line = cmdline.read()
        except OSError:
            continue  # gone meanwhile
        if needle in line:
            found[int(entry)] = line
    return found


def _remove_root(root):
    """Delete an engine's directory, after unmounting what a daemon that died left mounted
    below it (container layers, volumes of running containers)."""
    mounts = []
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(root + "/"):
                    mounts.append(point)
    except OSError:
        pass
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


def reap_orphans():
    """Stop and remove the engines whose test process died without removing them (killed by
    SIGKILL, a CI timeout): the ones whose owner file names a process that is gone. The
    engines of live sessions, and any that this code did not start, are left alone.

    Returns the directories it removed."""
    reaped = []
    for owner_file in glob.glob(os.path.join(tempfile.gettempdir(), ROOT_PREFIX + "*", "owner")):
        try:
            with open(owner_file) as owner:
                pid, started = owner.read().split()
        except (OSError, ValueError):
            continue  # being written by a session that is starting its engines
        if _start_time(int(pid)) == started:
            continue
        root = os.path.dirname(owner_file)
        # dockerd first (it stops its containers and its containerd), then anything left.
        for stopping in (lambda line: line.startswith(b"dockerd\0"), lambda line: True):
            pids = [pid for pid, line in _processes_of(root).items() if stopping(line)]
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
            adhoc_process.wait_until(lambda: not set(pids) & set(_processes_of(root)), timeout=60, interval=0.2)
        for pid in _processes_of(root):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        adhoc_process.wait_until(lambda: not _processes_of(root), timeout=30, interval=0.2)
        _remove_root(root)
        reaped.append(root)
    return reaped


def load_images(engines, *names):
    """Give each engine the images ``names`` of the default engine, as an offline site does:
    ``docker save`` once, then ``docker -H ENGINE load`` into every engine at the same time."""
    with tempfile.TemporaryDirectory(prefix="pt-images-") as directory:
        archive = os.path.join(directory, "images.tar")
        subprocess.run(["docker", "save", "-o", archive] + list(names), check=True, capture_output=True)
        failures = []

        def load(engine):
            run = subprocess.run(["docker", "-H", engine.url, "load", "-i", archive], capture_output=True, text=True, check=False)
            if run.returncode != 0:
                failures.append("%s: %s" % (engine.url, run.stderr.strip()))

        threads = [threading.Thread(target=load, args=(engine,)) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, "docker load failed: %s" % failures
