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

import json
import os
import time

from ansible_collections.persist.docker.plugins.module_utils._atomic import TEMP_PREFIX
from ansible_collections.persist.docker.plugins.module_utils._compression import SUFFIXES, compression_of

FORMAT_VERSION = 1
SIDECAR_SUFFIX = ".json"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
DEFAULT_NAME_TEMPLATE = "{volume}-{timestamp}"
REQUIRED_FIELDS = ("format_version", "volume", "created", "compression", "archive", "tree")


class MetadataError(ValueError):
    """A sidecar is missing, unreadable or does not describe its archive."""


def render_name(template, volume, created, compression):
    """The archive file name for ``template`` (fields {volume} and {timestamp}).

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
    return stem + SUFFIXES[compression]


def sidecar_path(archive_path):
    return archive_path + SIDECAR_SUFFIX


def dump_metadata(metadata):
    return (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8")


def read_metadata(path):
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


def scan_directory(directory):
    """Every archive in ``directory`` with its status, newest first.

    Each entry: ``path``, ``sidecar``, ``status`` (``complete``, ``incomplete``: no sidecar,
    or ``damaged``: sidecar unreadable or size mismatch), ``reason``, ``volume``,
    ``created`` and ``metadata`` (None unless readable). Temporary files of unfinished writes
    are not listed.
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


def orphan_sidecars(directory, older_than_seconds, now=None):
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


def describe_archive(path):
    """The listing entry of one archive (see ``scan_directory``)."""
    sidecar = sidecar_path(path)
    entry = dict(path=path, sidecar=sidecar, status="complete", reason=None, volume=None, created=None, metadata=None)
    if not os.path.exists(sidecar):
        entry.update(status="incomplete", reason="no metadata sidecar: the backup did not finish")
        return entry
    try:
        metadata = read_metadata(sidecar)
    except MetadataError as exc:
        entry.update(status="damaged", reason=str(exc))
        return entry
    entry.update(metadata=metadata, volume=metadata["volume"].get("name"), created=metadata["created"])
    size = os.stat(path).st_size
    if size != metadata["archive"].get("size"):
        entry.update(status="damaged", reason="archive is %d bytes, its sidecar says %s" % (size, metadata["archive"].get("size")))
    return entry


def latest_complete(entries, volume):
    """The newest complete entry of ``volume`` in a ``scan_directory`` listing, or None."""
    for entry in entries:
        if entry["status"] == "complete" and entry["volume"] == volume:
            return entry
    return None


def summarize(path, metadata):
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
    }


def _may_be_of(entry, volume):
    """Whether a listing entry is a backup of ``volume``. Without a readable sidecar the
    volume is unknown; such an entry counts when its file name starts with the volume's."""
    if entry["volume"] is not None:
        return entry["volume"] == volume
    return os.path.basename(entry["path"]).startswith(volume)


def listing(directory, volume=None):
    """``(backups, latest)`` for backup_info: every archive (of ``volume`` if given), newest
    first, flattened with its recorded facts; and the latest complete one per volume."""
    backups = []
    latest = {}
    for entry in scan_directory(directory):
        if volume is not None and not _may_be_of(entry, volume):
            continue
        item = dict(entry)
        if entry["metadata"] is not None:
            item.update(summarize(entry["path"], entry["metadata"]))
        item["status"], item["reason"] = entry["status"], entry["reason"]
        backups.append(item)
        if entry["status"] == "complete" and entry["volume"] not in latest:
            latest[entry["volume"]] = item
    return backups, latest
