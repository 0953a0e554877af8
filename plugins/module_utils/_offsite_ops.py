# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The backup_offsite operation: copies of complete backups on SSH servers and S3 buckets,
checked on the far side, with GFS retention there.

For each target: list what is there, decide what to send (_offsite_plan.decide) and what
retention deletes (_offsite_plan.RetentionOnTarget); check mode stops there and reports
the same lists. A real run first deletes the copies retention deletes whatever is sent,
then sends (archive, check, sidecar), then deletes what retention deletes given what really
arrived. A failure fails that archive (or that target) and the others go on; the task fails
at the end naming each. The backup directory is only read.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import SIDECAR_SUFFIX, scan_directory
from ansible_collections.persist.docker.plugins.module_utils._errors import OffsiteError
from ansible_collections.persist.docker.plugins.module_utils._offsite_backend import open_target, read_listing
from ansible_collections.persist.docker.plugins.module_utils._offsite_plan import RetentionOnTarget, choose, decide, of_volume
from ansible_collections.persist.docker.plugins.module_utils._offsite_target import MIB, check_target, masker_for
from ansible_collections.persist.docker.plugins.module_utils._options import Params
from ansible_collections.persist.docker.plugins.module_utils._retention import POLICY_OPTIONS, RetentionPolicy
from ansible_collections.persist.docker.plugins.module_utils._text import counted


@dataclass(frozen=True)
class OffsiteOptions:
    """The options of backup_offsite (see the module's documentation): ``targets`` are
    target dicts (_offsite_target), ``policy`` the retention on each (None: none)."""

    path: str
    targets: Tuple[Mapping[str, Any], ...]
    volume: Optional[str] = None
    select: str = "latest"
    policy: Optional[RetentionPolicy] = None

    @classmethod
    def from_params(cls, params: Params) -> "OffsiteOptions":
        given = any(params.get(option) for option in POLICY_OPTIONS)
        return cls(
            path=params["path"], targets=tuple(params["targets"]), volume=params.get("volume"), select=params["select"],
            policy=RetentionPolicy.from_options(params) if given else None,
        )


def _local_candidates(options):
    path = options.path
    if not os.path.isdir(path):
        raise OffsiteError(
            "The backup directory %s does not exist or is not a directory; path names the directory that holds the archives (the "
            "dest of persist.docker.volume_backup)." % path, path=path)
    try:
        candidates = choose(scan_directory(path), options.select, options.volume)
        for candidate in candidates:
            with open(candidate["sidecar"], "rb") as handle:
                candidate["sidecar_data"] = handle.read()
            candidate["name"] = os.path.basename(candidate["path"])
    except OSError as exc:
        raise OffsiteError("Cannot read the backup directory %s: %s. Run the task as a user who may read it (for example with "
                           "become: true)." % (path, exc), path=path)
    return candidates


def _pairs(names):
    """Deletion order of copies: each sidecar before its archive."""
    order = []
    for name in names:
        order += [name + SIDECAR_SUFFIX, name]
    return order


class TargetRun:
    """Everything one task does on one target, and its report."""

    def __init__(self, target, masker, candidates, policy, volume, check_mode):
        self.target = target
        self.masker = masker
        self.candidates = candidates
        self.policy = policy
        self.volume = volume
        self.check_mode = check_mode
        self.report = dict(target=None, type=target["type"], sent=[], present=[], skipped=[], conflicts=[], deleted=[], kept=[],
                           damaged=[], incomplete=[], errors=[], created_directory=False)
        self.before = []
        self.after = []

    def _error(self, archive, msg):
        self.report["errors"].append(dict(target=self.report["target"], archive=archive, msg=self.masker.mask(msg)))

    def run(self, now):
        try:
            with open_target(self.target, self.masker) as backend:
                self.report["target"] = backend.name
                self._run(backend, now)
        except OffsiteError as exc:
            self.report["target"] = self.report["target"] or exc.details.get("target")
            self._error(exc.details.get("archive"), exc.msg)
        return self.report

    def _run(self, backend, now):
        listing, missing = read_listing(backend, now, create=not self.check_mode and bool(self.candidates))
        self.report["created_directory"] = missing and bool(self.candidates)
        in_scope = [entry for entry in listing.entries if of_volume(entry, self.volume)]
        self.before = sorted(entry["name"] for entry in in_scope)
        sends = self._decide(backend, listing)
        retention = RetentionOnTarget(self.policy, listing.complete(self.volume), [candidate for candidate, _why, _remote in sends])
        for candidate, _why, _remote in [send for send in sends if send[0]["name"] in retention.skipped]:
            self.report["skipped"].append(dict(archive=candidate["name"], volume=candidate["volume"], created=candidate["created"],
                                               reason="retention on the target would delete it at once"))
        sends = [send for send in sends if send[0]["name"] not in retention.skipped]
        first = sorted(retention.before_sending)
        deleted = self._delete(backend, first)
        arrived = self._send(backend, sends)
        self.report["kept"], planned = retention.outcome(arrived)
        deleted += self._delete(backend, [item["archive"] for item in planned if item["archive"] not in first])
        self.report["deleted"] = [item for item in planned if item["archive"] in deleted]
        repaired = set(candidate["name"] for candidate, _why, _remote in sends)
        for entry in in_scope:
            if entry["status"] != "complete" and entry["name"] not in repaired:
                self.report[entry["status"]].append(dict(archive=entry["name"], volume=entry["volume"], reason=entry["reason"]))
        self.after = sorted((set(self.before) - set(deleted)) | set(item["name"] for item in arrived))

    def _decide(self, backend, listing):
        """``[(candidate, why, remote entry)]`` to send; present and conflicting ones reported."""
        sends = []
        full = self.target["verify"] == "full"
        for candidate in self.candidates:
            remote = listing.by_name.get(candidate["name"])
            try:
                action, why = decide(candidate, remote)
                if action == "present":
                    problem = backend.presence_problem(remote) or (backend.content_problem(remote) if full else None)
                    if problem:
                        action, why = "send", "the copy on the target failed a check: %s" % problem
            except OffsiteError as exc:
                self._error(candidate["name"], exc.msg)
                continue
            if action == "present":
                self.report["present"].append(dict(archive=candidate["name"], volume=candidate["volume"], created=candidate["created"]))
            elif action == "conflict":
                self.report["conflicts"].append(dict(archive=candidate["name"], volume=candidate["volume"], reason=why))
                self._error(candidate["name"], "%s: %s." % (candidate["name"], why))
            else:
                sends.append((candidate, why, remote))
        return sends

    def _delete(self, backend, names):
        if not names or self.check_mode:
            return list(names)
        try:
            backend.delete(_pairs(names))
        except OffsiteError as exc:
            self._error(None, "%s Retention on the target deleted nothing more; the copies it keeps are all there." % exc.msg)
            return []
        return list(names)

    def _send(self, backend, sends):
        """Send each archive; returns the listing-like items of those that arrived (all of
        them in check mode)."""
        arrived = []
        full = self.target["verify"] == "full"
        for candidate, why, remote in sends:
            recorded = candidate["metadata"]["archive"]
            item = dict(archive=candidate["name"], volume=candidate["volume"], created=candidate["created"], size=recorded["size"],
                        reason=why, verified=False, transferred_bytes=None, resumed_from=None, seconds=None, mib_per_second=None, checks=[])
            if not self.check_mode:
                started = time.monotonic()
                try:
                    facts = backend.send(candidate, remote, full)
                except OffsiteError as exc:
                    self._error(candidate["name"], exc.msg)
                    continue
                except OSError as exc:
                    self._error(candidate["name"], "Sending %s to %s failed: %s. The local backup is untouched; run the task again." % (
                        candidate["name"], self.report["target"], exc))
                    continue
                seconds = time.monotonic() - started
                item.update(verified=True, transferred_bytes=facts["transferred_bytes"], resumed_from=facts["resumed_from"], checks=facts["checks"],
                            seconds=round(seconds, 3), mib_per_second=round(recorded["size"] / MIB / seconds, 1) if seconds > 0 else None)
            self.report["sent"].append(item)
            arrived.append(dict(name=candidate["name"], volume=candidate["volume"], created=candidate["created"]))
        return arrived


def _message(reports, check_mode):
    sent = sum(len(report["sent"]) for report in reports)
    deleted = sum(len(report["deleted"]) for report in reports)
    present = sum(len(report["present"]) for report in reports)
    return "%s %s and %s %s on %s; %s already there" % (
        "would send" if check_mode else "sent", counted(sent, "copy", "copies"), "would delete" if check_mode else "deleted",
        counted(deleted, "copy", "copies"), counted(len(reports), "target"), present)


def offsite(options, check_mode, diff=False, now=None):
    """Send, check and retain copies for every target of ``options`` (an OffsiteOptions); see the backup_offsite
    module for the options and the result. Raises OffsiteError, with the result in its
    details, when anything failed."""
    for index, target in enumerate(options.targets):
        check_target(target, index)
    masker = masker_for(options.targets)
    policy = options.policy
    candidates = _local_candidates(options)
    now = time.time() if now is None else now
    reports, diffs = [], []
    for target in options.targets:
        run = TargetRun(target, masker, candidates, policy, options.volume, check_mode)
        reports.append(run.run(now))
        diffs.append(dict(before=dict(archives=run.before), after=dict(archives=run.after),
                          before_header=reports[-1]["target"], after_header=reports[-1]["target"]))
    errors = [error for report in reports for error in report["errors"]]
    changed = any(report["sent"] or report["deleted"] or report["created_directory"] for report in reports)
    result = dict(
        changed=changed,
        msg=_message(reports, check_mode),
        path=options.path,
        policy=policy.describe() if policy else None,
        targets=reports,
        errors=errors,
        totals=dict(
            sent=sum(len(report["sent"]) for report in reports),
            bytes=sum(item["size"] for report in reports for item in report["sent"]),
            transferred_bytes=sum(item["transferred_bytes"] or 0 for report in reports for item in report["sent"]),
            present=sum(len(report["present"]) for report in reports),
            deleted=sum(len(report["deleted"]) for report in reports),
            errors=len(errors),
        ),
    )
    if diff:
        result["diff"] = diffs
    if errors:
        raise OffsiteError(
            "%d failure(s) on the off-host targets (the local backups are untouched; a run after the cause is fixed resumes): %s" % (
                len(errors), " | ".join("%s: %s" % (error["target"], error["msg"]) for error in errors)),
            **dict((key, value) for key, value in result.items() if key != "msg"))
    return result
