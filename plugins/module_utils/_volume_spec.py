# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Volume descriptions, differences and mount tables (pure logic, no Ansible, no Docker SDK).

Functions here take the plain dicts the Docker API returns and give back plain dicts,
so they can be tested on their own.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, overload

# Container states in which a container may be using the files of its volumes.
ACTIVE_STATES = frozenset(["running", "paused", "restarting"])


# The names the local driver accepts (the engine refuses others when creating).
_LOCAL_NAME = re.compile(r"\A[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")


def valid_local_name(name: str) -> bool:
    """Whether the engine's local driver accepts ``name`` as a volume name."""
    return bool(_LOCAL_NAME.match(name))


_PLAIN_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,199}")


def per_volume_name(prefix: str, volume: str) -> str:
    """The name of an engine object (a container) that belongs to ``volume``: the prefix and
    the volume's name when it is an ordinary name, else a hash of it."""
    if _PLAIN_NAME.fullmatch(volume):
        return prefix + volume
    return prefix + hashlib.sha256(volume.encode("utf-8")).hexdigest()[:32]


def describe_volume(inspect: Mapping[str, Any]) -> Dict[str, Any]:
    """The user-facing description of a volume from its inspect (or list) entry."""
    return {
        "name": inspect["Name"],
        "exists": True,
        "driver": inspect.get("Driver") or "local",
        "driver_opts": dict(inspect.get("Options") or {}),
        "labels": dict(inspect.get("Labels") or {}),
        "mountpoint": inspect.get("Mountpoint"),
        "scope": inspect.get("Scope"),
        "created": inspect.get("CreatedAt"),
    }


def missing_volume(name: str) -> Dict[str, Any]:
    """The description of a volume that does not exist."""
    return {"name": name, "exists": False}


@overload
def stringify_options(options: None) -> None:
    ...


@overload
def stringify_options(options: Mapping[Any, Any]) -> Dict[str, str]:
    ...


def stringify_options(options: Optional[Mapping[Any, Any]]) -> Optional[Dict[str, str]]:
    """Docker stores driver options and labels as strings; compare them the same way."""
    if options is None:
        return None
    return dict((str(key), _as_string(value)) for key, value in options.items())


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def volume_differences(
    current: Mapping[str, Any], driver: Optional[str], driver_opts: Optional[Mapping[Any, Any]], labels: Optional[Mapping[Any, Any]],
) -> List[Dict[str, Any]]:
    """List what an existing volume would need to change to match the request.

    ``current`` is a ``describe_volume`` dict. ``driver_opts`` and ``labels`` of None are
    not compared. ``driver_opts`` must match exactly; the requested ``labels`` must be
    present with the same values, and labels the volume has beyond them (for example
    those Compose adds) are not a difference. Each difference is a dict with ``option``,
    ``key`` (for a single option or label, else None), ``current`` and ``wanted``.
    """
    differences = []
    if driver is not None and current["driver"] != driver:
        differences.append(_difference("driver", None, current["driver"], driver))
    if driver_opts is not None:
        wanted = stringify_options(driver_opts)
        have = current["driver_opts"]
        for key in sorted(set(wanted) | set(have)):
            if wanted.get(key) != have.get(key):
                differences.append(_difference("driver_opts", key, have.get(key), wanted.get(key)))
    if labels is not None:
        wanted = stringify_options(labels)
        have = current["labels"]
        for key in sorted(wanted):
            if wanted[key] != have.get(key):
                differences.append(_difference("labels", key, have.get(key), wanted[key]))
    return differences


def _difference(option: str, key: Optional[str], current: Any, wanted: Any) -> Dict[str, Any]:
    return {"option": option, "key": key, "current": current, "wanted": wanted}


def format_differences(differences: Iterable[Mapping[str, Any]]) -> str:
    """One readable line per difference, for error messages."""
    lines = []
    for diff in differences:
        where = diff["option"] if diff["key"] is None else "%s[%s]" % (diff["option"], diff["key"])
        lines.append(
            "%s is %s, wanted %s" % (where, _shown(diff["current"]), _shown(diff["wanted"]))
        )
    return "; ".join(lines)


def _shown(value: Any) -> str:
    return "(unset)" if value is None else repr(value)


def mount_table(container_summaries: Iterable[Mapping[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """Map each volume name to the containers that mount it.

    ``container_summaries`` is the API's container list (``all=True``). Every entry of the
    result says the container's name, id, state, whether it is active (running, paused or
    restarting), whether the mount is read-only, where it is mounted, and its labels.
    """
    table: Dict[str, List[Dict[str, Any]]] = {}
    for summary in container_summaries:
        names = summary.get("Names") or []
        name = names[0].lstrip("/") if names else summary["Id"][:12]
        state = summary.get("State") or "unknown"
        for mount in summary.get("Mounts") or []:
            if mount.get("Type") != "volume" or not mount.get("Name"):
                continue
            table.setdefault(mount["Name"], []).append(
                {
                    "name": name,
                    "id": summary["Id"],
                    "state": state,
                    "running": state in ACTIVE_STATES,
                    "read_only": not mount.get("RW", True),
                    "mount_path": mount.get("Destination"),
                    "labels": dict(summary.get("Labels") or {}),
                }
            )
    for users in table.values():
        users.sort(key=lambda user: (user["name"], user["mount_path"] or ""))
    return table


def bind_sources(container_summaries: Iterable[Mapping[str, Any]]) -> List[Tuple[str, str]]:
    """(container name, host path) for every bind mount in the API's container list."""
    found = []
    for summary in container_summaries:
        names = summary.get("Names") or []
        name = names[0].lstrip("/") if names else summary["Id"][:12]
        for mount in summary.get("Mounts") or []:
            if mount.get("Type") == "bind" and mount.get("Source"):
                found.append((name, mount["Source"]))
    return found


def describe_users(users: Iterable[Mapping[str, Any]]) -> str:
    """A short readable list of the containers in ``users`` (from ``mount_table``)."""
    return ", ".join(
        "%s (%s, %s at %s)"
        % (user["name"], user["state"], "ro" if user["read_only"] else "rw", user["mount_path"])
        for user in users
    )
