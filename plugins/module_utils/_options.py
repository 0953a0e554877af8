# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The options every engine module shares, as typed values: the connection, the helper
containers, the guard around live containers (consistency) and decryption; and those of
backup_verify, which two operations read (a backup directory, an off-host target).

A module's parameters are read once, at the top (``from_params``), into these and into the
options of its operation (``BackupOptions`` in _backup_ops, and so on); below that, every
function takes the values it uses. Pure logic: no Ansible, no Docker SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Tuple

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_STOP_TIMEOUT = 60
DEFAULT_LOCK_TIMEOUT = 300
DEFAULT_LOCK_EXPIRY = 6 * 3600

# The options that connect to a second engine (volume_copy's destination) under a prefix
# such as ``dest_``: all of them but the address fall back to the unprefixed option.
SECOND_ENGINE_OPTIONS = ("tls", "validate_certs", "ca_path", "client_cert", "client_key", "api_version", "timeout")

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Connection:
    """How to reach one Docker engine (the doc fragment ``persist.docker._docker``)."""

    docker_host: str = DEFAULT_DOCKER_HOST
    tls: bool = False
    validate_certs: bool = False
    ca_path: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    api_version: str = "auto"
    timeout: Optional[int] = None

    @classmethod
    def from_params(cls, params: Params, prefix: str = "") -> "Connection":
        """The connection of the module's options; with ``prefix`` (``dest_``), that of a
        second engine: each ``PREFIX<option>`` that is set, else the unprefixed option (the
        address included: without ``PREFIXdocker_host`` it is the same engine)."""

        def value(name: str) -> Any:
            chosen = params.get(prefix + name) if prefix else None
            return params.get(name) if chosen is None else chosen

        return cls(
            docker_host=value("docker_host") or DEFAULT_DOCKER_HOST,
            tls=bool(value("tls")),
            validate_certs=bool(value("validate_certs")),
            ca_path=value("ca_path"),
            client_cert=value("client_cert"),
            client_key=value("client_key"),
            api_version=value("api_version") or "auto",
            timeout=value("timeout"),
        )


@dataclass(frozen=True)
class Helper:
    """The helper containers that read and write volume data (image, pull policy, transport)."""

    image: str
    pull: str = "missing"
    transport: str = "auto"

    @classmethod
    def from_params(cls, params: Params) -> "Helper":
        return cls(image=params["helper_image"], pull=params["helper_pull"], transport=params["helper_transport"])


@dataclass(frozen=True)
class ConsistencyOptions:
    """What guards the data work against live containers: the containers policy, pre- and
    post-commands (hook dicts, see _hooks), the lock, and what to do with an interrupted
    restore found on the way (the doc fragment ``persist.docker._docker.consistency``).

    The defaults are those of a migration (the volume module has no such options: it
    refuses containers that reference the volume before it starts, so only the lock matters).
    """

    containers: Optional[str] = None
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    pre_commands: Tuple[Mapping[str, Any], ...] = ()
    post_commands: Tuple[Mapping[str, Any], ...] = ()
    lock_timeout: int = DEFAULT_LOCK_TIMEOUT
    lock_expiry: int = DEFAULT_LOCK_EXPIRY
    recovery: str = "finish"

    @classmethod
    def from_params(cls, params: Params) -> "ConsistencyOptions":
        return cls(
            containers=params.get("containers"),
            stop_timeout=params["stop_timeout"],
            pre_commands=tuple(params.get("pre_commands") or ()),
            post_commands=tuple(params.get("post_commands") or ()),
            lock_timeout=params["lock_timeout"],
            lock_expiry=params["lock_expiry"],
            recovery=params["recovery"],
        )

    def without_commands(self) -> "ConsistencyOptions":
        """This guard with no pre- or post-commands (the destination engine's of a copy:
        the commands run once, on the source's engine)."""
        return replace(self, pre_commands=(), post_commands=())

    def commands(self, phase: str) -> Tuple[Mapping[str, Any], ...]:
        """The hooks of ``phase`` (``pre`` or ``post``)."""
        return self.pre_commands if phase == "pre" else self.post_commands


@dataclass(frozen=True)
class VolumeSettings:
    """The driver, driver options and labels a task gives for a volume it may create
    (volume_restore's ``volume_*``, volume_copy's ``dest_*``); None where not given, so that
    the setting is taken from the backup's record or the source volume (_copy_rules)."""

    driver: Optional[str] = None
    driver_opts: Optional[Mapping[str, Any]] = None
    labels: Optional[Mapping[str, Any]] = None

    @classmethod
    def from_params(cls, params: Params, prefix: str) -> "VolumeSettings":
        return cls(driver=params.get(prefix + "driver"), driver_opts=params.get(prefix + "driver_opts"), labels=params.get(prefix + "labels"))


@dataclass(frozen=True)
class WriteOptions:
    """How volume_restore and volume_copy write their target volume: ``mode`` (replace or
    merge), whether a missing one is created (``create``, with ``new_volume``'s settings where
    given) and whether special files and privilege bits may be written (``allow_special``)."""

    mode: str = "replace"
    create: bool = True
    new_volume: VolumeSettings = VolumeSettings()
    allow_special: bool = False

    @classmethod
    def from_params(cls, params: Params, prefix: str) -> "WriteOptions":
        """``prefix`` names the new volume's settings: ``volume_`` (restore), ``dest_`` (copy)."""
        return cls(mode=params["mode"], create=params["create"], new_volume=VolumeSettings.from_params(params, prefix),
                   allow_special=params["allow_special"])


@dataclass(frozen=True)
class Decryption:
    """The age identities that open encrypted archives (``decrypt_identity`` or
    ``decrypt_identity_file``; see _encryption.decryption_argument_spec)."""

    identity: Optional[str] = None
    identity_file: Optional[str] = None

    @classmethod
    def from_params(cls, params: Params) -> "Decryption":
        return cls(identity=params.get("decrypt_identity"), identity_file=params.get("decrypt_identity_file"))

    @property
    def given(self) -> bool:
        return bool(self.identity or self.identity_file)


@dataclass(frozen=True)
class VerifyOptions:
    """The options of backup_verify (see the module's documentation): of a backup directory
    or archive (``path``, _verify_ops), or of the copies on an off-host ``target`` (a target
    dict, _offsite_remote)."""

    path: Optional[str]
    target: Optional[Mapping[str, Any]]
    helper: Helper
    volume: Optional[str] = None
    select: str = "latest"
    allow_special: bool = False
    test_restore: bool = False
    probe: Optional[Mapping[str, Any]] = None
    decryption: Decryption = Decryption()

    @classmethod
    def from_params(cls, params: Params) -> "VerifyOptions":
        return cls(
            path=params.get("path"), target=params.get("target"), helper=Helper.from_params(params),
            volume=params.get("volume"), select=params["select"], allow_special=params["allow_special"],
            test_restore=params["test_restore"], probe=params.get("probe"), decryption=Decryption.from_params(params),
        )


def strings(values: Any) -> Tuple[str, ...]:
    """A list option (``exclude``, ``encrypt_recipients``) as a tuple, none given as ()."""
    return tuple(values or ())
