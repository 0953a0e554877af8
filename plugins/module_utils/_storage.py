# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Where a volume's data lives, as its driver and options say (pure logic).

The local driver keeps a volume under the engine's data root unless its options mount
something: ``device`` with ``o=bind`` (a host directory), a block device, or a network share
(``type=nfs``/``cifs`` ...); ``type=tmpfs`` is new memory for every volume. Options recorded
in a sidecar are untrusted (whoever writes the backup directory writes them), and options
copied from another volume may name storage that is in use; these rules say when creating a
volume would reach existing storage, and when two volumes, or a volume and a host path
bind-mounted into a container, are the same files.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

_PRIVATE_TYPES = frozenset(["tmpfs"])
_PRIVATE_KEYS = frozenset(["type", "device", "o"])
MASK = "********"
# Option names (and sub-options of ``o``) whose values may be credentials.
_SECRET_NAME = re.compile(r"pass|secret|token|cred|key|auth|user", re.IGNORECASE)


def masked_options(options: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """Driver options with the values that may hold credentials replaced by MASK: options
    whose name looks like one (password, secret, token, key, credentials, username ...), and
    such ``name=value`` items inside ``o`` (``addr=...,username=u,password=p``)."""
    if not options:
        return dict(options or {})
    shown: Dict[str, Any] = {}
    for key, value in options.items():
        if _SECRET_NAME.search(str(key)):
            shown[key] = MASK
        elif key == "o" and isinstance(value, str):
            items = []
            for item in value.split(","):
                name, equals, _value = item.partition("=")
                items.append(name + "=" + MASK if equals and _SECRET_NAME.search(name) else item)
            shown[key] = ",".join(items)
        else:
            shown[key] = value
    return shown


def _shown(options: Mapping[str, Any], key: str) -> str:
    return "%s=%s" % (key, masked_options(options).get(key))


def existing_storage(driver: str, options: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why a volume created with ``driver`` and ``options`` would mount storage that exists
    apart from it (a sentence naming the option), or None when it gets storage of its own
    (the local driver without options, or a tmpfs). Any other driver is a plugin whose
    options may mean anything, so it counts as existing storage."""
    options = options or {}
    if driver != "local":
        return "the driver %s is a volume plugin, whose options may mount any storage" % driver
    if not options:
        return None
    kind = options.get("type")
    unknown = sorted(key for key in options if key not in _PRIVATE_KEYS)
    if unknown:
        return "the driver option %s is not one the local driver makes new storage with" % _shown(options, unknown[0])
    if kind in _PRIVATE_TYPES:
        return None
    if options.get("device"):
        return "the driver option %s mounts existing storage (%s)" % (
            _shown(options, "device"), "a host directory" if _binds(options) else "a device or network share")
    return "the driver option %s mounts a file system" % _shown(options, "type" if kind else "o")


def _binds(options: Mapping[str, Any]) -> bool:
    return "bind" in [item.strip() for item in (options.get("o") or "").split(",")] or options.get("type") == "none"


def storage_of(volume: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    """What ``volume`` (a describe_volume dict) mounts: ("path", host directory) for a bind,
    ("device", text) for a device or share, or None for storage of its own or unknown (a
    plugin driver)."""
    options = volume.get("driver_opts") or {}
    if volume.get("driver") != "local" or options.get("type") in _PRIVATE_TYPES or not options.get("device"):
        return None
    if _binds(options):
        return ("path", posixpath.normpath(options["device"]))
    address = [item for item in (options.get("o") or "").split(",") if item.strip().startswith("addr=")]
    return ("device", ",".join(address + [options["device"]]))


def _overlap(first: str, second: str) -> bool:
    """Whether two host paths are the same tree or one holds the other."""
    return first == second or first.startswith(second.rstrip("/") + "/") or second.startswith(first.rstrip("/") + "/")


def sharing(volume: Mapping[str, Any], others: Iterable[Mapping[str, Any]], bind_sources: Iterable[Tuple[str, str]]) -> Optional[str]:
    """How the storage of ``volume`` is shared: a sentence for the first other volume (of
    ``others``, describe_volume dicts) on the same storage, or host path bind-mounted into a
    container (``bind_sources``: (container name, host path) pairs) that overlaps it; None
    when nothing shares it."""
    mine = storage_of(volume)
    if mine is None:
        return None
    for other in others:
        if other["name"] == volume["name"]:
            continue
        theirs = storage_of(other)
        if theirs is None or theirs[0] != mine[0]:
            continue
        if theirs[1] == mine[1] or (mine[0] == "path" and _overlap(mine[1], theirs[1])):
            return "volume %s mounts %s, and volume %s mounts %s: they are the same files" % (
                volume["name"], mine[1], other["name"], theirs[1])
    if mine[0] == "path":
        for container, source in bind_sources:
            if _overlap(mine[1], posixpath.normpath(source)):
                return "volume %s mounts the host directory %s, and container %s bind-mounts %s" % (
                    volume["name"], mine[1], container, source)
    return None
