"""Which archives backup_verify reads, and how its verdicts and scratch volumes are shaped."""

import pytest

from ansible_collections.persist.docker.plugins.module_utils._verify_select import (
    CHECKS,
    fail_read,
    new_verdict,
    scratch_driver,
    scratch_name,
    select_archives,
    single_archive,
    summary,
    tail,
)


def entry(name, status="complete", volume=None, created=None, reason=None):
    """A scan_directory entry; complete and damaged-with-sidecar entries know their volume
    (a damaged one with a sidecar has a size that differs from it, unless ``reason`` says
    something else)."""
    metadata = {"volume": {"name": volume}} if volume is not None else None
    found = {
        "path": "/backups/" + name, "sidecar": "/backups/%s.json" % name, "status": status, "reason": reason,
        "volume": volume, "created": created, "metadata": metadata,
    }
    if status != "complete" and reason is None:
        found["reason"] = "no metadata sidecar: the backup did not finish" if status == "incomplete" else "archive is 1 bytes, its sidecar says 2"
        if status == "damaged" and metadata is not None:
            found["damage"] = "size"
    return found


def listing(*entries):
    """Newest first, as scan_directory sorts: by creation time, undated last."""
    return sorted(entries, key=lambda item: (item["created"] or "", item["path"]), reverse=True)


def names(chosen):
    return [item["entry"]["path"].rsplit("/", 1)[1] if item["entry"] else None for item in chosen]


DB_OLD = entry("db-20260101T000000Z.tar.zst", volume="db", created="2026-01-01T00:00:00Z")
DB_NEW = entry("db-20260102T000000Z.tar.zst", volume="db", created="2026-01-02T00:00:00Z")
DB2 = entry("db-2-20260101T000000Z.tar.zst", volume="db-2", created="2026-01-01T00:00:00Z")
WEB = entry("web-20260101T000000Z.tar.zst", volume="web", created="2026-01-01T00:00:00Z")


def test_latest_picks_the_newest_complete_backup_of_each_volume_without_warnings():
    chosen, warnings = select_archives(listing(DB_OLD, DB_NEW, DB2, WEB), "latest")

    assert names(chosen) == [DB_NEW["path"][9:], DB2["path"][9:], WEB["path"][9:]]
    assert [item["volume"] for item in chosen] == ["db", "db-2", "web"]
    assert all(item["refused"] is None and item["warnings"] == [] for item in chosen)
    assert warnings == []


def test_latest_verifies_the_latest_complete_when_newer_ones_are_damaged_or_incomplete_and_warns():
    damaged = entry("db-20260103T000000Z.tar.zst", "damaged", volume="db", created="2026-01-03T00:00:00Z")
    # No sidecar: no volume, no date; its default-template name says db (not db-2, a
    # volume whose name is a prefix of it).
    incomplete = entry("db-20260104T000000Z.tar.zst", "incomplete")
    older_damaged = entry("db-20251231T000000Z.tar.zst", "damaged", volume="db", created="2025-12-31T00:00:00Z")

    chosen, warnings = select_archives(listing(DB_OLD, DB_NEW, DB2, damaged, incomplete, older_damaged), "latest")

    db = chosen[0]
    assert db["entry"] is DB_NEW and db["refused"] is None
    assert len(db["warnings"]) == 1
    warning = db["warnings"][0]
    assert "db-20260102T000000Z.tar.zst, was verified instead" in warning
    assert "db-20260103T000000Z.tar.zst (damaged: archive is 1 bytes, its sidecar says 2)" in warning
    assert "db-20260104T000000Z.tar.zst (incomplete: no metadata sidecar" in warning
    assert "db-20251231" not in warning  # older than the one verified: not this run's concern
    assert chosen[1]["entry"] is DB2 and chosen[1]["warnings"] == []
    assert warnings == []


def test_latest_fails_a_volume_without_any_complete_backup_and_warns_about_files_of_no_known_volume():
    damaged = entry("cache-20260103T000000Z.tar.zst", "damaged", volume="cache", created="2026-01-03T00:00:00Z")
    stray = entry("unnamed.tar.zst", "incomplete")

    chosen, warnings = select_archives(listing(WEB, damaged, stray), "latest")

    assert [item["volume"] for item in chosen] == ["cache", "web"]
    refused = chosen[0]["refused"]
    assert refused.startswith("there is no complete backup of volume cache; the newest archive cache-20260103T000000Z.tar.zst is damaged")
    assert chosen[1]["refused"] is None
    assert len(warnings) == 1 and warnings[0].startswith("unnamed.tar.zst (incomplete: ")
    assert "its name matches no volume" in warnings[0]


def test_all_chooses_every_archive_and_refuses_the_incomplete_and_damaged_with_their_reason():
    damaged = entry("db-20260103T000000Z.tar.zst", "damaged", volume="db", created="2026-01-03T00:00:00Z")
    incomplete = entry("db-20260104T000000Z.tar.zst", "incomplete")

    chosen, warnings = select_archives(listing(DB_OLD, DB_NEW, damaged, incomplete, WEB), "all")

    assert [item["entry"] for item in chosen] == listing(DB_OLD, DB_NEW, damaged, incomplete, WEB)
    refusals = dict((item["entry"]["path"], item["refused"]) for item in chosen)
    assert refusals[damaged["path"]] == "the archive is damaged: archive is 1 bytes, its sidecar says 2"
    assert refusals[incomplete["path"]] == "the archive is incomplete: no metadata sidecar: the backup did not finish"
    assert refusals[DB_OLD["path"]] is None and refusals[WEB["path"]] is None
    assert [item["volume"] for item in chosen if item["entry"] is incomplete] == ["db"]
    assert warnings == []


@pytest.mark.parametrize("select", ["latest", "all"])
def test_volume_keeps_only_that_volumes_archives_not_those_of_a_longer_name_sharing_its_prefix(select):
    stray_db2 = entry("db-2-20260105T000000Z.tar.zst", "incomplete")

    chosen, warnings = select_archives(listing(DB_OLD, DB_NEW, DB2, WEB, stray_db2), select, volume="db")

    expected = [DB_NEW] if select == "latest" else [DB_NEW, DB_OLD]
    assert [item["entry"] for item in chosen] == expected
    assert warnings == []


def test_an_archive_without_sidecar_and_of_another_name_form_goes_to_the_longest_volume_name_it_starts_with():
    hourly_db2 = entry("db-2-hourly.tar.zst", "incomplete")
    hourly_db = entry("db-hourly.tar.zst", "incomplete")

    chosen, _warnings = select_archives(listing(DB_NEW, DB2, hourly_db2, hourly_db), "all", volume="db-2")

    assert [item["entry"] for item in chosen] == [DB2, hourly_db2]


@pytest.mark.parametrize("select", ["latest", "all"])
def test_a_volume_with_no_backup_at_all_gets_a_refused_item_without_an_archive(select):
    chosen, warnings = select_archives(listing(WEB), select, volume="db")

    assert chosen == [{"entry": None, "volume": "db", "refused": "there is no backup of volume db", "warnings": []}]
    assert warnings == []
    verdict = new_verdict(chosen[0], "/backups")
    assert verdict["path"] == "/backups"
    assert verdict["status"] == "failed" and verdict["reason"] == "there is no backup of volume db"


def test_single_archive_must_be_complete_and_of_the_volume_asked_for():
    assert single_archive(DB_OLD)["refused"] is None
    assert single_archive(DB_OLD, "db")["refused"] is None
    assert single_archive(DB_OLD, "web")["refused"] == "the archive is a backup of volume db, not of web"
    incomplete = single_archive(entry("x.tar.zst", "incomplete"), "web")
    assert incomplete["refused"].startswith("the archive is incomplete")
    assert incomplete["volume"] == "web"


def test_a_new_verdict_has_every_check_not_run_and_a_size_mismatch_fails_its_sha256_check():
    passed = new_verdict(single_archive(DB_OLD), "/backups")
    assert passed["status"] == "passed" and passed["reason"] is None
    assert passed["checks"] == dict((check, "not_run") for check in CHECKS)
    assert (passed["path"], passed["volume"], passed["created"]) == (DB_OLD["path"], "db", "2026-01-01T00:00:00Z")

    damaged = new_verdict(single_archive(entry("db.tar.zst", "damaged", volume="db", created="x")), "/backups")
    assert damaged["status"] == "failed"
    assert damaged["checks"]["sha256"] == "failed"
    unreadable = new_verdict(single_archive(entry("db.tar.zst", "damaged", reason="sidecar cannot be read")), "/backups")
    assert unreadable["checks"]["sha256"] == "not_run"


@pytest.mark.parametrize(
    "check, states",
    [
        ("safety", {"safety": "failed", "sha256": "not_run", "tree_digest": "not_run"}),
        ("read", {"safety": "not_run", "sha256": "not_run", "tree_digest": "failed"}),
        ("sha256", {"safety": "passed", "sha256": "failed", "tree_digest": "not_run"}),
        ("tree_digest", {"safety": "passed", "sha256": "passed", "tree_digest": "failed"}),
    ],
)
def test_a_failed_read_says_which_checks_passed_failed_or_could_not_run(check, states):
    verdict = new_verdict(single_archive(DB_OLD), "/backups")

    fail_read(verdict, check, "the reason")

    assert verdict["status"] == "failed" and verdict["reason"] == "the reason"
    assert dict((name, verdict["checks"][name]) for name in states) == states
    assert (verdict["checks"]["test_restore"], verdict["checks"]["probe"]) == ("not_run", "not_run")


def test_summary_names_each_failed_archive_with_its_reason_and_is_none_when_all_passed():
    good = new_verdict(single_archive(DB_OLD), "/backups")
    bad = new_verdict(single_archive(WEB), "/backups")
    fail_read(bad, "sha256", "it was changed")

    assert summary([good]) is None
    assert summary([good, bad]) == "1 of 2 archive(s) failed verification: /backups/web-20260101T000000Z.tar.zst: it was changed"


def test_scratch_names_hold_only_characters_a_volume_name_may_hold():
    assert scratch_name("pgdata", "00ff") == "persist-verify-pgdata-00ff"
    assert scratch_name("we ird/näme", "ab") == "persist-verify-we-ird-n-me-ab"
    assert scratch_name(None, "ab") == "persist-verify-unknown-ab"
    assert scratch_name("x" * 300, "ab") == "persist-verify-" + "x" * 64 + "-ab"


def test_scratch_volume_keeps_recorded_driver_options_only_when_they_make_storage_of_its_own():
    assert scratch_driver({"name": "v", "driver": "local", "driver_opts": {}}) == ("local", {}, None)
    tmpfs = {"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}
    assert scratch_driver({"name": "v", "driver": "local", "driver_opts": tmpfs}) == ("local", tmpfs, None)

    # The sidecar is untrusted: neither a bind, a share, nor a plugin (whose options could point anywhere).
    for driver, opts in (
        ("local", {"type": "none", "o": "bind", "device": "/srv/pgdata"}),
        ("local", {"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}),
        ("some/plugin", {"mountpoint": "/etc"}),
    ):
        chosen, options, note = scratch_driver({"name": "pgdata", "driver": driver, "driver_opts": opts})
        assert (chosen, options) == ("local", {})
        assert note.startswith("the recorded settings of volume pgdata would not give the test restore storage of its own (")
        assert "plain local volume" in note


def test_tail_keeps_the_last_bytes_and_says_whether_it_cut():
    assert tail(b"hello", 10) == ("hello", False)
    assert tail(b"0123456789abc", 4) == ("9abc", True)
    assert tail(b"\xff ok", 10) == ("\ufffd ok", False)
