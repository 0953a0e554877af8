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
* With which driver, options and labels a missing destination is created, and when those
  options would make it the same storage as the source.
* The name of the temporary volume a migration copies the data aside into.
"""

from __future__ import annotations

import hashlib

from ansible_collections.persist.docker.plugins.module_utils._volume_spec import stringify_options

MIGRATE_INFIX = "-persist-migrate-"
# The label that marks a temporary volume of a migration; its value is the migrated volume.
MIGRATE_LABEL = "persist.docker.migrate"
# Mount types of the local driver whose every volume is new storage, whatever its options.
_PRIVATE_LOCAL_TYPES = frozenset(["tmpfs"])


def record_fields(record):
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


def _encode(fields):
    return b"".join(b"%d:%s," % (len(field), field) for field in fields) + b"\n"


# Positions in a record (see _tree_digest.TreeDigest.member_end): ten fixed fields, then
# the xattr count, the (name, value) pairs, and the modification time.
_XATTR_COUNT = 10


def without_xattrs(record):
    """``record`` with its extended attributes left out (count 0, no pairs)."""
    fields = record_fields(record)
    count = int(fields[_XATTR_COUNT])
    if not count:
        return record
    kept = fields[:_XATTR_COUNT] + [b"0"] + fields[_XATTR_COUNT + 1 + 2 * count:]
    return _encode(kept)


def comparable(path, record):
    """The record as copies are compared: the root's xattrs left out."""
    return without_xattrs(record) if path == b"" else record


def comparable_records(records):
    """``(path, record)`` pairs (from a RecordStream) as copies are compared."""
    for path, record in records:
        yield path, comparable(path, record)


class ComparableDigest:
    """A sha256 over the comparable records of a tree, fed by TreeDigest's ``on_record``.

    Equal for two trees that differ at most in the root directory's xattrs; different
    whenever their tree digests differ otherwise."""

    def __init__(self):
        self._hash = hashlib.sha256(b"persist.docker comparable tree v1\n")

    def add(self, path, record):
        self._hash.update(comparable(path, record))

    def hexdigest(self):
        return self._hash.hexdigest()


def destination_settings(source, driver=None, driver_opts=None, labels=None):
    """(driver, driver_opts, labels, taken_from) for creating a copy's missing destination.

    ``source`` is the source volume's description. Each setting given wins; otherwise it is
    the source's: its driver, its options (only with the same driver: another driver's
    options mean nothing to the new one) and its labels. ``taken_from`` says in words
    where the settings came from.
    """
    chosen_driver = driver or source["driver"]
    if driver_opts is not None:
        chosen_opts = stringify_options(driver_opts)
    elif chosen_driver == source["driver"]:
        chosen_opts = dict(source["driver_opts"])
    else:
        chosen_opts = {}
    chosen_labels = stringify_options(labels) if labels is not None else dict(source["labels"])
    given = [name for name, value in (("driver", driver), ("driver options", driver_opts), ("labels", labels)) if value is not None]
    if not given:
        taken_from = "the settings of volume %s" % source["name"]
    elif len(given) == 3:
        taken_from = "the given settings"
    else:
        taken_from = "the given %s and otherwise the settings of volume %s" % (" and ".join(given), source["name"])
    return chosen_driver, chosen_opts, chosen_labels, taken_from


def shared_storage(source, driver, driver_opts):
    """Why a volume created on the source's engine with ``driver`` and ``driver_opts`` would
    be the source's own storage (a string), or None.

    The local driver mounts ``device`` (a directory for a bind, an NFS export, a block
    device) when a container uses the volume: two volumes with the same device are two
    names for the same files, except tmpfs, which is new memory for every volume.
    """
    if driver != "local" or source["driver"] != "local":
        return None
    device = driver_opts.get("device")
    if not device or driver_opts.get("type") in _PRIVATE_LOCAL_TYPES:
        return None
    if source["driver_opts"].get("device") != device:
        return None
    return "it would mount the same device (%s) as volume %s, so both names would be the same files" % (device, source["name"])


def aside_name(name, token):
    """The temporary volume a migration of ``name`` copies its data into."""
    return "%s%s%s" % (name, MIGRATE_INFIX, token)
