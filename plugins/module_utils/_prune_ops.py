# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The backup_prune operation: GFS retention over a backup directory, per volume.

First a plan is made from the directory listing, the sidecars' ``created`` times and the
files' ages; check mode stops there, a real run deletes exactly what the plan lists. Only
files of this collection are ever deleted (archives with or without a sidecar, orphan
sidecars, temporary files of unfinished writers); damaged backups are reported, never deleted.
No Docker engine is needed and nothing here imports Ansible.
"""

from __future__ import annotations

import datetime
import os
import socket
import stat
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import (
    ORPHAN_SIDECAR_GRACE,
    MetadataError,
    SIDECAR_SUFFIX,
    orphan_sidecars,
    name_timestamp,
    parse_created,
    read_metadata,
    scan_directory,
)
from ansible_collections.persist.docker.plugins.module_utils._atomic import (
    TEMP_PREFIX,
    fsync_directory,
    stale_temporary_files,
)
from ansible_collections.persist.docker.plugins.module_utils._errors import PruneError
from ansible_collections.persist.docker.plugins.module_utils._options import Params
from ansible_collections.persist.docker.plugins.module_utils._retention import RetentionPolicy, parse_duration, plan
from ansible_collections.persist.docker.plugins.module_utils._text import counted

DEFAULT_INCOMPLETE_GRACE = "1d"


@dataclass(frozen=True)
class PruneOptions:
    """The options of backup_prune (see the module's documentation): the validated policy,
    and the grace of leftovers as given (``grace_text``) and as a duration."""

    path: str
    policy: RetentionPolicy
    grace: datetime.timedelta
    grace_text: str = DEFAULT_INCOMPLETE_GRACE
    volume: Optional[str] = None

    @classmethod
    def from_params(cls, params: Params) -> "PruneOptions":
        """PruneError for a policy or grace that is not valid."""
        grace_text = params.get("incomplete_grace")
        grace_text = DEFAULT_INCOMPLETE_GRACE if grace_text is None else str(grace_text).strip()
        return cls(path=params["path"], policy=RetentionPolicy.from_options(params), grace=parse_duration(grace_text, "incomplete_grace"),
                   grace_text=grace_text, volume=params.get("volume"))


_SCAN_ATTEMPTS = 3


def _format_time(created):
    return created.strftime("%Y-%m-%dT%H:%M:%SZ")


def _age_text(seconds):
    if seconds < 3600:
        return counted(int(seconds // 60), "minute")
    if seconds < 2 * 86400:
        return counted(int(seconds // 3600), "hour")
    return counted(int(seconds // 86400), "day")


def _named_for(name, volume):
    """Whether a file whose metadata cannot say its volume is taken as ``volume``'s: its name
    starts with the volume's (as the default name template makes it)."""
    return volume is None or name.startswith(volume)


def _scan(path):
    """scan_directory, again when a file vanished meanwhile (a concurrent prune)."""
    for attempt in range(_SCAN_ATTEMPTS):
        try:
            return scan_directory(path)
        except FileNotFoundError:
            if attempt == _SCAN_ATTEMPTS - 1:
                raise
    return []  # pragma: no cover - the loop returns or raises


def _mtime(path):
    """The file's modification time, or None when it vanished meanwhile."""
    try:
        return os.lstat(path).st_mtime
    except FileNotFoundError:
        return None


def _regular_file(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _local_writer_alive(name):
    """Whether temporary file ``name`` belongs to a process on this host that still runs."""
    writer, _dot, pid = name.rpartition(".")
    host = socket.gethostname().replace("/", "_")
    return pid.isdigit() and writer.endswith("." + host) and os.path.exists("/proc/%s" % pid)


class PrunePlan:
    """Everything a prune of one directory deletes and keeps, decided before any deletion."""

    def __init__(self, path, volume, policy, grace, grace_text, now):
        self.path = path
        self.volume = volume
        self.policy = policy
        self.grace = grace
        self.grace_text = grace_text
        self.now = now
        self.deleted = []
        self.kept = []
        self.leftovers = []
        self.in_progress = []
        self.damaged = []
        self.ignored = []
        self.volumes = {}
        self.archives = []

    def _in_scope(self, volume, name):
        if self.volume is None:
            return True
        return volume == self.volume if volume is not None else _named_for(name, self.volume)

    def _young(self, path, threshold_seconds, what):
        """None when ``path`` is older than the threshold, else the reason it stays."""
        mtime = _mtime(path)
        if mtime is None:
            return "vanished while the directory was read"
        age = self.now - mtime
        if age > threshold_seconds:
            return None
        return "may be in progress: %s, last written %s ago; removed once older than %s" % (what, _age_text(max(age, 0)), self.grace_text)

    def survey(self):
        complete: Dict[str, Any] = {}
        for entry in _scan(self.path):
            name = os.path.basename(entry["path"])
            if not self._in_scope(entry["volume"], name):
                continue
            if entry["status"] == "incomplete":
                self._incomplete(entry, name)
                continue
            self.archives.append(name)
            if entry["status"] == "complete":
                try:
                    created = parse_created(entry["created"])
                    if not isinstance(entry["volume"], str) or not entry["volume"]:
                        raise ValueError("it names no volume (volume.name)")
                except ValueError as exc:
                    entry = dict(entry, status="damaged", reason="sidecar %s cannot be used: %s" % (entry["sidecar"], exc))
                else:
                    complete.setdefault(entry["volume"], []).append((entry, created))
                    continue
            self.damaged.append(dict(path=entry["path"], volume=entry["volume"], created=entry["created"], reason=entry["reason"]))
        for volume in sorted(complete):
            self._retain(volume, complete[volume])
        self._temporary_files()
        self._orphan_sidecars()
        self.archives.sort()
        return self

    def _incomplete(self, entry, name):
        # Archives of this collection carry their UTC creation time in their name
        # (name_template's {timestamp}); one without a sidecar and without it is not ours.
        if name_timestamp(name) is None:
            self.ignored.append(dict(
                path=entry["path"],
                reason="no metadata sidecar and no UTC timestamp in its name: not taken as a backup of persist.docker, left alone",
            ))
            return
        self.archives.append(name)
        reason = self._young(entry["path"], self.grace.total_seconds(), "archive without its metadata sidecar")
        if reason is None:
            self.leftovers.append(dict(path=entry["path"], reason="archive without a metadata sidecar (a backup that did not finish)"))
        else:
            self.in_progress.append(dict(path=entry["path"], reason=reason))

    def _retain(self, volume, backups):
        by_path = dict((entry["path"], (entry, created)) for entry, created in backups)
        decision = plan([(entry["path"], created) for entry, created in backups], self.policy)
        for path, reasons in decision.kept:
            entry, created = by_path[path]
            self.kept.append(dict(path=path, volume=volume, created=_format_time(created), reasons=reasons))
        why = "kept by no rule of the policy (%s)" % self.policy.describe()
        for path in decision.deleted:
            entry, created = by_path[path]
            self.deleted.append(dict(path=path, sidecar=entry["sidecar"], volume=volume, created=_format_time(created), reason=why))
        self.volumes[volume] = dict(
            backups=len(backups),
            kept=len(decision.kept),
            deleted=len(decision.deleted),
            newest=decision.kept[0][0],
        )

    def _temporary_files(self):
        stale = set(stale_temporary_files(self.path, self.grace.total_seconds(), self.now))
        for entry in sorted(os.scandir(self.path), key=lambda item: item.name):
            if not entry.name.startswith(TEMP_PREFIX) or not entry.is_file(follow_symlinks=False):
                continue
            if not _named_for(entry.name[len(TEMP_PREFIX):], self.volume):
                continue
            if _local_writer_alive(entry.name):
                self.in_progress.append(dict(path=entry.path, reason="may be in progress: temporary file of a process on this host that still runs"))
            elif entry.path in stale:
                self.leftovers.append(dict(path=entry.path, reason="temporary file of an unfinished write whose writer is gone"))
            else:
                reason = self._young(entry.path, self.grace.total_seconds(), "temporary file of a write")
                self.in_progress.append(dict(path=entry.path, reason=reason or "may be in progress: temporary file of a write"))

    def _orphan_sidecars(self):
        # A backup names its sidecar microseconds before its archive: never less than
        # ORPHAN_SIDECAR_GRACE, so a short incomplete_grace cannot catch that moment.
        threshold = max(self.grace.total_seconds(), ORPHAN_SIDECAR_GRACE)
        for sidecar in orphan_sidecars(self.path, float("-inf"), self.now):
            if not _regular_file(sidecar):
                continue
            try:
                volume = read_metadata(sidecar)["volume"].get("name")
            except (MetadataError, AttributeError):
                volume = None
            if not self._in_scope(volume, os.path.basename(sidecar)[:-len(SIDECAR_SUFFIX)]):
                continue
            reason = self._young(sidecar, threshold, "metadata sidecar whose archive is not there yet")
            if reason is None:
                self.leftovers.append(dict(path=sidecar, reason="metadata sidecar without its archive"))
            else:
                self.in_progress.append(dict(path=sidecar, reason=reason))

    def after(self):
        """Archive names left once the plan is carried out."""
        gone = set(os.path.basename(item["path"]) for item in self.deleted + self.leftovers)
        return [name for name in self.archives if name not in gone]


def _remove(path, plan_, done):
    try:
        os.unlink(path)
    except FileNotFoundError:
        return  # deleted meanwhile (a concurrent prune): the goal is reached
    except OSError as exc:
        raise PruneError(
            "Cannot delete %s: %s. %s deleted before it. Run the task as a user who may write to "
            "the backup directory %s (for example with become: true) or fix its permissions, then "
            "run it again." % (path, exc.strerror or exc, counted(len(done), "file was", "files were"), plan_.path),
            path=path,
            deleted_files=list(done),
        )
    done.append(path)


def carry_out(plan_):
    """Delete what ``plan_`` lists: each backup's sidecar first, then its archive (a kill in
    between leaves an archive without a sidecar, which a later prune removes); then leftovers."""
    done: List[str] = []
    for item in plan_.deleted:
        _remove(item["sidecar"], plan_, done)
        _remove(item["path"], plan_, done)
    for item in plan_.leftovers:
        _remove(item["path"], plan_, done)
    if done:
        try:
            fsync_directory(plan_.path)
        except OSError as exc:
            raise PruneError(
                "Deleted %s from %s, but flushing the directory failed: %s. The deletions may not "
                "survive a crash; check the file system, then run the task again." % (counted(len(done), "file"), plan_.path, exc),
                path=plan_.path,
                deleted_files=list(done),
            )
    return done


def _warnings(plan_):
    warnings = []
    for item in plan_.damaged:
        warnings.append(
            "%s is damaged and was left in place: %s. Look at it (persist.docker.backup_verify), "
            "then delete or repair it by hand." % (item["path"], item["reason"])
        )
    if plan_.volume is not None and plan_.volume not in plan_.volumes:
        warnings.append("%s holds no complete backup of volume %s; nothing of it was pruned." % (plan_.path, plan_.volume))
    return warnings


def _message(plan_, check_mode):
    verb = "would delete" if check_mode else "deleted"
    parts = ["%s %s of %s" % (verb, counted(len(plan_.deleted), "backup"), counted(len(plan_.volumes), "volume"))]
    if plan_.leftovers:
        parts.append("%s %s of unfinished backups" % ("would remove" if check_mode else "removed", counted(len(plan_.leftovers), "leftover file")))
    if plan_.damaged:
        parts.append("left %s in place" % counted(len(plan_.damaged), "damaged backup"))
    return "%s in %s" % ("; ".join(parts), plan_.path)


def prune(options, check_mode, diff=False, now=None):
    """Prune ``options.path`` by the keep_* policy (a PruneOptions); see the backup_prune
    module for the result. ``now`` (epoch seconds) only dates leftovers against the grace."""
    path, policy = options.path, options.policy
    if not os.path.isdir(path):
        raise PruneError(
            "The backup directory %s does not exist or is not a directory; path names the directory "
            "that holds the archives (the dest of persist.docker.volume_backup)." % path,
            path=path,
        )
    now = time.time() if now is None else now
    try:
        plan_ = PrunePlan(path, options.volume, policy, options.grace, options.grace_text, now).survey()
    except OSError as exc:
        raise PruneError(
            "Cannot read the backup directory %s: %s. Run the task as a user who may read it (for "
            "example with become: true)." % (path, exc),
            path=path,
        )
    result = dict(
        changed=bool(plan_.deleted or plan_.leftovers),
        msg=_message(plan_, check_mode),
        path=path,
        policy=policy.describe(),
        deleted=plan_.deleted,
        kept=plan_.kept,
        removed_incomplete=[item["path"] for item in plan_.leftovers],
        leftovers=plan_.leftovers,
        in_progress=plan_.in_progress,
        damaged=plan_.damaged,
        ignored=plan_.ignored,
        volumes=plan_.volumes,
        warnings=_warnings(plan_),
    )
    if diff:
        result["diff"] = dict(
            before=dict(archives=plan_.archives),
            after=dict(archives=plan_.after()),
            before_header=path,
            after_header=path,
        )
    if not check_mode:
        carry_out(plan_)
    return result
