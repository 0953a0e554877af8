# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Engine access: the one facade over the Docker SDK's low-level client.

Everything the collection asks an engine goes through ``EngineAPI`` (only _connection,
which builds the client, talks to the SDK besides). Here and nowhere else the SDK's
``APIError`` becomes the collection's ``EngineRefused`` (``EngineNotFound`` for the
engine's 404), with the SDK's message, and here live the differences between SDK versions
and transports. What is not there inspects as None and is removed already (remove_container
answers False); connection failures pass through as they are (the runner reports them).

Also the helpers for the sockets of attach and exec streams, and the engine's time stamps.
"""

from __future__ import annotations

import calendar
import socket
import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ansible_collections.persist.docker.plugins.module_utils._errors import EngineError, EngineNotFound, EngineRefused

try:
    from docker.errors import APIError, NotFound
    from docker.types import LogConfig, Mount
    from docker.utils import parse_repository_tag
    from docker.utils.socket import read as socket_read
except ImportError:  # pragma: no cover - connect() reports the missing SDK first
    pass

try:
    from requests.exceptions import RequestException
except ImportError:  # pragma: no cover - requests comes with the Docker SDK
    RequestException = OSError  # type: ignore[misc,assignment]


class NameTaken(Exception):
    """A container of the requested name exists already."""


@contextmanager
def _refusals() -> Iterator[None]:
    """Turn the SDK's API errors into the collection's, keeping the SDK's message."""
    try:
        yield
    except NotFound as exc:
        raise EngineNotFound(str(exc), explanation=exc.explanation, status=exc.status_code)
    except APIError as exc:
        raise EngineRefused(str(exc), explanation=exc.explanation, status=exc.status_code)


def _or_none(call: Callable[[], Any]) -> Any:
    """What ``call()`` answers (the SDK's errors translated), or None when the engine has no
    such container, image or volume."""
    try:
        with _refusals():
            return call()
    except EngineNotFound:
        return None


class EngineAPI:
    """One engine, reached through a low-level ``docker.APIClient`` (see _connection.connect).

    Containers are named by name or id. Methods raise EngineRefused when the engine answers
    with an error, and let connection failures (requests' exceptions, OSError) through.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def base_url(self) -> str:
        """The address the client talks to (``http+docker://localhost`` for a unix socket)."""
        return self._client.base_url

    def close(self) -> None:
        self._client.close()

    def identity(self) -> Optional[Tuple[str, str, str]]:
        """What tells one engine from another: its id, host name and data root, or None when
        it does not say all three. Two daemons on one host may share an id (Docker 20.10
        derives it from /etc/docker/key.json), never a data root; a daemon reached at two
        addresses gives the same three."""
        try:
            with _refusals():
                info = self._client.info()
        except EngineRefused as exc:
            raise EngineError("Cannot ask the Docker engine at %s who it is: %s" % (self.base_url, exc))
        identity = (info.get("ID"), info.get("Name"), info.get("DockerRootDir"))
        return identity if all(identity) else None

    # -- containers ----------------------------------------------------------------------

    def containers(self, label: Optional[str] = None) -> List[Dict[str, Any]]:
        """Summaries of all containers, running or not; with ``label``, of those that carry it."""
        with _refusals():
            return self._client.containers(all=True, filters={"label": label} if label else None)

    def inspect_container(self, container: str) -> Optional[Dict[str, Any]]:
        """The engine's description of ``container``, or None when there is none."""
        return _or_none(lambda: self._client.inspect_container(container))

    def container_state(self, container: str) -> Optional[Dict[str, Any]]:
        """The state of ``container`` (``Running``, ``Paused``, ``ExitCode``, ...), or None when
        there is no such container."""
        details = self.inspect_container(container)
        return None if details is None else details["State"]

    def create_container(
        self,
        image: str,
        labels: Dict[str, str],
        name: Optional[str] = None,
        mounts: Iterable[Tuple[str, str, str, bool]] = (),
        log_driver: str = "none",
        log_options: Optional[Dict[str, str]] = None,
        host_options: Optional[Dict[str, Any]] = None,
        **options: Any,
    ) -> str:
        """Create (never start) a container from ``image`` with no network; return its id.

        ``mounts`` are (type, source, target, read_only), type "volume" (mounted with
        no_copy: the image's files are never copied into an empty volume) or "bind". The
        container logs to ``log_driver``; ``host_options`` go to its host config
        (capabilities, a read-only root, tmpfs) and ``options`` to the container (command,
        entrypoint, user, environment, stdin_open, ...). Raises NameTaken when a container
        called ``name`` exists already.
        """
        host_config = self._client.create_host_config(
            mounts=[
                Mount(target=target, source=source, type=kind, read_only=read_only, no_copy=kind == "volume")
                for kind, source, target, read_only in mounts
            ],
            network_mode="none",
            log_config=LogConfig(type=log_driver, config=log_options),
            **(host_options or {}),
        )
        try:
            with _refusals():
                created = self._client.create_container(
                    image, name=name, labels=labels, host_config=host_config, network_disabled=True, **options)
        except EngineRefused as exc:
            if name is not None and exc.status == 409:
                raise NameTaken(name)
            raise
        return created["Id"]

    def start(self, container: str) -> None:
        with _refusals():
            self._client.start(container)

    def stop(self, container: str, timeout: int) -> None:
        """Stop ``container``, killing it when it has not exited after ``timeout`` seconds."""
        with _refusals():
            self._client.stop(container, timeout=timeout)

    def kill(self, container: str) -> None:
        with _refusals():
            self._client.kill(container)

    def pause(self, container: str) -> None:
        with _refusals():
            self._client.pause(container)

    def unpause(self, container: str) -> None:
        with _refusals():
            self._client.unpause(container)

    def remove_container(self, container: str, settle_seconds: float = 5.0) -> bool:
        """Remove ``container``, running or not; False when it was gone already, or when
        another client was removing it (runs on one host reap the same leftovers, and the
        engine refuses a second removal with 409: this waits up to ``settle_seconds`` for the
        first to end, and raises EngineRefused if the container is still there then)."""
        try:
            with _refusals():
                self._client.remove_container(container, force=True)
        except EngineNotFound:
            return False
        except EngineRefused as exc:
            if exc.status != 409:
                raise
            deadline = time.monotonic() + settle_seconds
            while self.inspect_container(container) is not None:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
            return False
        return True

    def wait(self, container: str, timeout: Optional[int] = None) -> Optional[int]:
        """The exit code of ``container`` once it stopped; None when ``timeout`` seconds passed
        first. Without ``timeout`` the client's own timeout applies, and ends the wait as a
        lost connection would (the exception passes through)."""
        started = time.time()
        try:
            with _refusals():
                status = self._client.wait(container, timeout=timeout)
        except RequestException:  # the SDK's documented ReadTimeout (a ConnectionError on some transports)
            if timeout is None or time.time() - started < timeout:
                raise  # not the timeout: the connection broke, which the runner reports
            return None
        return status.get("StatusCode")

    def logs(self, container: str) -> Iterator[bytes]:
        """What ``container`` wrote on stdout and stderr, in the order written, as it comes."""
        with _refusals():
            yield from self._client.logs(container, stdout=True, stderr=True, stream=True, follow=False)

    def attach_socket(self, container: str, stdin: bool) -> Any:
        """A socket on the multiplexed stdout and stderr of ``container`` (and its stdin, with
        ``stdin``); see raw_socket, socket_reader and close_socket."""
        params = {"stdout": 1, "stderr": 1, "stream": 1}
        if stdin:
            params["stdin"] = 1
        with _refusals():
            return self._client.attach_socket(container, params=params)

    def exec_create(self, container: str, command: Sequence[str], user: str, workdir: Optional[str],
                    environment: Optional[Dict[str, str]]) -> str:
        """Set up ``command`` to run in ``container`` with its output kept; return the exec's id."""
        with _refusals():
            return self._client.exec_create(
                container, command, stdout=True, stderr=True, user=user, workdir=workdir, environment=environment)["Id"]

    def exec_start(self, exec_id: str) -> Any:
        """Start the exec; return a socket on its multiplexed output (as attach_socket)."""
        with _refusals():
            return self._client.exec_start(exec_id, socket=True)

    def exec_inspect(self, exec_id: str) -> Dict[str, Any]:
        with _refusals():
            return self._client.exec_inspect(exec_id)

    # -- images --------------------------------------------------------------------------

    def has_image(self, image: str) -> bool:
        return _or_none(lambda: self._client.inspect_image(image)) is not None

    def pull(self, image: str) -> None:
        """Pull ``image`` (tag ``latest`` when it names none) and check that the engine has it
        now: a pull can fail in its answer's stream, where the SDK does not look."""
        repository, tag = parse_repository_tag(image)
        with _refusals():
            self._client.pull(repository, tag=tag or "latest")
            self._client.inspect_image(image)

    # -- volumes -------------------------------------------------------------------------

    def volumes(self, label_filters: Sequence[str] = ()) -> List[Dict[str, Any]]:
        """The engine's descriptions of all volumes, or of those matching every label filter
        (``key`` or ``key=value``)."""
        with _refusals():
            answer = self._client.volumes(filters={"label": list(label_filters)} if label_filters else None)
        return (answer or {}).get("Volumes") or []

    def inspect_volume(self, name: str) -> Optional[Dict[str, Any]]:
        """The engine's description of volume ``name``, or None when there is none."""
        return _or_none(lambda: self._client.inspect_volume(name))

    def create_volume(self, name: str, driver: str, driver_opts: Optional[Dict[str, str]], labels: Optional[Dict[str, str]]) -> None:
        with _refusals():
            self._client.create_volume(name=name, driver=driver, driver_opts=driver_opts or None, labels=labels or None)

    def remove_volume(self, name: str) -> None:
        """Remove volume ``name`` (nothing when it is gone already)."""
        try:
            with _refusals():
                self._client.remove_volume(name)
        except EngineNotFound:
            pass


# -- the sockets of attach and exec streams ------------------------------------------------


def close_socket(sock: Any) -> None:
    """Close the attach connection for good. The SDK's wrapper alone leaves the connection
    open while other objects refer to it; the engine would then block writing a stopped
    helper's output to it, and its removal would hang."""
    raw = raw_socket(sock)
    if raw is None:  # closed already
        return
    try:
        raw.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer
    for closable in (sock, raw):
        try:
            closable.close()
        except OSError:
            pass


def raw_socket(sock: Any) -> Any:
    """The socket under the SDK's SocketIO wrapper (unix and plain TCP), or the socket itself."""
    return getattr(sock, "_sock", sock)


def socket_reader(sock: Any) -> Callable[[int], bytes]:
    """A ``read(size)`` function over an attach or exec socket, for demultiplex()."""

    def read(size: int) -> bytes:
        while True:
            data = socket_read(sock, size)
            if data is not None:  # None: an interrupted call, try again
                return data

    return read


def parse_docker_time(value: Optional[str]) -> Optional[int]:
    """Seconds since the epoch for an RFC 3339 time from the API, or None if unset."""
    if not value or value.startswith("0001-"):
        return None
    stamp = value.split(".")[0].rstrip("Z")
    try:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
