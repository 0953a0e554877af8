# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""What is on an off-host target, what to send to it and what its retention deletes (pure
logic: no Ansible, no boto3, no subprocess; the backends hand in what they listed).

A copy on a target is an archive and its sidecar under the same names as in the backup
directory. It is complete when its sidecar is there and describes it: the sidecar is sent
last, after the archive was checked on the far side, so a reader of the target never sees
a sidecar whose archive is incomplete. The sidecar on the target is as untrusted as a local
one: it is parsed with the same rules and a copy whose sidecar lies is damaged.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Callable, Dict, Iterable, List, Literal, Mapping, Optional, Set, Tuple, Union

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import (
    FORMAT_VERSION,
    REQUIRED_FIELDS,
    SIDECAR_SUFFIX,
    MetadataError,
    created_problem,
    parse_created,
)
from ansible_collections.persist.docker.plugins.module_utils._atomic import TEMP_PREFIX
from ansible_collections.persist.docker.plugins.module_utils._compression import compression_of
from ansible_collections.persist.docker.plugins.module_utils._retention import RetentionPolicy, plan

# A sidecar is a few KiB; a bigger object under a sidecar's name is not read.
SIDECAR_LIMIT = 1 << 20


def temporary_name(name: str) -> str:
    """The name a copy has on the target until it is checked (hidden, fixed per archive, so
    that a transfer killed half way is resumed by the next run)."""
    return TEMP_PREFIX + name


def is_archive_name(name: str) -> bool:
    return not name.startswith(".") and "/" not in name and compression_of(name) is not None


def parse_sidecar(data: Optional[bytes], where: str) -> Dict[str, Any]:
    """The metadata of sidecar bytes ``data`` read from ``where``; MetadataError when they
    cannot be trusted (the rules of _archive_meta.read_metadata)."""
    if data is None:
        raise MetadataError("sidecar %s is larger than %d bytes or cannot be read" % (where, SIDECAR_LIMIT))
    try:
        metadata = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise MetadataError("sidecar %s cannot be read: %s" % (where, exc))
    if not isinstance(metadata, dict):
        raise MetadataError("sidecar %s does not hold a JSON object" % where)
    problems = ["lacks %s" % field for field in REQUIRED_FIELDS if field not in metadata]
    if not problems:
        problems += ["has malformed %s" % field for field in ("volume", "archive", "tree") if not isinstance(metadata[field], dict)]
        problems += ["has malformed created"] if not isinstance(metadata["created"], str) else []
    if not problems and metadata["format_version"] != FORMAT_VERSION:
        problems.append("has format version %r; this version of persist.docker reads version %d" % (metadata["format_version"], FORMAT_VERSION))
    if problems:
        raise MetadataError("sidecar %s %s" % (where, ", ".join(problems)))
    return metadata


def describe_remote(
    name: str, size: int, mtime: float, sidecar_data: Union[bytes, None, Literal[False]], where: Callable[[str], str], now: float,
) -> Dict[str, Any]:
    """The listing entry of the copy ``name`` on a target (the shape of a scan_directory
    entry, with ``name``, ``size``, ``mtime`` and ``sidecar_data``); ``sidecar_data`` is
    False when no sidecar is there, None when it was too big to read."""
    entry: Dict[str, Any] = dict(
        name=name, path=where(name), sidecar=where(name + SIDECAR_SUFFIX), status="complete", reason=None, volume=None,
        created=None, metadata=None, size=size, mtime=mtime, sidecar_data=sidecar_data)
    if sidecar_data is False:
        entry.update(status="incomplete", reason="no metadata sidecar: the copy did not finish (or is being sent)", sidecar_data=None)
        return entry
    try:
        metadata = parse_sidecar(sidecar_data, entry["sidecar"])
        parse_created(metadata["created"])
        if not isinstance(metadata["volume"].get("name"), str) or not metadata["volume"]["name"]:
            raise MetadataError("sidecar %s names no volume (volume.name)" % entry["sidecar"])
    except (MetadataError, ValueError) as exc:
        entry.update(status="damaged", reason=str(exc))
        return entry
    entry.update(metadata=metadata, volume=metadata["volume"]["name"], created=metadata["created"])
    if size != metadata["archive"].get("size"):
        entry.update(status="damaged", damage="size", reason="the copy is %d bytes, its sidecar says %s" % (size, metadata["archive"].get("size")))
        return entry
    problem = created_problem(name, metadata["created"], mtime, now)
    if problem:
        entry.update(status="damaged", damage="created", reason=problem)
    return entry


class RemoteListing:
    """Everything in a target's directory (or under its prefix) that is ours.

    ``entries``: the copies, newest first (as scan_directory orders them); ``temporaries``:
    names of copies being sent or left by killed transfers; ``orphans``: sidecars without
    their archive. Other names are not ours and are never touched."""

    def __init__(self, files: Mapping[str, Tuple[int, float]], sidecars: Mapping[str, Optional[bytes]], where: Callable[[str], str], now: float) -> None:
        """``files``: {name: (size, mtime)}; ``sidecars``: {archive name: bytes or None}."""
        self.entries: List[Dict[str, Any]] = []
        self.temporaries = sorted(name for name in files if name.startswith(TEMP_PREFIX))
        self.orphans = sorted(
            name for name in files
            if name.endswith(SIDECAR_SUFFIX) and is_archive_name(name[:-len(SIDECAR_SUFFIX)]) and name[:-len(SIDECAR_SUFFIX)] not in files
        )
        for name, (size, mtime) in files.items():
            if not is_archive_name(name):
                continue
            sidecar: Union[bytes, None, Literal[False]] = sidecars.get(name, None) if name + SIDECAR_SUFFIX in files else False
            self.entries.append(describe_remote(name, size, mtime, sidecar, where, now))
        self.entries.sort(key=lambda item: (item["created"] or "", item["name"]), reverse=True)
        self.by_name = dict((entry["name"], entry) for entry in self.entries)

    def complete(self, volume: Optional[str] = None) -> List[Dict[str, Any]]:
        return [entry for entry in self.entries if entry["status"] == "complete" and volume in (None, entry["volume"])]


def of_volume(entry: Mapping[str, Any], volume: Optional[str]) -> bool:
    """Whether copy ``entry`` is of ``volume`` (any, when None); one whose sidecar cannot say
    counts when its name starts with the volume's, as the default name template makes it."""
    if volume is None:
        return True
    return entry["volume"] == volume if entry["volume"] is not None else entry["name"].startswith(volume)


def choose(local_entries: Iterable[Dict[str, Any]], select: str, volume: Optional[str] = None) -> List[Dict[str, Any]]:
    """The complete local backups to have on the target, newest first: the latest of each
    volume (``select`` latest) or all (``missing``), of ``volume`` only when given."""
    chosen = []
    seen = set()
    for entry in local_entries:
        if entry["status"] != "complete" or (volume is not None and entry["volume"] != volume):
            continue
        if select == "latest" and entry["volume"] in seen:
            continue
        seen.add(entry["volume"])
        chosen.append(entry)
    return chosen


def decide(candidate: Mapping[str, Any], remote: Optional[Mapping[str, Any]]) -> Tuple[str, Optional[str]]:
    """What to do with local backup ``candidate`` (a scan_directory entry with the bytes of
    its sidecar in ``sidecar_data``) given the target's ``remote`` entry of the same name
    (None when absent): ``("present", None)``, ``("send", why)`` or ``("conflict", why)``."""
    if remote is None:
        return "send", "not on the target"
    same_sidecar = remote["sidecar_data"] == candidate["sidecar_data"]
    if remote["status"] == "incomplete":
        return "send", "the target holds its archive without the sidecar (an earlier copy did not finish)"
    if not same_sidecar:
        return "conflict", (
            "the target holds another backup under the same name (its sidecar differs from the local one); it was left "
            "alone. Give each Docker host a target path or prefix of its own, or remove the copy on the target by hand")
    if remote["status"] == "damaged":
        return "send", "the copy on the target is damaged: %s" % remote["reason"]
    return "present", None


def _dated(items: Iterable[Mapping[str, Any]]) -> Dict[str, List[Tuple[str, datetime.datetime]]]:
    """``{volume: [(name, created datetime)]}`` of listing entries."""
    grouped: Dict[str, List[Tuple[str, datetime.datetime]]] = {}
    for item in items:
        grouped.setdefault(item["volume"], []).append((item["name"], parse_created(item["created"])))
    return grouped


def _deleted(complete: Iterable[Mapping[str, Any]], policy: RetentionPolicy) -> Set[str]:
    """The names the policy deletes among ``complete`` entries (per volume)."""
    deleted = set()
    for backups in _dated(complete).values():
        deleted.update(plan(backups, policy).deleted)
    return deleted


class RetentionOnTarget:
    """The GFS policy applied per volume to the complete copies on a target.

    Deleting is monotone: a copy the policy deletes among the copies already there is
    deleted whatever is added, so those go before anything is sent (room on a full target);
    the rest is decided again from what was really sent. A local backup the policy would
    delete at once is not sent at all (``skipped``), or the next run would send it again."""

    def __init__(self, policy: Optional[RetentionPolicy], remote_complete: Iterable[Dict[str, Any]], candidates: Iterable[Dict[str, Any]]) -> None:
        self.policy = policy
        self.remote = list(remote_complete)
        names = set(item["name"] for item in self.remote)
        additions = [item for item in candidates if item["name"] not in names]
        with_all = _deleted(self.remote + additions, policy) if policy else set()
        self.skipped = set(item["name"] for item in additions if item["name"] in with_all)
        self.before_sending = _deleted(self.remote, policy) if policy else set()

    def outcome(self, sent: Iterable[Mapping[str, Any]]) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
        """``(kept, deleted)`` result items once ``sent`` (listing-like entries of the
        copies that reached the target) are there: every copy the policy keeps with its
        reasons, every copy it deletes with the reason."""
        if not self.policy:
            return [], []
        items = dict((item["name"], item) for item in self.remote)
        items.update((item["name"], item) for item in sent)
        kept, deleted = [], []
        why = "kept by no rule of the policy (%s)" % self.policy.describe()
        for volume, backups in sorted(_dated(items.values()).items()):
            decision = plan(backups, self.policy)
            kept += [dict(archive=name, volume=volume, created=items[name]["created"], reasons=reasons) for name, reasons in decision.kept]
            deleted += [dict(archive=name, volume=volume, created=items[name]["created"], reason=why) for name in decision.deleted]
        return kept, deleted
