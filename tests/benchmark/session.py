# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A benchmark run's engine objects and files: named with a random prefix, removed at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile

import docker
from docker.errors import APIError, NotFound

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The modules' default helper image (scripts/lib.sh tags the local Debian image with it).
HELPER_IMAGE = "debian:bookworm-20250908-slim"
HELPER_LABEL = "persist.docker.helper"
LOCK_LABEL = "persist.docker.lock"
SWAP_LABEL = "persist.docker.swap"
# The modules' marker containers (a volume's lock, the record of a swap into it), each labelled
# with the name of its volume.
MARKER_LABELS = (LOCK_LABEL, SWAP_LABEL)
BENCH_LABEL = "persist.benchmark"


def log(message):
    print("--> %s" % message, flush=True)


class Session:
    """This run's engine objects and files, all named with its prefix, all removed at the end."""

    def __init__(self, workdir_parent, keep):
        self.run_id = secrets.token_hex(4)
        self.prefix = "pb-%s-" % self.run_id
        self.client = docker.from_env(timeout=600)
        # The sampler thread asks the engine for container pids with a client of its own.
        self.sampler_client = docker.from_env(timeout=30).api
        self.workdir = tempfile.mkdtemp(prefix=self.prefix, dir=workdir_parent)
        self.helper_image = HELPER_IMAGE
        self.repo_root = REPO_ROOT
        self.keep = keep
        self.volumes = []

    def create_volume(self, suffix):
        name = self.prefix + suffix
        self.client.volumes.create(name=name, driver="local", labels={BENCH_LABEL: self.run_id})
        self.volumes.append(name)
        return name

    def mountpoint(self, volume):
        return self.client.api.inspect_volume(volume)["Mountpoint"]

    def remove_volume(self, volume):
        if self.keep:
            return
        assert volume.startswith(self.prefix), volume
        # A module killed on Ctrl-C may leave its helpers, its lock container and the record of
        # a swap (both named after the volume).
        for helper in self.client.api.containers(all=True, filters={"label": HELPER_LABEL, "volume": volume}):
            self.remove_container(helper["Id"])
        for label in MARKER_LABELS:
            for marker in self.client.api.containers(all=True, filters={"label": "%s=%s" % (label, volume)}):
                self.remove_container(marker["Id"])
        try:
            self.client.api.remove_volume(volume, force=True)
        except NotFound:
            pass
        if volume in self.volumes:
            self.volumes.remove(volume)

    def remove_container(self, container_id):
        """Removes the container, running or not; one already gone is fine."""
        try:
            self.client.api.remove_container(container_id, force=True)
        except NotFound:
            pass

    def container_pid_finder(self, name):
        """A roots() callable for the sampler: the pid of container ``name``'s first process,
        asked of the engine until it runs (then remembered)."""
        found = []

        def roots():
            if not found:
                try:
                    pid = self.sampler_client.inspect_container(name)["State"]["Pid"]
                except (NotFound, APIError):
                    pid = 0
                if pid:
                    found.append(pid)
            return found

        return roots

    def cleanup(self):
        """Everything this run created: containers with its prefix, helpers on its volumes, its volumes, its files."""
        if self.keep:
            log("kept for inspection: volumes %s, files in %s" % (" ".join(self.volumes) or "(none)", self.workdir))
            return
        for container in self.client.api.containers(all=True, filters={"name": self.prefix}):
            if any(name.lstrip("/").startswith(self.prefix) for name in container["Names"]):
                self.remove_container(container["Id"])
        for label in MARKER_LABELS:
            for marker in self.client.api.containers(all=True, filters={"label": label}):
                if (marker.get("Labels") or {}).get(label, "").startswith(self.prefix):
                    self.remove_container(marker["Id"])
        for volume in self.client.api.volumes(filters={"label": "%s=%s" % (BENCH_LABEL, self.run_id)}).get("Volumes") or []:
            self.remove_volume(volume["Name"])
        shutil.rmtree(self.workdir, ignore_errors=True)
