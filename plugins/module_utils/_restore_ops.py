# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The volume_restore operation: verified first, staged, read back, swapped in atomically.

1. Before anything is locked or stopped, where the target exists and ``restore_when`` is
   different, the archive is read in full and checked against its sidecar (sha256, safety
   rules, tree digest) while the target's live tree is compared in the same pass, and a
   target that already equals the archive is left alone. Otherwise the archive is verified
   while it is extracted (one read).
2. Under the lock: what an interrupted earlier run left is finished or removed (only what the
   engine's record proves this collection wrote; see _swap; the containers in the way are
   stopped first), then the archive is extracted through the module's own re-serialization
   into a staging tree while those containers still run. They are stopped for the read-back
   of the staged tree (which therefore sees whatever they wrote into it) and the swap
   (_archive_restore), so a running service is down for those two only.

A target that holds reserved entries (an interrupted run) is compared only after they were
dealt with, under the lock.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Optional

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import (
    describe_archive,
    latest_complete,
    scan_directory,
    summarize,
)
from ansible_collections.persist.docker.plugins.module_utils._archive_check import digest_version, identities_for, open_archive, verify_archive
from ansible_collections.persist.docker.plugins.module_utils._archive_restore import extract_and_swap
from ansible_collections.persist.docker.plugins.module_utils._compression import require_library
from ansible_collections.persist.docker.plugins.module_utils._consistency import Consistency
from ansible_collections.persist.docker.plugins.module_utils._container_policy import WRITES
from ansible_collections.persist.docker.plugins.module_utils._copy_rules import destination_settings
from ansible_collections.persist.docker.plugins.module_utils._errors import HelperError, RestoreError, VolumeMissing
from ansible_collections.persist.docker.plugins.module_utils._options import ConsistencyOptions, Decryption, Params, WriteOptions
from ansible_collections.persist.docker.plugins.module_utils._swap import recover, reserved_state
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import TAR_ENTRIES_CHANGED
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import TreeDifferences, only_root
from ansible_collections.persist.docker.plugins.module_utils._text import counted


@dataclass(frozen=True)
class RestoreOptions:
    """The options of volume_restore (see the module's documentation)."""

    volume: str
    src: str
    consistency: ConsistencyOptions
    write: WriteOptions = WriteOptions()
    source_volume: Optional[str] = None
    restore_when: str = "different"
    decryption: Decryption = Decryption()

    @classmethod
    def from_params(cls, params: Params) -> "RestoreOptions":
        return cls(
            volume=params["volume"], src=params["src"], consistency=ConsistencyOptions.from_params(params),
            write=WriteOptions.from_params(params, "volume_"), source_volume=params.get("source_volume"),
            restore_when=params["restore_when"], decryption=Decryption.from_params(params),
        )


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


def _settings_to_create(entry, options):
    """(driver, driver_opts, labels, how) for creating the missing volume ``options.volume``:
    the task's volume_driver, volume_driver_opts and volume_labels, and otherwise what the
    sidecar recorded, which may not mount existing storage (a sidecar is untrusted)."""
    target = options.volume
    recorded = entry["metadata"]["volume"]
    source = dict(
        name=recorded.get("name") or "?", driver=recorded.get("driver") or "local",
        driver_opts=recorded.get("driver_opts") or {}, labels=recorded.get("labels") or {},
    )
    if not all(isinstance(source[key], dict) for key in ("driver_opts", "labels")) or not isinstance(source["driver"], str):
        raise RestoreError("The sidecar of %s records the volume's settings in a form this collection does not write." % entry["path"], archive=entry["path"])
    driver, driver_opts, labels, taken_from, problem = destination_settings(
        source, options.write.new_volume.driver, options.write.new_volume.driver_opts, options.write.new_volume.labels)
    if problem:
        raise RestoreError(
            "Volume %s is not created as the backup %s recorded it: %s. A backup's record never makes a restore mount "
            "existing storage (whoever can write the backup directory can write the record). Give volume_driver and "
            "volume_driver_opts for the storage the volume should have, or create the volume first. Nothing was done."
            % (target, os.path.basename(entry["path"]), problem),
            volume_name=target, archive=entry["path"],
        )
    if taken_from.startswith("the settings of volume"):
        taken_from = "as recorded in the backup"
    else:
        taken_from = "with " + taken_from.replace("the settings of volume", "the settings recorded for volume")
    return driver, driver_opts, labels, taken_from


def restore(engine, options, check_mode):
    """Restore an archive into volume ``options.volume`` (a RestoreOptions)."""
    target = options.volume
    entry = resolve_archive(options.src, options.source_volume or target)
    require_library(entry["metadata"]["compression"])
    identities = identities_for(entry, options.decryption)
    current = engine.volume(target)
    if current is None and not options.write.create:
        raise VolumeMissing(
            "Volume %s does not exist and create is false. Create it first, or set create: true "
            "to create it with the driver, options and labels recorded in the backup." % target,
            volume_name=target,
        )
    shared = engine.storage_shared(current) if current is not None else None
    if shared:
        raise RestoreError(
            "Volume %s is not restored into: %s. A restore would change the other's files under it. Nothing was done." % (target, shared),
            volume_name=target,
        )
    return _Restore(engine, options, check_mode, entry, current).run(identities)


def _nothing_to_compare(current, restore_when):
    """Whether the archive may be verified while it is extracted, in one read: a missing
    target, or restore_when always. The staging tree is swapped in only once the whole archive
    passed, so nothing reaches the volume's entries before that. Containers in the way run
    meanwhile (see _Restore.run). (An empty target with no running container is read in one
    pass too: see _Restore.run.)"""
    return current is None or restore_when == "always"


def _running_users(engine, current):
    return any(user["running"] for user in engine.users(current["name"]))


class _NothingToRestore(Exception):
    """The staged tree would change nothing: it is discarded, not swapped in."""


class _Restore:
    """One restore, once the archive and the target are known: what its steps share (the
    engine, the options, the archive's listing ``entry``, the target's description
    ``current`` or None, the guard) and the result it builds."""

    def __init__(self, engine, options, check_mode, entry, current):
        self.engine = engine
        self.options = options
        self.check_mode = check_mode
        self.entry = entry
        self.current = current
        self.target = options.volume
        self.settings = _settings_to_create(entry, options) if current is None else None
        # The containers in the way are stopped (or paused) only once the archive is staged:
        # for reading the staged tree back, the swap and nothing else (see _locked).
        self.guard = Consistency(engine, [(self.target, WRITES)], options.consistency, check_mode, "volume_restore",
                                 late_quiesce=True)
        self.result = dict(
            changed=False, volume=self.target, archive=summarize(entry["path"], entry["metadata"]), actions=[],
            finished_interrupted=False, skipped_reason=None,
        )

    def run(self, identities):
        engine, current, result, guard = self.engine, self.current, self.result, self.guard
        check_mode = self.check_mode
        with open_archive(self.entry, identities) as archive:
            state = reserved_state(engine, self.target) if current is not None else None
            pending = state is not None and state.entries
            one_pass = not check_mode and not pending and _nothing_to_compare(current, self.options.restore_when)
            empty_root = None
            if not check_mode and not pending and not one_pass and state is not None and state.root is not None and not _running_users(engine, current):
                empty_root = only_root([state.root], digest_version(self.entry))
                one_pass = empty_root is not None
            if pending:
                verify_archive(archive, self.entry, self.options.write.allow_special)  # before anything is stopped
            elif not one_pass and not self._wanted(archive):
                return self._finish()
            with guard:
                guard.result = result
                result["actions"][:0] = guard.actions
                self._locked(archive, pending, one_pass, empty_root)
        return self._finish()

    def _finish(self):
        self.result.update(self.guard.report())
        self.result["transport"] = self.engine.helpers.transport()
        return self.result

    def _wanted(self, archive, compare=True):
        """Read and verify the archive, comparing it with the target when ``restore_when``
        says so; False (``skipped_reason`` set) when nothing is to be restored."""
        target, mode, when = self.target, self.options.write.mode, self.options.restore_when
        allow_special = self.options.write.allow_special
        if self.current is not None and when == "missing_or_empty":
            usage = self.engine.usage(target, include_reserved=False)
            if not usage["empty"]:
                # Disaster recovery that never overwrites data: nothing to read or verify.
                self.result["skipped_reason"] = "volume %s holds %s and restore_when is missing_or_empty" % (
                    target, counted(usage["entries"], "entry", "entries"))
                return False
        compare = compare and self.current is not None and when == "different"
        started = time.time()
        try:
            differences = verify_archive(archive, self.entry, allow_special, self.engine, target if compare else None)
        except HelperError as exc:
            if not compare or exc.details.get("exit_code") != TAR_ENTRIES_CHANGED:
                raise
            # A running container changed the target while it was read: it differs, certainly.
            verify_archive(archive, self.entry, allow_special)
            compare = False
        self.result.update(verified=True, verify_seconds=round(time.time() - started, 3))
        if compare:
            self.result.update(differences.report(mode))
            if not differences.would_change(mode):
                self.result["skipped_reason"] = "volume %s already equals the archive" % target
                return False
        return True

    def _locked(self, archive, pending, one_pass, empty_root):
        """The restore proper, under the lock; with ``one_pass`` the archive is verified while
        it is extracted. The containers in the way run on while the archive is extracted into
        the staging tree (hidden, and read back after they stopped: whatever they write there
        fails the read-back), and are stopped for the read-back and the swap; finishing an
        interrupted swap stops them first. ``empty_root`` is the root record of an empty
        target: its differences are the archive's entries, noted as they pass; with
        restore_when different, a staged tree that would change nothing is discarded (and
        nothing is stopped)."""
        engine, result, check_mode, settings = self.engine, self.result, self.check_mode, self.settings
        target, mode = self.target, self.options.write.mode
        planned = len(result["actions"])
        if pending:
            self.guard.quiesce()
            finished, warnings, _state = recover(engine, target, self.guard, check_mode, self.options.consistency.recovery, result["actions"])
            result["finished_interrupted"] = finished
            result.setdefault("warnings", []).extend(warnings)
            # In check mode a swap to finish is still pending: the target cannot be compared yet.
            if not self._wanted(archive, compare=not (check_mode and finished)):
                result["changed"] = len(result["actions"]) > planned
                return
        if settings is not None:
            result["actions"].append("create volume %s with driver %s %s" % (target, settings[0], settings[3]))
        result["actions"].append("restore %s into volume %s (mode %s)" % (os.path.basename(self.entry["path"]), target, mode))
        result["changed"] = True
        if check_mode:
            return
        if settings is not None:
            engine.create(target, settings[0], settings[1], settings[2])
        started = time.time()
        observe = noting = None
        if empty_root is not None:
            observe, noting = self._noting_differences(empty_root, planned)

        def before_read_back(token):
            if noting is not None:
                noting(token)
            if self.guard.stops_containers():
                # The engine writes the extracted data out once the extraction's helper ended;
                # a service stopped meanwhile would wait for it in its own shutdown (and its
                # downtime grow): it is stopped once that is done.
                engine.helpers.settle()
            self.guard.quiesce()

        try:
            extract_and_swap(engine, archive, self.entry, target, mode, self.guard, allow_special=self.options.write.allow_special,
                             verified=not one_pass, observe=observe, before_read_back=before_read_back)
        except _NothingToRestore:
            result["verified"] = True
            return
        except BaseException:
            if settings is not None:
                _remove_created(engine, target)
            raise
        if one_pass:
            result["verified"] = True
        result["extract_seconds"] = round(time.time() - started, 3)
        result["duration_seconds"] = round(result["extract_seconds"] + result.get("verify_seconds", 0), 3)

    def _noting_differences(self, empty_root, planned):
        """(observe, before_read_back) for a one-pass restore into an empty target, whose
        differences are the archive's entries."""
        result, mode = self.result, self.options.write.mode
        differences = TreeDifferences()

        def observe(path, record):
            if path:
                differences.note("added", path)
            elif record != empty_root:
                differences.note("changed", path)

        def before_read_back(_token):
            if self.options.restore_when != "different":
                return
            result.update(differences.report(mode))
            if not differences.would_change(mode):
                result["skipped_reason"] = "volume %s already equals the archive" % self.target
                del result["actions"][planned:]
                result["changed"] = False
                raise _NothingToRestore()

        return observe, before_read_back


def _remove_created(engine, target):
    """Best effort: the volume this run created holds nothing (no swap happened); the error
    that made the restore fail is what the user sees."""
    try:
        engine.remove(target)
    except Exception:  # the restore's own error matters more
        pass
