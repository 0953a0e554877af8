# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Decisions of volume_copy and of recreate: migrate (pure logic, no Ansible, no Docker SDK).

* What two trees must share to count as equal after a copy: every tree-digest record, except
  the extended attributes (and ACLs) of the root directory itself, which the staged swap
  cannot carry over (it renames the entries of the staging tree into the volume's root; the
  root keeps its own xattrs). ``ComparableDigest`` and ``comparable_records`` apply that rule
  to digests and to entry-by-entry comparisons alike.
* With which driver, options and labels a missing destination is created, and whether
  settings taken over from the source would mount existing storage (see _storage).
* The name of the temporary volume a migration copies the data aside into.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

from ansible_collections.persist.docker.plugins.module_utils._storage import existing_storage, masked_options
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import stringify_options

MIGRATE_INFIX = "-persist-migrate-"
# The label that marks a temporary volume of a migration; its value is the migrated volume.
MIGRATE_LABEL = "persist.docker.migrate"


def record_fields(record: bytes) -> List[bytes]:
    """The fields of one tree-digest record (``len:value,`` each, then a newline) as bytes."""
    fields = []
    position = 0
    end = len(record) - 1 if record.endswith(b"\n") else len(record)
    while position < end:
        colon = record.index(b":", position)
        length = int(record[position:colon])
        start = colon + 1
        if record[start + length:start + length + 1] != b",":
            raise ValueError("malformed tree-digest record field at byte %d" % position)
        fields.append(record[start:start + length])
        position = start + length + 1
    return fields


def _encode(fields: Iterable[bytes]) -> bytes:
    return b"".join(b"%d:%s," % (len(field), field) for field in fields) + b"\n"


# Positions in a record (see _tree_digest.TreeDigest.member_end): ten fixed fields, then
# the xattr count, the (name, value) pairs, and the modification time.
_XATTR_COUNT = 10


def without_xattrs(record: bytes) -> bytes:
    """``record`` with its extended attributes left out (count 0, no pairs)."""
    fields = record_fields(record)
    count = int(fields[_XATTR_COUNT])
    if not count:
        return record
    kept = fields[:_XATTR_COUNT] + [b"0"] + fields[_XATTR_COUNT + 1 + 2 * count:]
    return _encode(kept)


def comparable(path: bytes, record: bytes) -> bytes:
    """The record as copies are compared: the root's xattrs left out."""
    return without_xattrs(record) if path == b"" else record


def comparable_records(records: Iterable[Tuple[bytes, bytes]]) -> Iterator[Tuple[bytes, bytes]]:
    """``(path, record)`` pairs (from a RecordStream) as copies are compared."""
    for path, record in records:
        yield path, comparable(path, record)


class ComparableDigest:
    """A sha256 over the comparable records of a tree, fed by TreeDigest's ``on_record``.

    Equal for two trees that differ at most in the root directory's xattrs; different
    whenever their tree digests differ otherwise."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"persist.docker comparable tree v1\n")

    def add(self, path: bytes, record: bytes) -> None:
        self._hash.update(comparable(path, record))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


# Labels this collection puts on its own temporary volumes; never carried to a new volume.
RESERVED_LABEL_PREFIX = "persist.docker."


def destination_settings(
    source: Mapping[str, Any], driver: Optional[str] = None, driver_opts: Optional[Mapping[Any, Any]] = None, labels: Optional[Mapping[Any, Any]] = None,
) -> Tuple[str, Dict[str, str], Dict[str, str], str, Optional[str]]:
    """(driver, driver_opts, labels, taken_from, problem) for creating a volume with the
    settings of ``source`` (a volume's description, or a sidecar's record of one) where the
    task gives none.

    Each setting given wins; otherwise it is the source's: its driver, its options (only with
    the same driver: another driver's options mean nothing to the new one) and its labels
    (less those of this collection's temporary volumes). ``taken_from`` says in words where
    the settings came from. ``problem`` says why settings taken from the source would mount
    existing storage (a bind, device or share, or a plugin driver's options), which only
    settings the task gives may do; None when they do not.
    """
    chosen_driver = driver or source["driver"]
    if driver_opts is not None:
        chosen_opts = stringify_options(driver_opts)
    elif chosen_driver == source["driver"]:
        chosen_opts = dict(source["driver_opts"] or {})
    else:
        chosen_opts = {}
    if labels is not None:
        chosen_labels = stringify_options(labels)
    else:
        chosen_labels = dict((key, value) for key, value in (source["labels"] or {}).items() if not key.startswith(RESERVED_LABEL_PREFIX))
    given = [name for name, value in (("driver", driver), ("driver options", driver_opts), ("labels", labels)) if value is not None]
    if not given:
        taken_from = "the settings of volume %s" % source["name"]
    elif len(given) == 3:
        taken_from = "the given settings"
    else:
        taken_from = "the given %s and otherwise the settings of volume %s" % (" and ".join(given), source["name"])
    problem = None
    if driver is None and chosen_driver != "local":
        problem = existing_storage(chosen_driver, chosen_opts)
    elif driver_opts is None and chosen_opts:
        problem = existing_storage(chosen_driver, chosen_opts) if chosen_driver == "local" else (
            "the driver options of volume %s (%s) would be given to the driver %s" % (
                source["name"], ", ".join(sorted(masked_options(chosen_opts))), chosen_driver))
    return chosen_driver, chosen_opts, chosen_labels, taken_from, problem


def aside_name(name: str, token: str) -> str:
    """The temporary volume a migration of ``name`` copies its data into."""
    return "%s%s%s" % (name, MIGRATE_INFIX, token)
