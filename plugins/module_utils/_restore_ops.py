# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The volume_restore operation: verified first, staged, swapped in atomically.

1. The archive is read in full: its sha256 must match the sidecar, every member must pass
   the safety rules, and the tree digest must match. Where the target exists, its live tree
   is streamed alongside and compared entry by entry, in the same pass.
2. Only then, and only when the target would change, the archive is streamed into a helper
   that extracts it into a staging directory inside the target volume; the bytes sent are
   hashed again and must still match the sidecar.
3. A second helper swaps the staged tree in under a journal, so a run killed at any point
   leaves the old tree, the new tree, or a journal that the next run follows to the end.
"""

from __future__ import annotations

import binascii
import os
import time
from contextlib import closing

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import (
    describe_archive,
    latest_complete,
    scan_directory,
    summarize,
)
from ansible_collections.persist.docker.plugins.module_utils._archive_read import ArchiveCorrupt, ArchiveStream
from ansible_collections.persist.docker.plugins.module_utils._compression import require_library
from ansible_collections.persist.docker.plugins.module_utils._consistency import Consistency
from ansible_collections.persist.docker.plugins.module_utils._container_policy import WRITES
from ansible_collections.persist.docker.plugins.module_utils._errors import RestoreError, VolumeMissing
from ansible_collections.persist.docker.plugins.module_utils._member_safety import SafetyChecker, UnsafeMember
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import (
    JOURNAL_NAME,
    VOLUME_MOUNT,
    clean_command,
    extract_command,
    swap_command,
    tar_create_command,
)
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarFormatError
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import RecordStream, TreeDifferences, compare
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import NotCanonicalOrder
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import counted


def resolve_archive(src, source_volume):
    """The listing entry of the archive to restore: ``src`` itself, or the latest complete
    backup of ``source_volume`` when ``src`` is a directory."""
    if os.path.isdir(src):
        entries = scan_directory(src)
        latest = latest_complete(entries, source_volume)
        if latest is None:
            others = [entry for entry in entries if entry["volume"] in (source_volume, None)]
            detail = "; ".join("%s: %s" % (os.path.basename(e["path"]), e["reason"]) for e in others[:5])
            raise RestoreError(
                "There is no complete backup of volume %s in %s%s. Check src and source_volume "
                "(persist.docker.backup_info lists the backups)."
                % (source_volume, src, " (" + detail + ")" if detail else ""),
                src=src,
            )
        return latest
    if not os.path.exists(src):
        raise RestoreError("The archive %s does not exist." % src, src=src)
    entry = describe_archive(src)
    if entry["status"] != "complete":
        raise RestoreError(
            "The archive %s cannot be restored: %s. Only complete backups (archive and its "
            "metadata sidecar) are restored." % (src, entry["reason"]),
            src=src,
        )
    return entry


UNTOUCHED = " The target volume was not touched."


def _verify(stream, records, metadata, path, consequence):
    """Raise RestoreError unless the archive read through ``records`` matched its sidecar."""
    if stream.sha256 != metadata["archive"]["sha256"] or stream.size != metadata["archive"]["size"]:
        raise RestoreError(
            "The archive %s does not match its sidecar (sha256 %s, %d bytes; the sidecar says "
            "sha256 %s, %s bytes): it is corrupt or was changed.%s"
            % (path, stream.sha256, stream.size, metadata["archive"]["sha256"], metadata["archive"]["size"], consequence),
            archive=path, check="sha256",
        )
    if records.digest.hexdigest() != metadata["tree"]["digest"]:
        raise RestoreError(
            "The archive %s passes its checksum but its tree digest differs from the sidecar's: "
            "the sidecar does not describe this archive.%s" % (path, consequence),
            archive=path, check="tree_digest",
        )


def _read_and_compare(engine, entry, target_exists, allow_special, consequence=UNTOUCHED):
    """Read the whole archive (verify) and, where the target exists, compare with it.

    A failure raises RestoreError whose ``check`` detail names the check that failed:
    ``safety`` (with ``member`` and ``rule``), ``read`` (the archive cannot be decompressed
    or parsed to its end), ``sha256`` (size or sha256 differ from the sidecar's) or
    ``tree_digest``; ``consequence`` ends its message."""
    metadata, path = entry["metadata"], entry["path"]
    stream = ArchiveStream(path, metadata["compression"])
    records = RecordStream(stream, SafetyChecker(allow_special))
    differences = TreeDifferences()
    try:
        if target_exists:
            live = engine.helpers.stream_output(tar_create_command(), {entry["target"]: VOLUME_MOUNT}, "reading volume %s" % entry["target"])
            with closing(live):
                target_records = RecordStream(live)
                compare(records, target_records, differences)
        else:
            for _record in records:
                pass
    except UnsafeMember as exc:
        raise RestoreError(
            "The archive %s is refused: member %s breaks a safety rule: %s.%s" % (path, exc.member, exc.rule, consequence),
            archive=path, member=exc.member, rule=exc.rule, check="safety",
        )
    except (ArchiveCorrupt, TarFormatError, NotCanonicalOrder) as exc:
        raise RestoreError(
            "The archive %s is corrupt or truncated: %s.%s" % (path, exc, consequence),
            archive=path, check="read",
        )
    _verify(stream, records, metadata, path, consequence)
    return differences


def _recover(engine, target, check_mode, result):
    """Finish a swap that a killed restore left half done, or remove the staging trees of
    restores killed before their swap (hidden copies of data that only take space)."""
    volumes = {target: VOLUME_MOUNT}
    reserved = engine.reserved_entries(target)
    if JOURNAL_NAME in reserved:
        result["actions"].append("finish the interrupted restore of volume %s" % target)
        result["finished_interrupted"] = True
        if not check_mode:
            engine.helpers.run_with_input(swap_command(), volumes, [], "finishing an interrupted restore of volume %s" % target)
    elif reserved:
        result["actions"].append("remove %s of interrupted restores from volume %s" % (counted(len(reserved), "leftover staging tree"), target))
        if not check_mode:
            engine.helpers.run_with_input(clean_command(), volumes, [], "removing leftovers of interrupted restores from volume %s" % target)


def restore(engine, params, check_mode):
    """Restore into ``params['volume']``; see the module for the options."""
    target = params["volume"]
    entry = resolve_archive(params["src"], params["source_volume"] or target)
    entry["target"] = target
    require_library(entry["metadata"]["compression"])

    guard = Consistency(engine, [(target, WRITES)], params, check_mode, "volume_restore")
    with guard:
        result = _restore_quiet(engine, entry, params, check_mode, guard)
        guard.result = result
    result.update(guard.report())
    return result


def _restore_quiet(engine, entry, params, check_mode, guard):
    """The restore proper, while the containers in the way are stopped."""
    target, metadata = entry["target"], entry["metadata"]
    mode, when = params["mode"], params["restore_when"]
    result = dict(
        changed=False, volume=target, archive=summarize(entry["path"], metadata), actions=list(guard.actions),
        finished_interrupted=False, skipped_reason=None,
    )
    current = engine.volume(target)
    if current is None and not params["create"]:
        raise VolumeMissing(
            "Volume %s does not exist and create is false. Create it first, or set create: true "
            "to create it with the driver, options and labels recorded in the backup." % target,
            volume_name=target,
        )
    planned = len(result["actions"])
    if current is not None:
        _recover(engine, target, check_mode, result)

    if current is not None and when == "missing_or_empty":
        usage = engine.usage(target, include_reserved=False)
        if not usage["empty"]:
            # Disaster recovery that never overwrites data: nothing to read or verify.
            result["skipped_reason"] = "volume %s holds %s and restore_when is missing_or_empty" % (
                target, counted(usage["entries"], "entry", "entries"))
            result["changed"] = len(result["actions"]) > planned
            return result

    started = time.time()
    compare_with_target = current is not None and when == "different" and not (check_mode and result["finished_interrupted"])
    differences = _read_and_compare(engine, entry, compare_with_target, params["allow_special"])
    result["verified"] = True
    if compare_with_target:
        result["differences"] = differences.as_dict(mode)
        result["diff"] = {"prepared": differences.prepared(mode)}
        if not differences.would_change(mode):
            result["skipped_reason"] = "volume %s already equals the archive" % target
            result["changed"] = len(result["actions"]) > planned
            return result
    if current is None:
        result["actions"].append("create volume %s with driver %s as recorded in the backup" % (target, metadata["volume"]["driver"]))

    result["actions"].append("restore %s into volume %s (mode %s)" % (os.path.basename(entry["path"]), target, mode))
    result["changed"] = True
    if check_mode:
        return result
    if current is None:
        recorded = metadata["volume"]
        engine.create(target, recorded["driver"], recorded["driver_opts"], recorded["labels"])
    _extract_and_swap(engine, entry, target, mode, guard.before_commit)
    result["duration_seconds"] = round(time.time() - started, 3)
    return result


def _extract_and_swap(engine, entry, target, mode, before_commit):
    metadata, path = entry["metadata"], entry["path"]
    stream = ArchiveStream(path, metadata["compression"])

    def unchanged_since_verified():
        if stream.sha256 != metadata["archive"]["sha256"]:
            raise RestoreError(
                "The archive %s changed between its verification and the restore (sha256 now %s). "
                "The target volume was not changed." % (path, stream.sha256),
                archive=path,
            )

    def extract(token):
        what = "extracting %s into volume %s" % (path, target)
        engine.helpers.run_with_input(extract_command(token), {target: VOLUME_MOUNT}, stream, what)

    try:
        stage_and_swap(engine, target, extract, mode, before_commit, unchanged_since_verified)
    except ArchiveCorrupt as exc:
        raise RestoreError("The archive %s became unreadable during the restore: %s. The target volume was not changed." % (path, exc), archive=path)


def stage_and_swap(engine, target, stage, mode, before_commit, check_staged=None):
    """Call ``stage(token)``, which fills the staging tree ``.persist-staging-TOKEN`` inside
    volume ``target``, then ``check_staged()`` (may raise) and ``before_commit()``, then swap
    the staged tree in (``mode`` replace or merge) under the journal. Any failure before the
    swap removes the staging tree and leaves the volume's entries as they were; shared by
    restore and copy."""
    token = binascii.hexlify(os.urandom(6)).decode("ascii")
    try:
        stage(token)
        if check_staged is not None:
            check_staged()
        before_commit()
    except BaseException:
        _discard_staging(engine, target)
        raise
    engine.helpers.run_with_input(swap_command(token, mode), {target: VOLUME_MOUNT}, [], "swapping the staged tree into volume %s" % target)


def _discard_staging(engine, target):
    """Best effort: a later restore cleans up what this leaves."""
    try:
        engine.helpers.run_with_input(clean_command(), {target: VOLUME_MOUNT}, [], "removing the staging tree from volume %s" % target)
    except Exception:  # the original error matters more than this one
        pass


def verify_archive(entry, allow_special):
    """Read the complete archive of listing ``entry`` exactly as a restore does before it
    writes anything: sha256 and size against the sidecar, every member through the safety
    rules, the tree digest recomputed. Needs no engine.

    Returns ``tree_digest`` (recomputed; equal to the sidecar's) and the ``entries`` and
    ``bytes`` the sidecar records for that tree. Raises RestoreError whose
    ``check`` detail names the check that failed: ``safety`` (with ``member`` and ``rule``),
    ``read`` (the archive cannot be decompressed or parsed to its end), ``sha256`` (the file
    differs from the sidecar's size or sha256) or ``tree_digest``.
    """
    require_library(entry["metadata"]["compression"])
    _read_and_compare(None, entry, False, allow_special, consequence="")
    tree = entry["metadata"]["tree"]
    return {"tree_digest": tree["digest"], "entries": tree["entries"], "bytes": tree["bytes"]}


def restore_verified(engine, entry, target):
    """Extract the archive of ``entry`` into the empty volume ``target`` through the staged,
    journalled path of a restore (mode replace). The caller verified the archive first; the
    bytes sent are hashed again and must still match the sidecar. No container uses a
    scratch volume, so there is nothing to do before the swap commits."""
    _extract_and_swap(engine, entry, target, "replace", lambda: None)
