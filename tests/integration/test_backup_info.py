# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.backup_info: the archives of a directory, newest first, and which can be trusted."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import time


def _copy_backup(archive, directory, stem, **changes):
    """A copy of a real backup under ``stem``, its sidecar edited with ``changes``
    (``created``, ``volume`` name); returns the copy's archive path."""
    suffix = ".tar.zst"
    path = os.path.join(str(directory), stem + suffix)
    shutil.copyfile(archive, path)
    with open(archive + ".json") as handle:
        metadata = json.load(handle)
    if "created" in changes:
        metadata["created"] = changes["created"]
    if "volume" in changes:
        metadata["volume"]["name"] = changes["volume"]
    with open(path + ".json", "w") as handle:
        json.dump(metadata, handle)
    return path


def test_backup_info_lists_newest_first_marks_untrustworthy_archives_and_picks_latest(run_module, engine, backup_dir):
    first = engine.create_volume("listed")
    engine.fill(first)
    real = run_module("volume_backup", volume=first, dest=str(backup_dir))
    assert real["changed"] is True, real
    real_path = real["archive"]["path"]
    other = first + "-other"

    older = _copy_backup(real_path, backup_dir, first + "-20200101T000000Z", created="2020-01-01T00:00:00Z")
    newest_other = _copy_backup(real_path, backup_dir, other + "-20250101T000000Z", created="2025-01-01T00:00:00Z", volume=other)
    # Newer than the real backup (half an hour later), but cut short: damaged, so never the latest.
    later = datetime.datetime.fromtimestamp(time.time() + 1800, datetime.timezone.utc)
    truncated = _copy_backup(real_path, backup_dir, first + later.strftime("-%Y%m%dT%H%M%SZ"), created=later.strftime("%Y-%m-%dT%H:%M:%SZ"))
    with open(truncated, "r+b") as handle:
        handle.truncate(os.path.getsize(truncated) // 2)
    incomplete = os.path.join(str(backup_dir), first + "-20320101T000000Z.tar.zst")
    shutil.copyfile(real_path, incomplete)
    garbage = os.path.join(str(backup_dir), first + "-20330101T000000Z.tar.zst")
    shutil.copyfile(real_path, garbage)
    with open(garbage + ".json", "w") as handle:
        handle.write("{this is not json")
    future_format = _copy_backup(real_path, backup_dir, first + "-20340101T000000Z", created="2034-01-01T00:00:00Z")
    with open(future_format + ".json") as handle:
        metadata = json.load(handle)
    metadata["format_version"] = 99
    with open(future_format + ".json", "w") as handle:
        json.dump(metadata, handle)
    # Neither a temporary file nor an unrelated file is a backup.
    (backup_dir / (".persist-partial-%s.tar.zst.somehost.1" % first)).write_bytes(b"partial")
    (backup_dir / "notes.txt").write_text("not an archive")

    for check in (False, True):
        result = run_module("backup_info", check=check, path=str(backup_dir))
        assert not result.get("failed"), result
        assert result["changed"] is False
        listed = [(item["path"], item["status"]) for item in result["backups"]]
        # Complete and damaged-but-dated ones by creation time, newest first; undated last.
        assert listed[:4] == [
            (truncated, "damaged"),
            (real_path, "complete"),
            (newest_other, "complete"),
            (older, "complete"),
        ], listed
        assert sorted(listed[4:]) == sorted([(incomplete, "incomplete"), (garbage, "damaged"), (future_format, "damaged")])
        by_path = {item["path"]: item for item in result["backups"]}
        assert "no metadata sidecar" in by_path[incomplete]["reason"]
        assert by_path[incomplete]["volume"] is None
        assert "cannot be read" in by_path[garbage]["reason"]
        assert "format version 99" in by_path[future_format]["reason"]
        half = os.path.getsize(truncated)
        assert by_path[truncated]["reason"] == "archive is %d bytes, its sidecar says %d" % (half, real["archive"]["size"])
        assert by_path[real_path]["reason"] is None
        assert by_path[real_path]["sha256"] == real["archive"]["sha256"]
        assert by_path[real_path]["tree_digest"] == real["archive"]["tree_digest"]
        assert by_path[real_path]["volume"] == first
        assert by_path[real_path]["metadata"]["volume"]["name"] == first
        assert set(result["latest"]) == {first, other}
        assert result["latest"][first]["path"] == real_path
        assert result["latest"][other]["path"] == newest_other

    filtered = run_module("backup_info", path=str(backup_dir), volume=first)
    assert [item["path"] for item in filtered["backups"]][:3] == [truncated, real_path, older]
    # Archives whose sidecar cannot say their volume stay in view when named after it.
    assert sorted((item["path"], item["volume"]) for item in filtered["backups"][3:]) == sorted(
        [(incomplete, None), (garbage, None), (future_format, None)]
    )
    assert all(item["volume"] == first for item in filtered["backups"][:3])
    assert list(filtered["latest"]) == [first]
    assert filtered["latest"][first]["path"] == real_path


def test_backup_info_of_a_missing_directory_fails_naming_it(run_module, backup_dir):
    missing = backup_dir / "nowhere"

    result = run_module("backup_info", path=str(missing))

    assert result.get("failed") is True, result
    assert str(missing) in result["msg"]
    assert not missing.exists()
