# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""What backup_verify reads, and how it reports it (pure logic).

Picks the archives of a directory listing (``select`` latest or all, optionally one
volume), names and configures scratch volumes, and builds per-archive verdicts and the
summary of a failed run. Nothing here talks to Docker or Ansible.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.persist.docker.plugins.module_utils._storage import existing_storage

SCRATCH_LABEL = "persist.docker.scratch"
SCRATCH_PREFIX = "persist-verify-"
CHECKS = ("sha256", "tree_digest", "safety", "test_restore", "probe")
# What each check a RestoreError of verify_archive names leaves for the others: the
# safety rules run as members are read, the sha256 and then the tree digest are compared
# once the whole archive is read.
_AFTER_FAILED_READ = {
    "safety": {"safety": "failed"},
    "read": {"tree_digest": "failed"},
    "decrypt": {"tree_digest": "failed"},
    "sha256": {"safety": "passed", "sha256": "failed"},
    "tree_digest": {"safety": "passed", "sha256": "passed", "tree_digest": "failed"},
}


# A name from the default template, {volume}-{timestamp}, and a suffix.
_DEFAULT_NAME = re.compile(r"\A(.+)-[0-9]{8}T[0-9]{6}Z\.tar(\.[a-z]+)?\Z")


def _owner(entry: Mapping[str, Any], volumes: Iterable[str]) -> Optional[str]:
    """The volume an archive belongs to: the one its sidecar records; else the one its name
    gives when it has the default name template's form; else the longest known volume name
    its file name starts with; else None."""
    if entry["volume"] is not None:
        return entry["volume"]
    name = os.path.basename(entry["path"])
    default = _DEFAULT_NAME.match(name)
    if default:
        return default.group(1)
    candidates = [volume for volume in volumes if name.startswith(volume)]
    return max(candidates, key=len) if candidates else None


def _shown(entry: Mapping[str, Any]) -> str:
    return "%s (%s: %s)" % (os.path.basename(entry["path"]), entry["status"], entry["reason"])


def select_archives(entries: Sequence[Dict[str, Any]], select: str, volume: Optional[str] = None) -> Tuple[List[Dict[str, Any]], List[str]]:
    """``(chosen, warnings)`` for a ``scan_directory`` listing (newest first).

    ``chosen`` is a list of dicts ``entry`` (a listing entry; None when there is no archive
    at all), ``volume``, ``refused`` (why it fails without being read, or None: incomplete
    and damaged archives, a volume without a complete backup) and ``warnings``.
    With ``select`` ``all`` every archive is chosen. With ``latest`` the newest complete
    backup of each volume is chosen; incomplete or damaged archives of that volume that are
    newer than it (or undated) are named in its warnings. ``warnings`` are those that
    concern no chosen archive (files whose volume cannot be told).
    """
    known = set(entry["volume"] for entry in entries if entry["volume"] is not None)
    if volume is not None:
        known.add(volume)
    groups: Dict[Optional[str], List[Dict[str, Any]]] = {}
    for entry in entries:
        owner = _owner(entry, known)
        if volume is not None and owner != volume:
            continue
        groups.setdefault(owner, []).append(entry)

    if select == "all":
        chosen = []
        for entry in entries:
            owner = _owner(entry, known)
            if volume is None or owner == volume:
                chosen.append(_chosen(entry, owner, None if entry["status"] == "complete" else _refusal(entry)))
        if volume is not None and not chosen:
            chosen.append(_chosen(None, volume, "there is no backup of volume %s" % volume))
        return chosen, []

    chosen = []
    warnings: List[str] = []
    for owner in sorted(groups, key=lambda name: (name is None, name or "")):
        group = groups[owner]
        if owner is None:
            warnings.extend(
                "%s was not verified: it has no readable sidecar and its name matches no volume" % _shown(entry)
                for entry in group
            )
            continue
        latest = next((entry for entry in group if entry["status"] == "complete"), None)
        if latest is None:
            chosen.append(_chosen(group[0], owner, "there is no complete backup of volume %s; the newest archive %s is %s: %s" % (
                owner, os.path.basename(group[0]["path"]), group[0]["status"], group[0]["reason"])))
            continue
        item = _chosen(latest, owner, None)
        newer = [entry for entry in group if entry["status"] != "complete" and (entry["created"] is None or entry["created"] > latest["created"])]
        if newer:
            item["warnings"].append(
                "volume %s has newer or undated archives that are not complete backups, so the latest complete one, "
                "%s, was verified instead: %s" % (owner, os.path.basename(latest["path"]), "; ".join(_shown(entry) for entry in newer))
            )
        chosen.append(item)
    if volume is not None and not chosen:
        chosen.append(_chosen(None, volume, "there is no backup of volume %s" % volume))
    return chosen, warnings


def single_archive(entry: Mapping[str, Any], volume: Optional[str] = None) -> Dict[str, Any]:
    """The item of one archive given by its path (a ``describe_archive`` entry); with
    ``volume``, the archive must be a backup of that volume."""
    refused = None if entry["status"] == "complete" else _refusal(entry)
    if refused is None and volume is not None and entry["volume"] != volume:
        refused = "the archive is a backup of volume %s, not of %s" % (entry["volume"], volume)
    return _chosen(entry, entry["volume"] or volume, refused)


def _chosen(entry: Optional[Mapping[str, Any]], volume: Optional[str], refused: Optional[str]) -> Dict[str, Any]:
    return {"entry": entry, "volume": volume, "refused": refused, "warnings": []}


def _refusal(entry: Mapping[str, Any]) -> str:
    if entry["status"] == "incomplete":
        return "the archive is incomplete: %s" % entry["reason"]
    return "the archive is damaged: %s" % entry["reason"]


def new_verdict(item: Mapping[str, Any], path: str) -> Dict[str, Any]:
    """The verdict of a chosen item before any check ran; ``path`` stands in for a missing entry."""
    entry = item["entry"]
    verdict = {
        "path": entry["path"] if entry else path,
        "volume": item["volume"],
        "created": entry["created"] if entry else None,
        "status": "passed",
        "reason": None,
        "checks": dict((check, "not_run") for check in CHECKS),
        "skipped": {},
        "warnings": list(item["warnings"]),
    }
    if item["refused"]:
        fail(verdict, item["refused"])
        if entry is not None and entry.get("damage") == "size":
            verdict["checks"]["sha256"] = "failed"  # its size already differs from the sidecar's
    return verdict


def fail(verdict: Dict[str, Any], reason: str, **checks: str) -> None:
    """Mark ``verdict`` failed for ``reason``; ``checks`` set the states of named checks."""
    verdict["status"] = "failed"
    verdict["reason"] = reason
    verdict["checks"].update(checks)


def fail_read(verdict: Dict[str, Any], check: str, reason: str) -> None:
    """Mark ``verdict`` failed by the full read; ``check`` as named by verify_archive."""
    fail(verdict, reason, **_AFTER_FAILED_READ[check])


def skip(verdict: Dict[str, Any], check: str, reason: str) -> None:
    verdict["checks"][check] = "skipped"
    verdict["skipped"][check] = reason


def summary(verdicts: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """The message of a run in which some archive failed (None when all passed)."""
    failed = [verdict for verdict in verdicts if verdict["status"] == "failed"]
    if not failed:
        return None
    return "%d of %d archive(s) failed verification: %s" % (
        len(failed), len(verdicts), " | ".join("%s: %s" % (verdict["path"], verdict["reason"]) for verdict in failed))


_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_.-]+")


def scratch_name(volume: Optional[str], token: str) -> str:
    """``persist-verify-<volume>-<token>``, with characters a volume name cannot hold replaced."""
    cleaned = _NOT_IN_NAME.sub("-", volume or "unknown").strip("-.") or "unknown"
    return "%s%s-%s" % (SCRATCH_PREFIX, cleaned[:64], token)


def scratch_driver(recorded: Mapping[str, Any]) -> Tuple[str, Dict[str, Any], Optional[str]]:
    """``(driver, driver_opts, note)`` for the scratch volume of a backup of ``recorded``
    (the sidecar's ``volume``): the recorded driver and options when they make storage of
    the scratch volume's own (the local driver, plain or tmpfs); otherwise (a bind mount,
    block device, network share, or a volume plugin, whose options the sidecar, which is
    untrusted, could point anywhere) a plain local volume, and ``note`` says so."""
    driver = recorded.get("driver") or "local"
    options = dict(recorded.get("driver_opts") or {})
    problem = existing_storage(driver, options)
    if problem:
        note = "the recorded settings of volume %s would not give the test restore storage of its own (%s), so it used a plain local volume" % (
            recorded.get("name"), problem)
        return "local", {}, note
    return driver, options, None


def tail(data: bytes, limit: int) -> Tuple[str, bool]:
    """``(text, truncated)``: the last ``limit`` bytes of ``data`` as text."""
    truncated = len(data) > limit
    return data[-limit:].decode("utf-8", "replace"), truncated
