# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Short-lived helper containers that read volume data and stream it over the API.

Every helper runs with no network, the log driver ``none`` (the default json-file driver
would copy every byte), a read-only root file system, no capabilities beyond reading
files, and the label HELPER_LABEL. Its owner label names the process that started it,
so that a later run can tell a helper abandoned by a killed run from one still in use.
"""

from __future__ import annotations

import calendar
import os
import socket
import time

from ansible_collections.persist.docker.plugins.module_utils._errors import HelperError
from ansible_collections.persist.docker.plugins.module_utils._frames import (
    STDERR,
    STDOUT,
    TruncatedStream,
    demultiplex,
)

try:
    from docker.errors import APIError, NotFound
    from docker.types import LogConfig, Mount
    from docker.utils import parse_repository_tag
    from docker.utils.socket import read as socket_read
except ImportError:  # pragma: no cover - connect() reports the missing SDK first
    pass

HELPER_LABEL = "persist.docker.helper"
OWNER_LABEL = "persist.docker.owner"
DEFAULT_HELPER_IMAGE = "debian:bookworm-20250908-slim"
# A stopped helper whose owner may still be reading its exit code is left alone this long.
STOPPED_HELPER_GRACE_SECONDS = 600
STDERR_TAIL_BYTES = 4096


def helper_argument_spec():
    """The argument spec of the helper options (documented in the ``helper`` doc fragment)."""
    return dict(
        helper_image=dict(type="str", default=DEFAULT_HELPER_IMAGE),
        helper_pull=dict(type="str", default="missing", choices=["missing", "always", "never"]),
    )


def _process_start_time(pid):
    """The start time of process ``pid`` in clock ticks since boot, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def owner_token():
    """Identify this process: host name, pid and start time (pids are reused)."""
    pid = os.getpid()
    return "%s/%d/%s" % (socket.gethostname(), pid, _process_start_time(pid) or "?")


def owner_is_gone(token):
    """True only when ``token`` names a process on this host that no longer runs."""
    try:
        host, pid, started = token.rsplit("/", 2)
        pid = int(pid)
    except (AttributeError, ValueError):
        return False
    if host != socket.gethostname():
        return False
    return _process_start_time(pid) != started


class HelperRunner:
    """Runs helper containers from one image on one engine."""

    def __init__(self, client, image=DEFAULT_HELPER_IMAGE, pull="missing"):
        self.client = client
        self.image = image
        self.pull = pull
        self._image_ready = False
        self.reaped = []

    def prepare(self):
        """Remove abandoned helpers, then make sure the image is there (pulling per policy)."""
        if self._image_ready:
            return
        self.reap_abandoned()
        self._ensure_image()
        self._image_ready = True

    def _ensure_image(self):
        have = True
        try:
            self.client.inspect_image(self.image)
        except NotFound:
            have = False
        except APIError as exc:
            raise HelperError("Cannot inspect helper image %s: %s" % (self.image, exc))
        if have and self.pull != "always":
            return
        if not have and self.pull == "never":
            raise HelperError(
                "The helper image %s is not on the engine and helper_pull is 'never'. Load or "
                "tag an image with GNU tar and GNU find under that name, or set helper_image."
                % self.image,
                helper_image=self.image,
            )
        repository, tag = parse_repository_tag(self.image)
        try:
            self.client.pull(repository, tag=tag or "latest")
            self.client.inspect_image(self.image)
        except (APIError, NotFound) as exc:
            raise HelperError(
                "Cannot pull the helper image %s: %s. On a site without registry access, load "
                "or tag an image with GNU tar and GNU find under that name (for example "
                "'docker tag my-debian %s') or set helper_image to an image the engine has."
                % (self.image, exc, self.image),
                helper_image=self.image,
            )

    def reap_abandoned(self):
        """Remove helpers left by killed runs; never one that a live run may still use."""
        try:
            helpers = self.client.containers(all=True, filters={"label": HELPER_LABEL})
        except APIError as exc:
            raise HelperError("Cannot list helper containers: %s" % exc)
        now = time.time()
        for summary in helpers:
            owner = (summary.get("Labels") or {}).get(OWNER_LABEL)
            abandoned = owner_is_gone(owner)
            if not abandoned and summary.get("State") not in ("running", "paused", "restarting"):
                abandoned = now - self._finished_at(summary["Id"], now) > STOPPED_HELPER_GRACE_SECONDS
            if abandoned:
                try:
                    self.client.remove_container(summary["Id"], force=True)
                    self.reaped.append(summary["Id"][:12])
                except NotFound:
                    pass
                except APIError as exc:
                    raise HelperError("Cannot remove abandoned helper container %s: %s" % (summary["Id"][:12], exc))

    def _finished_at(self, container_id, default):
        try:
            details = self.client.inspect_container(container_id)
        except NotFound:
            return default
        return (
            _parse_docker_time(details["State"].get("FinishedAt"))
            or _parse_docker_time(details.get("Created"))
            or default
        )

    def stream_output(self, command, volumes, what):
        """Run ``command`` with ``volumes`` ({name: path}) mounted read-only; yield its stdout.

        ``what`` says in error messages what the helper was doing. The container is removed
        when the generator ends or is closed. Raises HelperError when the command exits
        non-zero (with the tail of its stderr) or the stream breaks off.
        """
        self.prepare()
        container_id = self._create(command, volumes, what)
        stderr_tail = b""
        try:
            sock = self.client.attach_socket(container_id, params={"stdout": 1, "stderr": 1, "stream": 1})
            try:
                self.client.start(container_id)
                for stream_id, data in demultiplex(_reader(sock)):
                    if stream_id == STDOUT:
                        yield data
                    elif stream_id == STDERR:
                        stderr_tail = (stderr_tail + data)[-STDERR_TAIL_BYTES:]
            except TruncatedStream as exc:
                raise HelperError("The stream from the helper container broke off while %s: %s" % (what, exc))
            finally:
                sock.close()
            status = self.client.wait(container_id)
            exit_code = status.get("StatusCode") if isinstance(status, dict) else status
            if exit_code != 0:
                raise HelperError(
                    "The helper container failed (exit code %s) while %s: %s"
                    % (exit_code, what, stderr_tail.decode("utf-8", "replace").strip() or "no error output"),
                    helper_stderr=stderr_tail.decode("utf-8", "replace"),
                )
        except APIError as exc:
            raise HelperError("The Docker engine refused a helper container request while %s: %s" % (what, exc))
        finally:
            try:
                self.client.remove_container(container_id, force=True)
            except (APIError, NotFound):
                pass  # reaped by the next run, which finds it by its label

    def _create(self, command, volumes, what):
        mounts = [
            Mount(target=path, source=name, type="volume", read_only=True, no_copy=True)
            for name, path in sorted(volumes.items())
        ]
        host_config = self.client.create_host_config(
            mounts=mounts,
            network_mode="none",
            log_config=LogConfig(type="none"),
            read_only=True,
            cap_drop=["ALL"],
            cap_add=["DAC_READ_SEARCH"],
            security_opt=["no-new-privileges"],
        )
        try:
            created = self.client.create_container(
                self.image,
                entrypoint=command[:1],
                command=command[1:],
                user="0:0",
                labels={HELPER_LABEL: "true", OWNER_LABEL: owner_token()},
                host_config=host_config,
                network_disabled=True,
            )
        except APIError as exc:
            raise HelperError(
                "Cannot create a helper container from %s while %s: %s" % (self.image, what, exc),
                helper_image=self.image,
            )
        return created["Id"]


def _reader(sock):
    def read(size):
        while True:
            data = socket_read(sock, size)
            if data is not None:  # None: an interrupted call, try again
                return data

    return read


def _parse_docker_time(value):
    """Seconds since the epoch for an RFC 3339 time from the API, or None if unset."""
    if not value or value.startswith("0001-"):
        return None
    stamp = value.split(".")[0].rstrip("Z")
    try:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
