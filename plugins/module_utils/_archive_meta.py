# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Archive names, metadata sidecars and backup directory listings (pure logic).

An archive ``NAME.tar.zst`` is complete only when its sidecar ``NAME.tar.zst.json`` exists
and describes it: the sidecar is written last, so an archive without one is a backup that
did not finish. Nothing here talks to Docker or Ansible.
"""

from __future__ import annotations

import calendar
import datetime
import json
import os
import re
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ansible_collections.persist.docker.plugins.module_utils._atomic import TEMP_PREFIX
from ansible_collections.persist.docker.plugins.module_utils._compression import ENCRYPTED_SUFFIX, SUFFIXES, compression_of, encrypted_name
from ansible_collections.persist.docker.plugins.module_utils._errors import BackupDirectoryError
from ansible_collections.persist.docker.plugins.module_utils._storage import masked_options

FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".json"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
DEFAULT_NAME_TEMPLATE = "{volume}-{timestamp}"
REQUIRED_FIELDS = ("format_version", "volume", "created", "compression", "archive", "tree")
# A backup's creation time may come this much after its archive file was last written (a
# clock adjusted meanwhile), or after now (clocks of hosts that share a backup directory),
# before the sidecar counts as lying about it.
CREATED_AFTER_WRITE_SLACK = 3600
CREATED_FUTURE_SLACK = 86400
_NAME_TIMESTAMP = re.compile(r"\d{8}T\d{6}Z")
# A sidecar waits for its archive for microseconds; one alone this long was left by a kill.
ORPHAN_SIDECAR_GRACE = 600


class MetadataError(ValueError):
    """A sidecar is missing, unreadable or does not describe its archive."""


def render_name(template: str, volume: str, created: datetime.datetime, compression: str, encrypted: bool = False) -> str:
    """The archive file name for ``template`` (fields {volume} and {timestamp}), with the
    suffix of ``compression`` (and ENCRYPTED_SUFFIX when ``encrypted``).

    ``created`` is a UTC datetime. Raises ValueError for a template that names a directory,
    a hidden file, or an unknown field.
    """
    try:
        stem = template.format(volume=volume, timestamp=created.strftime(TIMESTAMP_FORMAT))
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            "name_template %r is not valid (%s); it may use {volume} and {timestamp}" % (template, exc)
        )
    if not stem or "/" in stem or stem.startswith(".") or "\0" in stem:
        raise ValueError(
            "name_template %r gives the file name %r; a name must be non-empty, must not start "
            "with '.' and must not contain '/'" % (template, stem)
        )
    return stem + SUFFIXES[compression] + (ENCRYPTED_SUFFIX if encrypted else "")


def parse_created(text: object) -> datetime.datetime:
    """The sidecar's ``created`` text as an aware UTC datetime; ValueError when it is not a
    time with a time zone (the collection writes ``2026-11-27T05:30:00Z``)."""
    if not isinstance(text, str):
        raise ValueError("its creation time %r is not a text" % (text,))
    try:
        created = datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ValueError("its creation time %r is not an ISO 8601 time" % text)
    if created.tzinfo is None or created.utcoffset() is None:
        raise ValueError("its creation time %r has no time zone" % text)
    return created.astimezone(datetime.timezone.utc)


def name_timestamp(file_name: str) -> Optional[datetime.datetime]:
    """The UTC time in an archive's name (the last ``{timestamp}`` field), or None."""
    found = _NAME_TIMESTAMP.findall(file_name)
    if not found:
        return None
    return datetime.datetime.strptime(found[-1], TIMESTAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)


def created_problem(path: str, created_text: object, mtime: float, now: float) -> Optional[str]:
    """Why the sidecar's creation time of archive ``path`` cannot be believed (a sentence),
    or None. It is checked against the time in the archive's name (when the name has one)
    and against the archive file's modification time and now: a backup is written after it
    starts. A sidecar that claims a later time would make retention keep it as the newest
    and delete backups that are really newer."""
    try:
        created = parse_created(created_text)
    except ValueError as exc:
        return "sidecar %s cannot be used: %s" % (sidecar_path(path), exc)
    stamp = name_timestamp(os.path.basename(path))
    if stamp is not None and stamp != created.replace(microsecond=0):
        return "its sidecar says it was created at %s, but its name says %s" % (created_text, stamp.strftime(TIMESTAMP_FORMAT))
    epoch = calendar.timegm(created.utctimetuple())
    if epoch > mtime + CREATED_AFTER_WRITE_SLACK:
        return "its sidecar says it was created at %s, after the archive file was last written (%s)" % (
            created_text, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime)))
    if epoch > now + CREATED_FUTURE_SLACK:
        return "its sidecar says it was created at %s, in the future" % created_text
    return None


def sidecar_path(archive_path: str) -> str:
    return archive_path + SIDECAR_SUFFIX


def dump_metadata(metadata: Mapping[str, Any]) -> bytes:
    return (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8")


def read_metadata(path: str) -> Dict[str, Any]:
    """The metadata in sidecar ``path``; MetadataError when it cannot be trusted."""
    try:
        with open(path, "rb") as sidecar:
            metadata = json.loads(sidecar.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise MetadataError("sidecar %s cannot be read: %s" % (path, exc))
    if not isinstance(metadata, dict):
        raise MetadataError("sidecar %s does not hold a JSON object" % path)
    missing = [field for field in REQUIRED_FIELDS if field not in metadata]
    if missing:
        raise MetadataError("sidecar %s lacks %s" % (path, ", ".join(missing)))
    malformed = [field for field in ("volume", "archive", "tree") if not isinstance(metadata[field], dict)]
    if not isinstance(metadata["created"], str):
        malformed.append("created")
    if malformed:
        raise MetadataError("sidecar %s has malformed %s" % (path, ", ".join(malformed)))
    if metadata["format_version"] != FORMAT_VERSION:
        raise MetadataError(
            "sidecar %s has format version %r; this version of persist.docker reads version %d"
            % (path, metadata["format_version"], FORMAT_VERSION)
        )
    return metadata


def scan_directory(directory: str) -> List[Dict[str, Any]]:
    """Every archive in ``directory`` with its status, newest first.

    Each entry: ``path``, ``sidecar``, ``status`` (``complete``, ``incomplete``: no sidecar,
    or ``damaged``: sidecar unreadable or size mismatch), ``reason``, ``volume``,
    ``created`` and ``metadata`` (None unless readable); a damaged entry with metadata has
    ``damage``: ``size`` (the file's size differs from the sidecar's) or ``created`` (its
    creation time disagrees with the name or the file, see created_problem). Temporary files
    of unfinished writes are not listed.
    """
    entries = []
    for entry in os.scandir(directory):
        name = entry.name
        if name.startswith(TEMP_PREFIX) or name.startswith(".") or compression_of(name) is None:
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        entries.append(describe_archive(entry.path))
    entries.sort(key=lambda item: (item["created"] or "", item["path"]), reverse=True)
    return entries


def orphan_sidecars(directory: str, older_than_seconds: float, now: Optional[float] = None) -> List[str]:
    """Sidecars in ``directory`` without their archive, older than ``older_than_seconds``:
    left by a backup killed between naming its sidecar and its archive."""
    now = time.time() if now is None else now
    orphans = []
    for entry in os.scandir(directory):
        archive = entry.path[:-len(SIDECAR_SUFFIX)]
        if (
            entry.name.endswith(SIDECAR_SUFFIX)
            and compression_of(archive) is not None
            and not entry.name.startswith(".")
            and not os.path.lexists(archive)
            and now - entry.stat(follow_symlinks=False).st_mtime > older_than_seconds
        ):
            orphans.append(entry.path)
    return sorted(orphans)


def describe_archive(path: str) -> Dict[str, Any]:
    """The listing entry of one archive (see ``scan_directory``)."""
    sidecar = sidecar_path(path)
    entry: Dict[str, Any] = dict(path=path, sidecar=sidecar, status="complete", reason=None, volume=None, created=None, metadata=None)
    if not os.path.exists(sidecar):
        entry.update(status="incomplete", reason="no metadata sidecar: the backup did not finish")
        return entry
    try:
        metadata = read_metadata(sidecar)
    except MetadataError as exc:
        entry.update(status="damaged", reason=str(exc))
        return entry
    entry.update(metadata=metadata, volume=metadata["volume"].get("name"), created=metadata["created"])
    info = os.stat(path)
    if info.st_size != metadata["archive"].get("size"):
        entry.update(status="damaged", damage="size", reason="archive is %d bytes, its sidecar says %s" % (info.st_size, metadata["archive"].get("size")))
        return entry
    problem = created_problem(path, metadata["created"], info.st_mtime, time.time())
    if problem:
        entry.update(status="damaged", damage="created", reason=problem)
        return entry
    problem = encryption_problem(path, metadata)
    if problem:
        entry.update(status="damaged", damage="encryption", reason=problem)
    return entry


def encryption(metadata: Mapping[str, Any]) -> Any:
    """The sidecar's record of the archive's encryption (``format``, ``recipients``), or None."""
    return metadata.get("encryption") or None


def encryption_problem(path: str, metadata: Mapping[str, Any]) -> Optional[str]:
    """Why the archive's name and its sidecar disagree about its encryption, or None."""
    recorded = encryption(metadata)
    if recorded is not None and (not isinstance(recorded, dict) or recorded.get("format") != "age"
                                 or not isinstance(recorded.get("recipients"), list)):
        return "its sidecar records an encryption this collection does not write (%r)" % (recorded,)
    named = encrypted_name(os.path.basename(path))
    if named and recorded is None:
        return "its name says it is encrypted (%s), its sidecar does not" % ENCRYPTED_SUFFIX
    if recorded is not None and not named:
        return "its sidecar says it is encrypted, but its name does not end in %s" % ENCRYPTED_SUFFIX
    return None


def latest_complete(entries: Iterable[Dict[str, Any]], volume: Optional[str]) -> Optional[Dict[str, Any]]:
    """The newest complete entry of ``volume`` in a ``scan_directory`` listing, or None."""
    for entry in entries:
        if entry["status"] == "complete" and entry["volume"] == volume:
            return entry
    return None


def summarize(path: str, metadata: Mapping[str, Any]) -> Dict[str, Any]:
    """The user-facing description of a complete archive from its sidecar's metadata."""
    return {
        "path": path,
        "sidecar": sidecar_path(path),
        "created": metadata["created"],
        "compression": metadata["compression"],
        "size": metadata["archive"]["size"],
        "sha256": metadata["archive"]["sha256"],
        "tree_digest": metadata["tree"]["digest"],
        "entries": metadata["tree"]["entries"],
        "bytes": metadata["tree"]["bytes"],
        "duration_seconds": metadata.get("duration_seconds"),
        "encrypted": encryption(metadata) is not None,
        "recipients": list((encryption(metadata) or {}).get("recipients") or []),
    }


def masked_metadata(metadata: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of sidecar ``metadata`` fit to show: driver option values that may hold
    credentials (a CIFS password in ``o``) are masked."""
    shown = dict(metadata)
    if isinstance(metadata.get("volume"), dict):
        shown["volume"] = dict(metadata["volume"], driver_opts=masked_options(metadata["volume"].get("driver_opts")))
    return shown


def _may_be_of(entry: Mapping[str, Any], volume: str) -> bool:
    """Whether a listing entry is a backup of ``volume``. Without a readable sidecar the
    volume is unknown; such an entry counts when its file name starts with the volume's."""
    if entry["volume"] is not None:
        return entry["volume"] == volume
    return os.path.basename(entry["path"]).startswith(volume)


def directory_info(directory: str, volume: Optional[str] = None) -> Dict[str, Any]:
    """backup_info's result for the backup directory ``directory`` on this host."""
    if not os.path.isdir(directory):
        raise BackupDirectoryError("The backup directory %s does not exist or is not a directory." % directory)
    try:
        backups, latest = listing(directory, volume)
    except OSError as exc:
        raise BackupDirectoryError("Cannot read the backup directory %s: %s" % (directory, exc))
    return dict(changed=False, backups=backups, latest=latest)


def listing(directory: str, volume: Optional[str] = None) -> Tuple[List[Dict[str, Any]], Dict[Optional[str], Dict[str, Any]]]:
    """``(backups, latest)`` for backup_info: every archive (of ``volume`` if given), newest
    first, flattened with its recorded facts; and the latest complete one per volume."""
    backups = []
    latest: Dict[Optional[str], Dict[str, Any]] = {}
    for entry in scan_directory(directory):
        if volume is not None and not _may_be_of(entry, volume):
            continue
        item = dict(entry)
        if entry["metadata"] is not None:
            item.update(summarize(entry["path"], entry["metadata"]))
            item["metadata"] = masked_metadata(entry["metadata"])
        item["status"], item["reason"] = entry["status"], entry["reason"]
        backups.append(item)
        if entry["status"] == "complete" and entry["volume"] not in latest:
            latest[entry["volume"]] = item
    return backups, latest
