"""Off-host copies, pure logic: what a target holds, what to send, what its retention deletes."""

import datetime
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._offsite_plan import (
    RemoteListing,
    RetentionOnTarget,
    choose,
    decide,
    of_volume,
    parse_sidecar,
)
from ansible_collections.persist.docker.plugins.module_utils._retention import RetentionPolicy

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def stamp(created):
    return created.strftime("%Y%m%dT%H%M%SZ")


def sidecar(volume, created, size=100, sha256="ab" * 32):
    return json.dumps({
        "format_version": 1, "volume": {"name": volume}, "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"), "compression": "zstd",
        "archive": {"size": size, "sha256": sha256}, "tree": {"digest": "cd" * 32, "entries": 1, "bytes": 1},
    }, sort_keys=True).encode()


def copy_of(volume, created, size=100):
    """(name, files entries, sidecar bytes) of a copy on a target, written when it was created."""
    name = "%s-%s.tar.zst" % (volume, stamp(created))
    return name, {name: (size, created.timestamp()), name + ".json": (300, created.timestamp())}, sidecar(volume, created, size)


def listing_of(*copies, extra_files=None, sidecars=None):
    files, sidecar_data = dict(extra_files or {}), dict(sidecars or {})
    for name, entries, data in copies:
        files.update(entries)
        sidecar_data.setdefault(name, data)
    return RemoteListing(files, sidecar_data, lambda name: "ssh://h/t/" + name, NOW)


def at(day, hour=3):
    return datetime.datetime(2026, 11, day, hour, tzinfo=UTC)


def local(volume, created, status="complete", size=100):
    name = "%s-%s.tar.zst" % (volume, stamp(created))
    return dict(path="/b/" + name, name=name, volume=volume, created=created.strftime("%Y-%m-%dT%H:%M:%SZ"), status=status,
                sidecar_data=sidecar(volume, created, size), metadata=json.loads(sidecar(volume, created, size)))


def test_a_listing_marks_complete_incomplete_damaged_and_keeps_temporaries_and_foreign_files_apart():
    good = copy_of("db", at(28))
    lone_name = "db-%s.tar.zst" % stamp(at(29))
    short = copy_of("db", at(27), size=100)
    listing = listing_of(
        good, short,
        extra_files={lone_name: (100, at(29).timestamp()), ".persist-partial-db-x.tar.zst": (50, NOW), "notes.txt": (5, NOW),
                     "gone-20261101T000000Z.tar.zst.json": (300, NOW)},
        sidecars={short[0]: sidecar("db", at(27), size=999)},
    )
    status = dict((entry["name"], (entry["status"], entry["reason"])) for entry in listing.entries)
    assert status[good[0]] == ("complete", None)
    assert status[lone_name][0] == "incomplete"
    assert status[short[0]] == ("damaged", "the copy is 100 bytes, its sidecar says 999")
    assert "notes.txt" not in status
    assert listing.temporaries == [".persist-partial-db-x.tar.zst"]
    assert listing.orphans == ["gone-20261101T000000Z.tar.zst.json"]
    assert [entry["name"] for entry in listing.complete()] == [good[0]]
    assert listing.by_name[good[0]]["path"] == "ssh://h/t/" + good[0]


def test_a_sidecar_on_the_target_that_lies_about_its_time_or_cannot_be_read_makes_a_damaged_copy():
    name, files, _data = copy_of("db", at(28))
    forged = sidecar("db", at(30))  # claims a later time than its name
    listing = listing_of((name, files, forged), extra_files={"x-20261101T000000Z.tar.zst": (1, NOW), "x-20261101T000000Z.tar.zst.json": (2, NOW)},
                         sidecars={"x-20261101T000000Z.tar.zst": None})
    entry = listing.by_name[name]
    assert entry["status"] == "damaged" and entry["damage"] == "created"
    assert "its name says 20261128T030000Z" in entry["reason"]
    assert listing.by_name["x-20261101T000000Z.tar.zst"]["status"] == "damaged"
    assert "larger than" in listing.by_name["x-20261101T000000Z.tar.zst"]["reason"]


def test_parse_sidecar_names_what_is_missing_and_refuses_other_format_versions():
    for data, words in ((b"[1]", "does not hold a JSON object"), (b'{"format_version": 1}', "lacks volume"),
                        (b"{not json", "cannot be read"), (sidecar("v", at(1)).replace(b'"format_version": 1', b'"format_version": 9'), "format version 9")):
        try:
            parse_sidecar(data, "s3://b/x.json")
        except ValueError as exc:
            assert words in str(exc) and "s3://b/x.json" in str(exc)
        else:
            raise AssertionError("accepted %r" % data)


def test_a_copy_without_a_readable_sidecar_is_of_the_volume_its_name_starts_with():
    listing = listing_of(copy_of("db", at(28)), extra_files={"db-20261129T000000Z.tar.zst": (1, NOW), "web-20261129T000000Z.tar.zst": (1, NOW)})
    assert sorted(entry["name"] for entry in listing.entries if of_volume(entry, "db")) == ["db-20261128T030000Z.tar.zst", "db-20261129T000000Z.tar.zst"]
    assert len([entry for entry in listing.entries if of_volume(entry, None)]) == 3


def test_choose_takes_only_complete_backups_the_latest_per_volume_or_all():
    entries = [local("a", at(29)), local("b", at(29), status="damaged"), local("a", at(28)), local("b", at(27)), local("a", at(26), status="incomplete")]
    assert [entry["name"] for entry in choose(entries, "latest")] == [entries[0]["name"], entries[3]["name"]]
    assert [entry["name"] for entry in choose(entries, "missing")] == [entries[0]["name"], entries[2]["name"], entries[3]["name"]]
    assert [entry["name"] for entry in choose(entries, "missing", "b")] == [entries[3]["name"]]


def test_decide_sends_what_is_missing_or_broken_keeps_what_is_there_and_refuses_another_backup_under_the_same_name():
    candidate = local("db", at(28))
    same = listing_of(copy_of("db", at(28)))
    assert decide(candidate, None) == ("send", "not on the target")
    assert decide(candidate, same.by_name[candidate["name"]]) == ("present", None)
    lone = listing_of(extra_files={candidate["name"]: (100, at(28).timestamp())}).by_name[candidate["name"]]
    assert decide(candidate, lone)[0] == "send" and "without the sidecar" in decide(candidate, lone)[1]
    damaged = listing_of(copy_of("db", at(28), size=50), sidecars={candidate["name"]: candidate["sidecar_data"]}).by_name[candidate["name"]]
    assert decide(candidate, damaged) == ("send", "the copy on the target is damaged: the copy is 50 bytes, its sidecar says 100")
    other = listing_of((candidate["name"], {candidate["name"]: (100, NOW), candidate["name"] + ".json": (1, NOW)}, sidecar("db", at(28), sha256="ef" * 32)))
    action, why = decide(candidate, other.by_name[candidate["name"]])
    assert action == "conflict" and "another backup under the same name" in why


def test_retention_on_target_deletes_first_what_goes_anyway_skips_what_would_go_at_once_and_never_the_newest():
    remote = [dict(name="db-%d" % day, volume="db", created=at(day).strftime("%Y-%m-%dT%H:%M:%SZ")) for day in (20, 25, 26)]
    candidates = [dict(name="db-29", volume="db", created=at(29).strftime("%Y-%m-%dT%H:%M:%SZ")),
                  dict(name="db-10", volume="db", created=at(10).strftime("%Y-%m-%dT%H:%M:%SZ"))]
    retention = RetentionOnTarget(RetentionPolicy(keep_last=2), remote, candidates)
    assert retention.skipped == {"db-10"}
    assert retention.before_sending == {"db-20"}
    kept, deleted = retention.outcome([candidates[0]])
    assert [(item["archive"], item["reasons"]) for item in kept] == [("db-29", ["newest", "last 2"]), ("db-26", ["last 2"])]
    assert [item["archive"] for item in deleted] == ["db-25", "db-20"]
    assert deleted[0]["reason"] == "kept by no rule of the policy (keep_last=2)"
    # The send failed: the copies there stay as the policy keeps them, newest first.
    kept, deleted = retention.outcome([])
    assert [item["archive"] for item in kept] == ["db-26", "db-25"] and [item["archive"] for item in deleted] == ["db-20"]


def test_without_a_policy_retention_on_target_deletes_and_skips_nothing():
    retention = RetentionOnTarget(None, [dict(name="a", volume="v", created="2026-11-01T00:00:00Z")], [])
    assert retention.skipped == set() and retention.before_sending == set() and retention.outcome([]) == ([], [])


_days = st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=25, unique=True)


@settings(max_examples=200, deadline=None)
@given(there=_days, sent=_days, keep_last=st.integers(0, 4), keep_daily=st.integers(0, 5), keep_weekly=st.integers(0, 3),
       keep_monthly=st.integers(0, 3), data=st.data())
def test_what_is_deleted_before_sending_is_deleted_whatever_arrives_and_the_newest_copy_always_stays(
        there, sent, keep_last, keep_daily, keep_weekly, keep_monthly, data):
    if not (keep_last or keep_daily or keep_weekly or keep_monthly):
        keep_last = 1
    policy = RetentionPolicy(keep_last=keep_last, keep_daily=keep_daily, keep_weekly=keep_weekly, keep_monthly=keep_monthly)
    start = datetime.datetime(2025, 1, 1, tzinfo=UTC)

    def item(prefix, day):
        return dict(name="%s%d" % (prefix, day), volume="v", created=(start + datetime.timedelta(days=day, hours=day % 24)).strftime("%Y-%m-%dT%H:%M:%SZ"))

    remote = [item("r", day) for day in there]
    candidates = [item("c", day) for day in sent]
    retention = RetentionOnTarget(policy, remote, candidates)
    sendable = [candidate for candidate in candidates if candidate["name"] not in retention.skipped]
    arrived = data.draw(st.lists(st.sampled_from(sendable), unique_by=lambda entry: entry["name"])) if sendable else []
    kept, deleted = retention.outcome(arrived)
    deleted_names = set(entry["archive"] for entry in deleted)
    assert retention.before_sending <= deleted_names
    everything = remote + arrived
    newest = max(everything, key=lambda entry: (entry["created"], entry["name"]))
    assert newest["name"] in set(entry["archive"] for entry in kept)
    # Nothing that was sent is deleted at once when all of it arrived.
    if len(arrived) == len(sendable):
        assert not deleted_names & set(entry["name"] for entry in sendable)
