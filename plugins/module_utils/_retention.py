# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""GFS retention: which complete backups of one volume a policy keeps, and why (pure logic).

The input is the complete backups of ONE volume as ``(id, created)`` pairs (``created`` an
aware datetime) and a RetentionPolicy; nothing else (not the current time) takes part, so the
same input always gives the same answer. Rules, all in UTC:

* Backups are ordered newest first; equal ``created`` times are ordered by id, the id that
  sorts later counting as the newer.
* The newest backup is always kept (reason ``newest``), whatever the policy.
* ``keep_last N`` keeps the N newest backups (reason ``last N``).
* ``keep_hourly/daily/weekly/monthly/yearly N``: the backups are grouped into periods (UTC
  hour, UTC date, ISO 8601 week-year and week, calendar month, calendar year). Walking from
  the newest backup to the oldest, the newest backup of each period is kept until N periods
  have one kept (reason such as ``daily 2026-11-25``). Periods without any backup do not count:
  ``keep_daily 7`` keeps one backup for each of the 7 most recent days that have a backup.
* ``keep_within DURATION`` keeps every backup created at most DURATION before the NEWEST
  backup (not before now: a volume whose backups stopped a month ago keeps its history).
  The bound is inclusive. Reason ``within DURATION of newest``.
* A backup is kept when any rule keeps it (its reasons list them all); every other backup is
  deleted. A policy whose every keep_* is unset or zero is refused.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from ansible_collections.persist.docker.plugins.module_utils._errors import PruneError

# The count options, in the order their reasons are listed.
COUNT_OPTIONS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
POLICY_OPTIONS = COUNT_OPTIONS + ("keep_within",)

# Calendar-free units only: a month is 30 days and a year 365 days, whatever the calendar says.
DURATION_UNITS = {"h": 3600, "d": 86400, "w": 7 * 86400, "m": 30 * 86400, "y": 365 * 86400}
_DURATION_PART = re.compile(r"(\d+)([a-zA-Z]+)")
DURATION_HELP = (
    "a duration is one or more <number><unit> with the units h (hours), d (days), w (weeks), "
    "m (30 days, not minutes) and y (365 days), each unit at most once, for example 36h, 7d or 2w3d"
)


def retention_argument_spec() -> Dict[str, Dict[str, str]]:
    """The keep_* options (all optional), of backup_prune and of retention on off-host targets."""
    spec = dict((option, dict(type="int")) for option in COUNT_OPTIONS)
    spec["keep_within"] = dict(type="str")
    return spec


def parse_duration(text: object, option: str = "duration") -> datetime.timedelta:
    """``text`` (such as ``36h`` or ``2w3d``) as a timedelta; PruneError naming ``option``
    and the grammar when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise PruneError("%s is empty; %s." % (option, DURATION_HELP), option=option)
    stripped = text.strip()
    seconds = 0
    position = 0
    seen = set()
    for match in _DURATION_PART.finditer(stripped):
        if match.start() != position:
            break
        number, unit = match.groups()
        if unit not in DURATION_UNITS:
            raise PruneError("%s %r has the unknown unit %r; %s." % (option, text, unit, DURATION_HELP), option=option)
        if unit in seen:
            raise PruneError("%s %r names the unit %r twice; %s." % (option, text, unit, DURATION_HELP), option=option)
        seen.add(unit)
        seconds += int(number) * DURATION_UNITS[unit]
        position = match.end()
    if position != len(stripped) or not seen:
        raise PruneError("%s %r is not a duration; %s." % (option, text, DURATION_HELP), option=option)
    try:
        return datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise PruneError("%s %r is longer than any date range; use a shorter duration." % (option, text), option=option)


def _period(kind: str, created: datetime.datetime) -> Tuple[Tuple[int, ...], str]:
    """The period of ``kind`` that UTC time ``created`` falls in, as a sortable key and a label."""
    if kind == "keep_hourly":
        return (created.year, created.month, created.day, created.hour), created.strftime("%Y-%m-%dT%H")
    if kind == "keep_daily":
        return (created.year, created.month, created.day), created.strftime("%Y-%m-%d")
    if kind == "keep_weekly":
        iso = created.isocalendar()
        return (iso[0], iso[1]), "%04d-W%02d" % (iso[0], iso[1])
    if kind == "keep_monthly":
        return (created.year, created.month), created.strftime("%Y-%m")
    return (created.year,), "%04d" % created.year


PERIOD_REASONS = {
    "keep_hourly": "hourly",
    "keep_daily": "daily",
    "keep_weekly": "weekly",
    "keep_monthly": "monthly",
    "keep_yearly": "yearly",
}


class RetentionPolicy:
    """A validated policy. Counts are ints >= 0 (0 = the rule is off); ``keep_within`` is the
    duration text as given, or None."""

    def __init__(
        self, keep_last: Optional[int] = 0, keep_hourly: Optional[int] = 0, keep_daily: Optional[int] = 0, keep_weekly: Optional[int] = 0,
        keep_monthly: Optional[int] = 0, keep_yearly: Optional[int] = 0, keep_within: Optional[str] = None,
    ) -> None:
        counts = dict(
            keep_last=keep_last,
            keep_hourly=keep_hourly,
            keep_daily=keep_daily,
            keep_weekly=keep_weekly,
            keep_monthly=keep_monthly,
            keep_yearly=keep_yearly,
        )
        self.counts: Dict[str, int] = {}
        for option in COUNT_OPTIONS:
            value = counts[option]
            value = 0 if value is None else value
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PruneError("%s must be a whole number of 0 or more, not %r." % (option, value), option=option)
            self.counts[option] = value
        self.keep_within: Optional[str] = None
        self.within: Optional[datetime.timedelta] = None
        if keep_within is not None and str(keep_within).strip():
            self.keep_within = str(keep_within).strip()
            self.within = parse_duration(self.keep_within, "keep_within")
        if not any(self.counts.values()) and not self.within:
            raise PruneError(
                "The retention policy is empty: set at least one of %s to more than zero. A policy "
                "without rules would delete every backup but the newest of each volume, which is "
                "never done by default." % ", ".join(POLICY_OPTIONS),
                options=list(POLICY_OPTIONS),
            )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RetentionPolicy:
        """The policy of the keep_* keys of ``options`` (a dict such as module parameters)."""
        return cls(**dict((option, options.get(option)) for option in POLICY_OPTIONS))

    def describe(self) -> str:
        """The rules that are on, such as ``keep_last=3, keep_within=7d``."""
        parts = ["%s=%d" % (option, self.counts[option]) for option in COUNT_OPTIONS if self.counts[option]]
        if self.within:
            parts.append("keep_within=%s" % self.keep_within)
        return ", ".join(parts)


class RetentionPlan:
    """What a policy does to the backups of one volume.

    ``kept``: (id, reasons) pairs, newest first, every reasons list non-empty.
    ``deleted``: ids, newest first. Every input id is in exactly one of them.
    """

    def __init__(self, kept: List[Tuple[str, List[str]]], deleted: List[str]) -> None:
        self.kept = kept
        self.deleted = deleted

    def kept_ids(self) -> Set[str]:
        return set(backup_id for backup_id, _reasons in self.kept)

    def reasons(self) -> Dict[str, List[str]]:
        return dict(self.kept)


def newest_first(backups: Iterable[Tuple[str, datetime.datetime]]) -> List[Tuple[str, datetime.datetime]]:
    """``(id, created)`` pairs ordered newest first; equal times by id, later id first."""
    return sorted(backups, key=lambda backup: (backup[1], backup[0]), reverse=True)


def _normalized(backups: Iterable[Tuple[str, datetime.datetime]]) -> List[Tuple[str, datetime.datetime]]:
    ids = set()
    result = []
    for backup_id, created in backups:
        if created.tzinfo is None or created.utcoffset() is None:
            raise ValueError("backup %s has a creation time without a time zone: %r" % (backup_id, created))
        if backup_id in ids:
            raise ValueError("backup %s is listed twice" % (backup_id,))
        ids.add(backup_id)
        result.append((backup_id, created.astimezone(datetime.timezone.utc)))
    return newest_first(result)


def plan(backups: Iterable[Tuple[str, datetime.datetime]], policy: RetentionPolicy) -> RetentionPlan:
    """The RetentionPlan of ``policy`` (a RetentionPolicy) over ``backups``: an iterable of
    ``(id, created)`` with unique ids and time-zone-aware datetimes, of one volume."""
    ordered = _normalized(backups)
    reasons: Dict[str, List[str]] = dict((backup_id, []) for backup_id, _created in ordered)
    if not ordered:
        return RetentionPlan([], [])
    reasons[ordered[0][0]].append("newest")

    keep_last = policy.counts["keep_last"]
    for backup_id, _created in ordered[:keep_last]:
        reasons[backup_id].append("last %d" % keep_last)

    for option, reason in PERIOD_REASONS.items():
        wanted = policy.counts[option]
        if not wanted:
            continue
        covered: Set[Tuple[int, ...]] = set()
        for backup_id, created in ordered:
            key, label = _period(option, created)
            if key in covered:
                continue
            if len(covered) == wanted:
                break
            # Newest first: the first backup met in a period is that period's newest.
            covered.add(key)
            reasons[backup_id].append("%s %s" % (reason, label))

    if policy.within is not None:
        oldest_kept = ordered[0][1] - policy.within
        for backup_id, created in ordered:
            if created < oldest_kept:
                break
            reasons[backup_id].append("within %s of newest" % policy.keep_within)

    kept = [(backup_id, reasons[backup_id]) for backup_id, _created in ordered if reasons[backup_id]]
    deleted = [backup_id for backup_id, _created in ordered if not reasons[backup_id]]
    return RetentionPlan(kept, deleted)
