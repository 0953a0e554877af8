# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A second Docker daemon for the tests that need another engine (another "host").

It has its own data root, exec root, pid file and socket, no bridge and no iptables, so the
engine the other tests use is never touched; it can be stopped and started again, and is
removed with everything in it at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess

import docker

import adhoc_process

# The helper image of the modules (their default helper_image).
HELPER_IMAGE = "debian:bookworm-20250908-slim"


class SecondEngine:
    """A dockerd of its own, with no bridge and no iptables, that can be stopped and started."""

    def __init__(self):
        token = secrets.token_hex(4)
        self.data_root = "/var/lib/persist-test-dockerd-%s" % token
        self.exec_root = "/run/pt-exec-%s" % token
        self.socket = "/run/pt-dockerd-%s.sock" % token
        self.pidfile = "/run/pt-dockerd-%s.pid" % token
        self.log = "/tmp/pt-dockerd-%s.log" % token
        self.url = "unix://" + self.socket
        self.process = None

    def start(self):
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    "dockerd", "--bridge=none", "--iptables=false", "--ip-masq=false",
                    "--data-root", self.data_root, "--exec-root", self.exec_root,
                    "--pidfile", self.pidfile, "-H", self.url,
                ],
                stdout=log, stderr=log, start_new_session=True,
            )
        client = docker.DockerClient(base_url=self.url, version="1.41")  # no version query before it answers
        assert adhoc_process.wait_until(lambda: self._answers(client), timeout=60, interval=0.2), self._tail()
        return client

    @staticmethod
    def _answers(client):
        try:
            return client.ping()
        except Exception:  # not up yet
            return False

    def stop(self):
        """Stop the daemon as an administrator or a reboot does (SIGTERM), and wait for it."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)

    def remove(self):
        if self.process is not None and self.process.poll() is None:
            self.stop()
        shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        for path in (self.socket, self.pidfile, self.log):
            if os.path.exists(path):
                os.unlink(path)

    def _tail(self):
        with open(self.log, "rb") as log:
            return log.read()[-3000:].decode("utf-8", "replace")


def load_images(source_client, target_client, *names):
    """Copy images from one engine to the other, as an offline site does (save, then load)."""
    for name in names:
        target_client.images.load(b"".join(source_client.images.get(name).save(named=True)))
