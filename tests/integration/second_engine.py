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


class SecondEngine:
    """A dockerd of its own, with no bridge and no iptables, that can be stopped and started."""

    def __init__(self):
        token = secrets.token_hex(4)
        self.data_root = "/var/lib/persist-test-dockerd-%s" % token
        # Short: the daemon's sockets live below it, and socket paths are limited to 108 bytes.
        self.exec_root = "/run/pt-exec-%s" % token
        self.socket = "/run/pt-dockerd-%s.sock" % token
        self.pidfile = "/run/pt-dockerd-%s.pid" % token
        # An empty configuration of its own: without one, dockerd reads /etc/docker/daemon.json.
        self.config_file = "/run/pt-dockerd-%s.json" % token
        self.log = "/tmp/pt-dockerd-%s.log" % token
        self.url = "unix://" + self.socket
        self.process = None

    def launch(self):
        """Start the daemon and return at once (``wait_until_ready`` waits for it)."""
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
        shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        for path in (self.socket, self.pidfile, self.config_file, self.log):
            if os.path.exists(path):
                os.unlink(path)

    def _tail(self):
        with open(self.log, "rb") as log:
            return log.read()[-3000:].decode("utf-8", "replace")


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
