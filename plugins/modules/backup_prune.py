#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_prune
short_description: Delete old volume backups from a directory by a grandfather-father-son retention policy
version_added: 0.1.0
description:
  - Applies a retention policy to the complete backups in a backup directory on the managed node,
    separately for each volume, and deletes the backups that no rule keeps. Every kept backup is
    returned with the rules that keep it, every deleted one with the reason.
  - Also removes what unfinished backups left behind once it is older than O(incomplete_grace).
    These are archives without a metadata sidecar, sidecars without an archive, and temporary files.
  - Works on the directory alone. It needs no Docker engine and can run on a backup server.
  - The decision uses only the creation times recorded in the sidecars (C(created), UTC), never the
    current time or the files' times, so the same directory and policy always give the same
    answer. The current time only decides whether a leftover is older than O(incomplete_grace).
  - "How the rules choose, all in UTC. The complete backups of a volume are ordered newest first.
    Two backups with the same creation time are ordered by path, the one whose path sorts later
    counting as the newer. A backup is kept when any rule keeps it, and every other backup is deleted."
  - The newest complete backup of each volume is always kept (reason C(newest)), whatever the policy.
  - O(keep_last=N) keeps the N newest backups (reason C(last N)).
  - O(keep_hourly), O(keep_daily), O(keep_weekly), O(keep_monthly) and O(keep_yearly) group the
    backups into periods. The periods are the UTC hour, the UTC date, the ISO 8601 week (weeks start on
    Monday; the week-year can differ from the calendar year, so 2026-12-31 and 2027-01-01 are
    both in 2026-W53), the calendar month and the calendar year. Walking from the newest backup to
    the oldest, the newest backup of each period is kept until N periods have one. Reasons read
    like C(hourly 2026-11-25T13), C(daily 2026-11-25), C(weekly 2026-W48), C(monthly 2026-11) and
    C(yearly 2026).
  - Periods without any backup do not count. O(keep_daily=7) keeps one backup for each of the
    seven most recent days that have a backup, even when those days span a month of gaps.
  - O(keep_within) keeps every backup created at most that long before the newest backup of the
    volume, the bound included (reason C(within 7d of newest)). It counts back from the newest
    backup, not from now, so a volume whose backups stopped long ago keeps its history.
  - Never deleted are the newest complete backup of each volume and damaged backups (an unreadable
    sidecar, an unknown format, an archive whose size differs from its sidecar, or a sidecar
    without a usable creation time or volume name). Damaged backups are listed in RV(damaged)
    with a warning, for someone to look at. Leftovers younger than O(incomplete_grace) are kept
    too, because a backup may still be writing them. So is anything that is not a file of this
    collection.
  - Deleting a backup removes its sidecar first, then its archive. A run killed in between
    leaves an archive without a sidecar, which no listing or restore treats as a backup. A later
    prune removes it once it is older than O(incomplete_grace).
author:
  - persist.docker maintainers (@persist-docker)
extends_documentation_fragment:
  - persist.docker._docker.attributes
attributes:
  check_mode:
    support: full
    details:
      - Makes the same plan as a real run and returns the same lists (RV(deleted),
        RV(removed_incomplete), RV(kept) ...), deleting nothing. A real run that follows deletes
        exactly that set, unless backups or leftovers were added or aged meanwhile.
  diff_mode:
    support: full
    details:
      - The archive names in scope before and after.
  idempotent:
    support: full
    details:
      - A second run with the same policy finds nothing to delete. Only a new backup, or a leftover
        that has grown older than O(incomplete_grace), changes that.
options:
  path:
    description:
      - The backup directory (the O(persist.docker.volume_backup#module:dest) of the backups).
    type: path
    required: true
  volume:
    description:
      - Prune only the backups of this volume. By default every volume with a backup in O(path)
        is pruned, each separately.
      - Complete backups belong to the volume their sidecar names. Leftovers and damaged archives
        whose sidecar cannot say so are taken as the volume's when their file name starts with
        the volume's name, as the default name template makes it.
    type: str
  keep_last:
    description:
      - Keep the N newest backups of each volume. V(0) or unset turns the rule off.
    type: int
  keep_hourly:
    description:
      - Keep the newest backup of each of the N most recent UTC hours that have a backup.
    type: int
  keep_daily:
    description:
      - Keep the newest backup of each of the N most recent UTC days that have a backup.
    type: int
  keep_weekly:
    description:
      - Keep the newest backup of each of the N most recent ISO 8601 weeks (Monday to Sunday, UTC)
        that have a backup.
    type: int
  keep_monthly:
    description:
      - Keep the newest backup of each of the N most recent calendar months (UTC) that have a backup.
    type: int
  keep_yearly:
    description:
      - Keep the newest backup of each of the N most recent calendar years (UTC) that have a backup.
    type: int
  keep_within:
    description:
      - Keep every backup created at most this long before the volume's newest backup.
      - A duration is one or more C(<number><unit>), each unit at most once. The units are V(h)
        (hours), V(d) (days), V(w) (weeks), V(m) (30 days, not minutes) and V(y) (365 days). No
        calendar is involved. Examples are V(36h), V(7d) and V(2w3d).
    type: str
  incomplete_grace:
    description:
      - How old a leftover must be before it is removed. Leftovers are archives without a sidecar,
        sidecars without an archive, and temporary files named C(.persist-partial-*). Younger ones
        are kept and listed in RV(in_progress), because a backup may still be writing them.
      - The age is taken from the file's modification time. The duration grammar is that of
        O(keep_within).
      - A temporary file of a process that still runs on this host is kept whatever its age. One
        whose process on this host has ended is removed at once.
      - A sidecar without an archive is kept for at least ten minutes whatever this says. A backup
        names its sidecar just before its archive.
      - An archive without a sidecar is only taken as a leftover of this collection when its name
        holds a UTC timestamp such as C(20261127T053000Z), as the names of
        O(persist.docker.volume_backup#module:name_template) with C({timestamp}) (the default) do.
        Others are listed in RV(ignored) and left alone.
    type: str
    default: 1d
notes:
  - At least one of O(keep_last), O(keep_hourly), O(keep_daily), O(keep_weekly), O(keep_monthly),
    O(keep_yearly) and O(keep_within) must be set to more than zero. An empty policy would delete all
    but the newest backup of each volume, so the module refuses it.
  - Files whose names are not archive, sidecar or temporary names of this collection (C(.tar.zst),
    C(.tar.gz) or C(.tar) with a C(.json) sidecar, C(.persist-partial-*)) are never touched and
    never listed. Nor are symbolic links and directories.
  - A file that another run deleted meanwhile is not an error. If a deletion fails, for example
    because permission is denied, the task fails. It names the file and the files already deleted.
seealso:
  - module: persist.docker.volume_backup
  - module: persist.docker.backup_info
"""

EXAMPLES = r"""
- name: Keep a week of dailies, a month of weeklies and a year of monthlies
  persist.docker.backup_prune:
    path: /srv/backups
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 12
  register: pruned

- name: Show what went and why the rest stays
  ansible.builtin.debug:
    msg:
      - "{{ pruned.deleted | map(attribute='path') | list }}"
      - "{{ pruned.kept | map(attribute='reasons') | list }}"

- name: Preview the pruning of one volume, without deleting anything
  persist.docker.backup_prune:
    path: /srv/backups
    volume: pgdata
    keep_last: 3
    keep_within: 2w
  check_mode: true
  diff: true

- name: Hourly backups, kept for two days, plus the last backup of each of the past 30 days
  persist.docker.backup_prune:
    path: /srv/backups/uploads
    keep_within: 48h
    keep_daily: 30
    incomplete_grace: 6h
"""

RETURN = r"""
path:
  description: The backup directory pruned.
  returned: always
  type: str
  sample: /srv/backups
policy:
  description: The rules in force.
  returned: always
  type: str
  sample: keep_daily=7, keep_weekly=4
deleted:
  description: The backups deleted (in check mode, that would be deleted), per volume newest first.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path of the archive.
      type: str
      sample: /srv/backups/pgdata-20261101T030000Z.tar.zst
    sidecar:
      description: Path of its metadata sidecar, deleted before the archive.
      type: str
      sample: /srv/backups/pgdata-20261101T030000Z.tar.zst.json
    volume:
      description: The volume it is a backup of.
      type: str
      sample: pgdata
    created:
      description: Its creation time (UTC) from the sidecar.
      type: str
      sample: "2026-11-01T03:00:00Z"
    reason:
      description: Why it goes.
      type: str
      sample: "kept by no rule of the policy (keep_daily=7, keep_weekly=4)"
kept:
  description: The complete backups kept, per volume newest first, each with every rule that keeps it.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path of the archive.
      type: str
    volume:
      description: The volume it is a backup of.
      type: str
    created:
      description: Its creation time (UTC) from the sidecar.
      type: str
    reasons:
      description: The rules that keep it.
      type: list
      elements: str
      sample: ["newest", "daily 2026-11-30", "weekly 2026-W49"]
removed_incomplete:
  description: Paths of the leftovers of unfinished backups removed (in check mode, that would be removed).
  returned: always
  type: list
  elements: str
leftovers:
  description: The same files as RV(removed_incomplete), each with what it is.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path of the file.
      type: str
    reason:
      description: What it is.
      type: str
      sample: "archive without a metadata sidecar (a backup that did not finish)"
in_progress:
  description: Leftovers kept because a backup may still be writing them.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path of the file.
      type: str
    reason:
      description: Why it stays.
      type: str
      sample: "may be in progress: temporary file of a write, last written 3 minutes ago; removed once older than 1d"
damaged:
  description: Backups that cannot be trusted. They are never deleted, and each one comes with a warning.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path of the archive.
      type: str
    volume:
      description: The volume, when its sidecar says.
      type: str
    created:
      description: The creation time its sidecar records, if any.
      type: str
    reason:
      description: What is wrong.
      type: str
      sample: "archive is 5120 bytes, its sidecar says 10240"
ignored:
  description: Archive-named files without a sidecar whose names carry no UTC timestamp. They are not taken as ours and are left alone.
  returned: always
  type: list
  elements: dict
volumes:
  description: Per volume, counts of its complete backups, and the newest one (always kept).
  returned: always
  type: dict
  sample: {"pgdata": {"backups": 30, "kept": 11, "deleted": 19, "newest": "/srv/backups/pgdata-20261130T030000Z.tar.zst"}}
"""

from ansible_collections.persist.docker.plugins.module_utils._local_runner import build_local_module, run_local
from ansible_collections.persist.docker.plugins.module_utils._prune_ops import DEFAULT_INCOMPLETE_GRACE, PruneOptions, prune
from ansible_collections.persist.docker.plugins.module_utils._retention import retention_argument_spec


def main():
    module = build_local_module(
        dict(
            path=dict(type="path", required=True),
            volume=dict(type="str"),
            incomplete_grace=dict(type="str", default=DEFAULT_INCOMPLETE_GRACE),
            **retention_argument_spec()
        ),
        supports_check_mode=True,
    )
    run_local(module, lambda: prune(PruneOptions.from_params(module.params), module.check_mode, module._diff))


if __name__ == "__main__":
    main()
