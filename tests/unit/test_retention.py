"""GFS retention: golden cases written out by hand, and properties against a reference model."""

import datetime
import heapq
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._errors import PersistError, PruneError
from ansible_collections.persist.docker.plugins.module_utils._retention import (
    COUNT_OPTIONS,
    POLICY_OPTIONS,
    RetentionPolicy,
    parse_duration,
    plan,
)

UTC = datetime.timezone.utc


def at(text):
    """``2026-11-30 03:00`` as an aware UTC datetime."""
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def daily(first, last, hour=3):
    """One backup a day at ``hour``:00 UTC from date ``first`` to ``last``, named by date."""
    day = datetime.date.fromisoformat(first)
    backups = []
    while day <= datetime.date.fromisoformat(last):
        backups.append((day.isoformat(), datetime.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)))
        day += datetime.timedelta(days=1)
    return backups


# Golden cases ------------------------------------------------------------------------------


def test_a_month_of_dailies_with_daily_7_weekly_4_monthly_2_keeps_the_hand_computed_set():
    backups = daily("2026-10-31", "2026-11-30")
    result = plan(backups, RetentionPolicy(keep_daily=7, keep_weekly=4, keep_monthly=2))
    # 2026-11-30 is a Monday (2026-W49); the Sundays 11-29, 11-22, 11-15 end W48, W47, W46.
    assert result.kept == [
        ("2026-11-30", ["newest", "daily 2026-11-30", "weekly 2026-W49", "monthly 2026-11"]),
        ("2026-11-29", ["daily 2026-11-29", "weekly 2026-W48"]),
        ("2026-11-28", ["daily 2026-11-28"]),
        ("2026-11-27", ["daily 2026-11-27"]),
        ("2026-11-26", ["daily 2026-11-26"]),
        ("2026-11-25", ["daily 2026-11-25"]),
        ("2026-11-24", ["daily 2026-11-24"]),
        ("2026-11-22", ["weekly 2026-W47"]),
        ("2026-11-15", ["weekly 2026-W46"]),
        ("2026-10-31", ["monthly 2026-10"]),
    ]
    expected_deleted = ["2026-11-23"] + ["2026-11-%02d" % day for day in range(21, 15, -1)] + ["2026-11-%02d" % day for day in range(14, 0, -1)]
    assert result.deleted == expected_deleted


def test_gaps_do_not_count_as_periods_and_the_newest_of_each_period_is_kept():
    backups = [
        ("d01", at("2026-11-01 12:00")),
        ("d02", at("2026-11-02 12:00")),
        ("d05", at("2026-11-05 12:00")),
        ("d10", at("2026-11-10 12:00")),
        ("d11-early", at("2026-11-11 01:00")),
        ("d11-late", at("2026-11-11 23:00")),
        ("d11-late-same-hour", at("2026-11-11 23:30")),
    ]
    result = plan(backups, RetentionPolicy(keep_daily=3))
    # Three days that have backups: the 11th (its newest), the 10th and the 5th; 6th-9th are gaps.
    assert result.kept == [
        ("d11-late-same-hour", ["newest", "daily 2026-11-11"]),
        ("d10", ["daily 2026-11-10"]),
        ("d05", ["daily 2026-11-05"]),
    ]
    assert result.deleted == ["d11-late", "d11-early", "d02", "d01"]

    hourly = plan(backups, RetentionPolicy(keep_hourly=2))
    assert hourly.reasons() == {
        "d11-late-same-hour": ["newest", "hourly 2026-11-11T23"],
        "d11-early": ["hourly 2026-11-11T01"],
    }


def test_iso_weeks_cross_the_year_boundary_while_years_do_not():
    backups = [
        ("mon-2026-12-28", at("2026-12-28 03:00")),
        ("thu-2026-12-31", at("2026-12-31 03:00")),
        ("fri-2027-01-01", at("2027-01-01 03:00")),
        ("mon-2027-01-04", at("2027-01-04 03:00")),
    ]
    weekly = plan(backups, RetentionPolicy(keep_weekly=2))
    # 2026-12-31 and 2027-01-01 are both in 2026-W53; 2027-W01 starts on Monday 2027-01-04.
    assert weekly.kept == [
        ("mon-2027-01-04", ["newest", "weekly 2027-W01"]),
        ("fri-2027-01-01", ["weekly 2026-W53"]),
    ]
    assert weekly.deleted == ["thu-2026-12-31", "mon-2026-12-28"]

    yearly = plan(backups, RetentionPolicy(keep_yearly=2))
    assert yearly.kept == [
        ("mon-2027-01-04", ["newest", "yearly 2027"]),
        ("thu-2026-12-31", ["yearly 2026"]),
    ]


def test_equal_creation_times_are_ordered_by_name_the_later_name_counting_as_newer():
    when = at("2026-11-30 03:00")
    backups = [("vol-b", when), ("vol-a", when), ("vol-c", when - datetime.timedelta(days=1))]
    for ordering in (backups, list(reversed(backups))):
        result = plan(ordering, RetentionPolicy(keep_last=1))
        assert result.kept == [("vol-b", ["newest", "last 1"])]
        assert result.deleted == ["vol-a", "vol-c"]
    assert plan(backups, RetentionPolicy(keep_daily=2)).kept == [
        ("vol-b", ["newest", "daily 2026-11-30"]),
        ("vol-c", ["daily 2026-11-29"]),
    ]


def test_keep_within_counts_back_from_the_newest_backup_not_from_now_and_includes_the_bound():
    # The backups stopped years ago: a policy relative to now would delete them all.
    backups = [
        ("newest", at("2020-03-10 00:00")),
        ("exactly-7d", at("2020-03-03 00:00")),
        ("a-minute-more", at("2020-03-02 23:59")),
        ("old", at("2020-01-01 00:00")),
    ]
    result = plan(backups, RetentionPolicy(keep_within="7d"))
    assert result.kept == [
        ("newest", ["newest", "within 7d of newest"]),
        ("exactly-7d", ["within 7d of newest"]),
    ]
    assert result.deleted == ["a-minute-more", "old"]
    combined = plan(backups, RetentionPolicy(keep_within="1w", keep_last=3))
    assert combined.reasons()["a-minute-more"] == ["last 3"]
    assert combined.deleted == ["old"]


def test_keep_last_and_reasons_list_every_rule_in_a_fixed_order():
    backups = daily("2026-11-01", "2026-11-05")
    result = plan(backups, RetentionPolicy(keep_last=2, keep_daily=1, keep_monthly=1, keep_yearly=1, keep_within="1d"))
    assert result.kept == [
        ("2026-11-05", ["newest", "last 2", "daily 2026-11-05", "monthly 2026-11", "yearly 2026", "within 1d of newest"]),
        ("2026-11-04", ["last 2", "within 1d of newest"]),
    ]


def test_times_in_other_zones_are_judged_in_utc():
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    # 01:00 at +02:00 on the 12th is 23:00 UTC on the 11th.
    backups = [("late", datetime.datetime(2026, 11, 12, 1, tzinfo=plus_two)), ("early", at("2026-11-11 05:00"))]
    assert plan(backups, RetentionPolicy(keep_daily=5)).kept == [("late", ["newest", "daily 2026-11-11"])]


def test_no_backups_give_an_empty_plan_and_bad_input_is_refused():
    assert plan([], RetentionPolicy(keep_last=1)).kept == []
    with pytest.raises(ValueError, match="without a time zone"):
        plan([("naive", datetime.datetime(2026, 1, 1))], RetentionPolicy(keep_last=1))
    with pytest.raises(ValueError, match="listed twice"):
        plan([("same", at("2026-01-01 00:00")), ("same", at("2026-01-02 00:00"))], RetentionPolicy(keep_last=1))


# Policy validation and durations --------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, dict(keep_last=0, keep_daily=0), dict(keep_within=""), dict(keep_within="0h", keep_weekly=0), dict(keep_last=None)],
)
def test_an_empty_policy_is_refused_naming_every_option(options):
    with pytest.raises(PruneError) as raised:
        RetentionPolicy.from_options(options)
    assert isinstance(raised.value, PersistError)
    for option in POLICY_OPTIONS:
        assert option in raised.value.msg
    assert "delete every backup but the newest" in raised.value.msg


@pytest.mark.parametrize("value", [-1, True, 1.5, "3"])
def test_counts_must_be_whole_numbers_of_zero_or_more(value):
    with pytest.raises(PruneError, match="keep_daily must be a whole number of 0 or more"):
        RetentionPolicy(keep_daily=value)


def test_describe_names_the_rules_in_force():
    assert RetentionPolicy(keep_weekly=4, keep_daily=7, keep_within="2w").describe() == "keep_daily=7, keep_weekly=4, keep_within=2w"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("36h", datetime.timedelta(hours=36)),
        ("7d", datetime.timedelta(days=7)),
        ("2w3d", datetime.timedelta(days=17)),
        ("3d2w", datetime.timedelta(days=17)),
        ("1m", datetime.timedelta(days=30)),
        ("1y", datetime.timedelta(days=365)),
        ("1y1m1w1d1h", datetime.timedelta(days=365 + 30 + 7 + 1, hours=1)),
        (" 12h ", datetime.timedelta(hours=12)),
        ("0h", datetime.timedelta(0)),
    ],
)
def test_durations_use_calendar_free_units(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "keep_within is empty"),
        ("7", "is not a duration"),
        ("d", "is not a duration"),
        ("7 d", "is not a duration"),
        ("-1d", "is not a duration"),
        ("1.5d", "is not a duration"),
        ("7d and more", "is not a duration"),
        ("7x", "unknown unit 'x'"),
        ("7D", "unknown unit 'D'"),
        ("7min", "unknown unit 'min'"),
        ("1d2d", "names the unit 'd' twice"),
        ("99999999999y", "longer than any date range"),
    ],
)
def test_bad_durations_are_refused_with_the_grammar(text, message):
    with pytest.raises(PruneError) as raised:
        parse_duration(text, "keep_within")
    assert message in raised.value.msg
    if "longer" not in message:
        assert "h (hours), d (days), w (weeks), m (30 days, not minutes) and y (365 days)" in raised.value.msg
    assert raised.value.details == {"option": "keep_within"}


def test_a_bad_keep_within_is_refused_by_the_policy():
    with pytest.raises(PruneError, match="keep_within '1 week'"):
        RetentionPolicy(keep_within="1 week")


# Properties against a reference model ------------------------------------------------------

PERIOD_KEYS = {
    # Written differently from the implementation: truncated datetimes and Monday dates.
    "keep_hourly": lambda created: created.replace(minute=0, second=0, microsecond=0),
    "keep_daily": lambda created: created.date(),
    "keep_weekly": lambda created: created.date() - datetime.timedelta(days=created.weekday()),
    "keep_monthly": lambda created: (created.year, created.month),
    "keep_yearly": lambda created: created.year,
}
DURATION_SECONDS = {"h": 3600, "d": 86400, "w": 604800}


def reference_kept(backups, counts, within_seconds):
    """The ids a policy keeps, by grouping into period dicts (an independent model)."""
    if not backups:
        return set()
    rank = dict((backup_id, (created, backup_id)) for backup_id, created in backups)
    kept = {max(rank, key=rank.get)}
    kept.update(heapq.nlargest(counts["keep_last"], rank, key=rank.get))
    for option, key_of in PERIOD_KEYS.items():
        newest_in_period = {}
        for backup_id, created in backups:
            period = key_of(created)
            if period not in newest_in_period or rank[backup_id] > rank[newest_in_period[period]]:
                newest_in_period[period] = backup_id
        for period in sorted(newest_in_period, reverse=True)[:counts[option]]:
            kept.add(newest_in_period[period])
    if within_seconds is not None:
        newest = max(created for _backup_id, created in backups)
        kept.update(backup_id for backup_id, created in backups if (newest - created).total_seconds() <= within_seconds)
    return kept


# 2026 has 53 ISO weeks: its last week runs into January 2027.
BASE = datetime.datetime(2027, 1, 1, tzinfo=UTC)
spread_times = st.datetimes(
    min_value=datetime.datetime(2023, 1, 1), max_value=datetime.datetime(2029, 12, 31), timezones=st.just(UTC)
).map(lambda created: created.replace(microsecond=0))
# Backups minutes to weeks apart, so that hours, days and weeks hold several.
clustered_times = st.integers(min_value=-60 * 24 * 60, max_value=60 * 24 * 60).map(lambda minutes: BASE + datetime.timedelta(minutes=minutes))
# Whole hours around the new year: equal times, exact keep_within bounds, week-years unlike years.
new_year_hours = st.integers(min_value=-24 * 14, max_value=24 * 14).map(lambda hours: BASE + datetime.timedelta(hours=hours))
timestamp_sets = st.lists(st.one_of(new_year_hours, clustered_times, spread_times), min_size=0, max_size=40).map(
    lambda times: [("backup-%03d" % index, created) for index, created in enumerate(times)]
)
counts_strategy = st.fixed_dictionaries(dict((option, st.integers(min_value=0, max_value=6)) for option in COUNT_OPTIONS))
within_strategy = st.one_of(
    st.none(),
    st.tuples(st.integers(min_value=0, max_value=400), st.sampled_from(sorted(DURATION_SECONDS))),
)


def policy_of(counts, within):
    text = None if within is None else "%d%s" % within
    return RetentionPolicy(keep_within=text, **counts)


def within_seconds_of(within):
    return None if within is None else within[0] * DURATION_SECONDS[within[1]]


def non_empty(counts, within):
    return any(counts.values()) or (within is not None and within[0] > 0)


@settings(max_examples=400, deadline=None)
@given(timestamp_sets, counts_strategy, within_strategy)
def test_the_plan_keeps_exactly_what_the_reference_model_keeps(backups, counts, within):
    assume(non_empty(counts, within))
    result = plan(backups, policy_of(counts, within))
    assert result.kept_ids() == reference_kept(backups, counts, within_seconds_of(within))


@settings(max_examples=300, deadline=None)
@given(timestamp_sets, counts_strategy, within_strategy, st.randoms(use_true_random=False))
def test_newest_survives_and_kept_and_deleted_partition_the_backups_in_any_input_order(backups, counts, within, rng):
    assume(non_empty(counts, within))
    policy = policy_of(counts, within)
    result = plan(backups, policy)
    shuffled = list(backups)
    rng.shuffle(shuffled)
    again = plan(shuffled, policy)
    assert (again.kept, again.deleted) == (result.kept, result.deleted)

    ids = set(backup_id for backup_id, _created in backups)
    assert result.kept_ids() | set(result.deleted) == ids
    assert not result.kept_ids() & set(result.deleted)
    assert len(result.deleted) == len(set(result.deleted))
    assert all(reasons for _backup_id, reasons in result.kept)
    if backups:
        newest = max(backups, key=lambda backup: (backup[1], backup[0]))[0]
        assert result.kept[0] == (newest, result.reasons()[newest])
        assert result.kept[0][1][0] == "newest"
        assert sum(reasons.count("newest") for _backup_id, reasons in result.kept) == 1


@settings(max_examples=300, deadline=None)
@given(timestamp_sets, counts_strategy, within_strategy, st.sampled_from(POLICY_OPTIONS), st.integers(min_value=1, max_value=5))
def test_adding_to_any_keep_option_never_deletes_more(backups, counts, within, option, extra):
    assume(non_empty(counts, within))
    before = plan(backups, policy_of(counts, within))
    if option == "keep_within":
        if within is None:
            within = (extra, "d")
        else:
            within = (within[0] + extra, within[1])
    else:
        counts = dict(counts, **{option: counts[option] + extra})
    after = plan(backups, policy_of(counts, within))
    assert before.kept_ids() <= after.kept_ids()
    assert set(after.deleted) <= set(before.deleted)


@settings(max_examples=200, deadline=None)
@given(timestamp_sets, st.sampled_from(sorted(PERIOD_KEYS)), st.integers(min_value=1, max_value=6))
def test_a_period_rule_keeps_one_backup_in_each_of_min_n_periods(backups, option, wanted):
    assume(backups)
    result = plan(backups, RetentionPolicy(**{option: wanted}))
    created = dict(backups)
    periods = set(PERIOD_KEYS[option](created[backup_id]) for backup_id in result.kept_ids())
    all_periods = set(PERIOD_KEYS[option](when) for _backup_id, when in backups)
    assert len(result.kept) == len(periods) == min(wanted, len(all_periods))


def test_reference_model_agrees_on_a_seeded_year_of_random_backups():
    # A larger, deterministic case than Hypothesis draws: a year of irregular backups.
    rng = random.Random(20261130)
    backups = [("b%04d" % index, BASE - datetime.timedelta(minutes=rng.randrange(0, 60 * 24 * 400))) for index in range(1500)]
    counts = dict(keep_last=5, keep_hourly=24, keep_daily=14, keep_weekly=8, keep_monthly=12, keep_yearly=3)
    result = plan(backups, RetentionPolicy(keep_within="3d", **counts))
    assert result.kept_ids() == reference_kept(backups, counts, 3 * 86400)
    assert 5 < len(result.kept) < 1500
