"""Archive names, sidecars and the listing of a backup directory."""

import datetime
import json
import os

import pytest

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import (
    FORMAT_VERSION,
    created_problem,
    dump_metadata,
    listing,
    render_name,
    sidecar_path,
)
from ansible_collections.persist.docker.plugins.module_utils._atomic import AtomicFile, stale_temporary_files

WHEN = datetime.datetime(2026, 11, 27, 5, 30, 0, tzinfo=datetime.timezone.utc)


def test_default_names_carry_volume_utc_timestamp_and_compression_suffix():
    assert render_name("{volume}-{timestamp}", "pgdata", WHEN, "zstd") == "pgdata-20261127T053000Z.tar.zst"
    assert render_name("{volume}", "pgdata", WHEN, "gzip") == "pgdata.tar.gz"


@pytest.mark.parametrize("template", ["../{volume}", ".{volume}", "{volume}/x", "{unknown}", ""])
def test_templates_that_leave_the_directory_or_hide_the_file_are_refused(template):
    with pytest.raises(ValueError, match="name_template"):
        render_name(template, "pgdata", WHEN, "zstd")


def write_backup(directory, name, volume, created, size=10, sidecar=True):
    path = directory / name
    path.write_bytes(b"x" * size)
    if sidecar:
        metadata = {
            "format_version": FORMAT_VERSION, "volume": {"name": volume}, "created": created,
            "compression": "zstd", "archive": {"size": 10, "sha256": "0" * 64},
            "tree": {"digest": "1" * 64, "entries": 1, "bytes": 1},
        }
        (directory / (name + ".json")).write_bytes(dump_metadata(metadata))
    return str(path)


def test_listing_marks_incomplete_and_damaged_archives_and_picks_the_latest_complete(tmp_path):
    old = write_backup(tmp_path, "a-1.tar.zst", "a", "2026-11-01T00:00:00Z")
    new = write_backup(tmp_path, "a-2.tar.zst", "a", "2026-11-02T00:00:00Z")
    write_backup(tmp_path, "a-3.tar.zst", "a", None, sidecar=False)
    write_backup(tmp_path, "a-4.tar.zst", "a", "2026-11-04T00:00:00Z", size=9)  # truncated
    (tmp_path / "a-5.tar.zst").write_bytes(b"x")
    (tmp_path / "a-5.tar.zst.json").write_text("{not json")
    (tmp_path / "notes.txt").write_text("not an archive")
    backups, latest = listing(str(tmp_path))
    by_name = {os.path.basename(item["path"]): item for item in backups}
    assert set(by_name) == {"a-1.tar.zst", "a-2.tar.zst", "a-3.tar.zst", "a-4.tar.zst", "a-5.tar.zst"}
    assert by_name["a-3.tar.zst"]["status"] == "incomplete"
    assert by_name["a-4.tar.zst"]["status"] == "damaged" and "9 bytes" in by_name["a-4.tar.zst"]["reason"]
    assert by_name["a-5.tar.zst"]["status"] == "damaged" and "cannot be read" in by_name["a-5.tar.zst"]["reason"]
    assert latest["a"]["path"] == new
    assert [item["path"] for item in backups if item["status"] == "complete"] == [new, old]


def test_sidecar_of_an_unknown_format_version_is_damaged(tmp_path):
    path = write_backup(tmp_path, "a.tar.zst", "a", "2026-11-01T00:00:00Z")
    metadata = json.loads(open(sidecar_path(path)).read())
    metadata["format_version"] = 99
    open(sidecar_path(path), "w").write(json.dumps(metadata))
    backups, latest = listing(str(tmp_path))
    assert backups[0]["status"] == "damaged" and "format version 99" in backups[0]["reason"]
    assert latest == {}


@pytest.mark.parametrize("field, value", [("volume", "pgdata"), ("archive", None), ("tree", []), ("created", 20261101)])
def test_a_sidecar_with_a_malformed_field_is_damaged_not_a_crash(tmp_path, field, value):
    path = write_backup(tmp_path, "a.tar.zst", "a", "2026-11-01T00:00:00Z")
    metadata = json.loads(open(sidecar_path(path)).read())
    metadata[field] = value
    open(sidecar_path(path), "w").write(json.dumps(metadata))
    backups, latest = listing(str(tmp_path))
    assert backups[0]["status"] == "damaged" and "malformed %s" % field in backups[0]["reason"]
    assert latest == {}


def test_atomic_file_appears_only_on_commit_and_never_replaces(tmp_path):
    final = str(tmp_path / "archive.tar")
    with AtomicFile(final) as target:
        target.write(b"data")
        assert not os.path.exists(final)
        assert os.listdir(tmp_path) == [os.path.basename(target.temp_path)]
        target.commit()
    assert open(final, "rb").read() == b"data" and os.listdir(tmp_path) == ["archive.tar"]
    assert oct(os.stat(final).st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        with AtomicFile(final) as again:
            again.write(b"other")
            again.commit()
    assert open(final, "rb").read() == b"data" and os.listdir(tmp_path) == ["archive.tar"]


def test_an_abandoned_atomic_file_leaves_nothing_under_the_final_name(tmp_path):
    final = str(tmp_path / "archive.tar")
    with pytest.raises(RuntimeError):
        with AtomicFile(final) as target:
            target.write(b"partial")
            raise RuntimeError("killed")
    assert os.listdir(tmp_path) == []


def test_stale_temporary_files_are_those_of_dead_local_writers_or_old_foreign_ones(tmp_path):
    import socket

    host = socket.gethostname()
    dead_local = tmp_path / (".persist-partial-a.tar.zst.%s.999999999" % host)
    live_local = tmp_path / (".persist-partial-b.tar.zst.%s.%d" % (host, os.getpid()))
    young_foreign = tmp_path / ".persist-partial-c.tar.zst.elsewhere.1"
    old_foreign = tmp_path / ".persist-partial-d.tar.zst.elsewhere.2"
    for path in (dead_local, live_local, young_foreign, old_foreign):
        path.write_bytes(b"")
    os.utime(old_foreign, (0, 0))
    assert stale_temporary_files(str(tmp_path), older_than_seconds=3600) == sorted([str(dead_local), str(old_foreign)])


def test_a_volume_filter_keeps_unreadable_archives_named_after_the_volume(tmp_path):
    write_backup(tmp_path, "a-1.tar.zst", "a", "2026-11-01T00:00:00Z")
    write_backup(tmp_path, "a-2.tar.zst", "a", None, sidecar=False)
    write_backup(tmp_path, "b-1.tar.zst", "b", None, sidecar=False)
    backups, _latest = listing(str(tmp_path), "a")
    assert sorted(os.path.basename(item["path"]) for item in backups) == ["a-1.tar.zst", "a-2.tar.zst"]


def test_sidecars_without_their_archive_are_orphans_once_old_enough(tmp_path):
    from ansible_collections.persist.docker.plugins.module_utils._archive_meta import orphan_sidecars

    write_backup(tmp_path, "a-1.tar.zst", "a", "2026-11-01T00:00:00Z")
    (tmp_path / "a-2.tar.zst.json").write_text("{}")
    (tmp_path / "notes.json").write_text("{}")
    os.utime(tmp_path / "a-2.tar.zst.json", (0, 0))
    assert orphan_sidecars(str(tmp_path), 600) == [str(tmp_path / "a-2.tar.zst.json")]
    (tmp_path / "a-3.tar.zst.json").write_text("{}")
    assert orphan_sidecars(str(tmp_path), 600) == [str(tmp_path / "a-2.tar.zst.json")]  # young: may be in flight


def test_an_atomic_file_that_cannot_be_flushed_is_still_removed(tmp_path):
    final = str(tmp_path / "archive.tar")

    class FullDisk:
        """Stands in for the buffered file: its last flush fails as on a full disk."""

        def __init__(self, real):
            self.real, self.closed = real, False

        def close(self):
            self.real.close()
            raise OSError(28, "No space left on device")

    with pytest.raises(RuntimeError):
        with AtomicFile(final) as target:
            target.write(b"buffered")
            target.file = FullDisk(target.file)
            raise RuntimeError("the write that hit the full disk")
    assert os.listdir(tmp_path) == []


def test_a_sidecar_whose_creation_time_disagrees_with_the_name_or_the_file_is_damaged_and_never_the_latest(tmp_path):
    """A forged sidecar claiming a time far in the future must not pass for the newest backup
    (retention would keep it and delete the really newer ones)."""
    real = write_backup(tmp_path, "db-20261102T000000Z.tar.zst", "db", "2026-11-02T00:00:00Z")
    os.utime(real, (1793577600, 1793577600))  # written 2026-11-02T00:00:00Z
    renamed = write_backup(tmp_path, "db-20261103T000000Z.tar.zst", "db", "2099-01-01T00:00:00Z")
    unnamed = write_backup(tmp_path, "db-weekly.tar.zst", "db", "2099-01-01T00:00:00Z")
    backups, latest = listing(str(tmp_path))
    by_path = {item["path"]: item for item in backups}
    assert by_path[renamed]["status"] == "damaged"
    assert by_path[renamed]["reason"] == "its sidecar says it was created at 2099-01-01T00:00:00Z, but its name says 20261103T000000Z"
    assert by_path[unnamed]["status"] == "damaged"
    assert by_path[unnamed]["reason"].startswith("its sidecar says it was created at 2099-01-01T00:00:00Z, after the archive file was last written (")
    assert latest["db"]["path"] == real


def test_created_problem_accepts_a_backup_written_after_it_started_and_refuses_one_from_the_future():
    assert created_problem("/b/db-20261102T000000Z.tar.zst", "2026-11-02T00:00:00Z", 1793577700, 1793600000) is None
    assert created_problem("/b/db.tar.zst", "2026-11-02T00:00:00Z", 1793577600 + 7200, 1793600000) is None
    assert created_problem("/b/db.tar.zst", "2026-11-02T00:00:00Z", 1793577600, 1793577600 - 7200) is None, "clocks a little apart"
    assert "in the future" in created_problem("/b/db.tar.zst", "2026-11-02T00:00:00Z", 1793577600, 1793577600 - 2 * 86400)
    assert "not an ISO 8601 time" in created_problem("/b/db.tar.zst", "yesterday", 0, 0)


def test_listings_mask_driver_options_that_may_hold_credentials(tmp_path):
    path = write_backup(tmp_path, "share-20261102T000000Z.tar.zst", "share", "2026-11-02T00:00:00Z")
    with open(path + ".json") as handle:
        metadata = json.load(handle)
    metadata["volume"]["driver_opts"] = {"type": "cifs", "device": "//nas/share", "o": "addr=nas,username=svc,password=hunter2"}
    with open(path + ".json", "w") as handle:
        json.dump(metadata, handle)
    backups, _latest = listing(str(tmp_path))
    assert "hunter2" not in json.dumps(backups)
    assert backups[0]["metadata"]["volume"]["driver_opts"]["o"] == "addr=nas,username=********,password=********"
    with open(path + ".json") as handle:
        assert "hunter2" in handle.read(), "the sidecar itself is not changed"
