# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.volume_info: what a volume is, who mounts it, how much it holds."""

from __future__ import annotations

import pytest

# Entries of the tree below: plain, its hard link, a directory with a space, a file in it,
# a name with a newline, a sparse file, an empty directory and a symbolic link.
TREE_ENTRIES = 8
# Apparent sizes of the regular files; the hard link to "plain" counts once.
TREE_BYTES = 1000 + 2345 + 3 + 10 * 1024 * 1024
# Writes the tree, then prints the space du says it takes below /data (du counts a hard
# link once, as the module must; /data itself is not an entry, so its blocks come off).
WRITE_TREE = r"""
set -e
cd /data
head -c 1000 /dev/urandom > plain
ln plain plain-hardlink
mkdir 'dir with space'
head -c 2345 /dev/urandom > 'dir with space/file with space'
printf abc > "$(printf 'new\nline')"
truncate -s 10M sparse
mkdir empty-dir
ln -s plain symlink
sync
echo $(( $(du -s -B1 /data | cut -f1) - $(stat -c '%b * %B' /data) ))
"""


def test_info_describes_the_volume_and_every_container_that_mounts_it(run_module, engine):
    name = engine.create_volume("described", labels={"persist.backup": "true"})
    writer = engine.container("writer", name, state="running", labels={"com.example.app": "shop"})
    reader = engine.container("reader", name, state="exited", read_only=True, mount_path="/srv/ro")
    inspect = engine.inspect(name)
    containers = sorted(
        [
            dict(name=writer.name, id=writer.id, state="running", running=True, read_only=False, mount_path="/data",
                 labels={"com.example.app": "shop"}),
            dict(name=reader.name, id=reader.id, state="exited", running=False, read_only=True, mount_path="/srv/ro",
                 labels={}),
        ],
        key=lambda user: user["name"],
    )
    expected = dict(
        name=name,
        exists=True,
        driver="local",
        driver_opts={},
        labels={"persist.backup": "true"},
        mountpoint=inspect["Mountpoint"],
        scope="local",
        created=inspect["CreatedAt"],
        containers=containers,
    )

    result = run_module("volume_info", name=name)

    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["exists"] is True
    assert result["volume"] == expected
    assert result["volumes"] == [expected]

    check = run_module("volume_info", check=True, name=name)
    assert check["changed"] is False
    assert (check["exists"], check["volume"], check["volumes"]) == (True, expected, [expected])


def test_info_size_counts_entries_bytes_and_disk_bytes_of_any_file_name(run_module, engine):
    name = engine.create_volume("sized")
    disk_bytes = int(engine.run(name, WRITE_TREE).strip())

    for check in (False, True):
        result = run_module("volume_info", check=check, name=name, size=True)
        assert not result.get("failed"), result
        assert result["changed"] is False
        assert result["volume"]["usage"] == {
            "entries": TREE_ENTRIES,
            "bytes": TREE_BYTES,
            "disk_bytes": disk_bytes,
            "empty": False,
        }
        assert result["volumes"] == [result["volume"]]
        # The 10 MiB sparse file holds no data blocks.
        assert result["volume"]["usage"]["disk_bytes"] < 1024 * 1024
        assert engine.helpers_on(name) == []


def test_info_size_of_an_empty_volume_is_zero_and_empty(run_module, engine):
    name = engine.create_volume("empty")

    result = run_module("volume_info", name=name, size=True)

    assert not result.get("failed"), result
    assert result["volume"]["usage"] == {"entries": 0, "bytes": 0, "disk_bytes": 0, "empty": True}


@pytest.mark.parametrize("check", [False, True], ids=["real", "check"])
def test_info_on_a_missing_volume_says_it_does_not_exist(run_module, engine, check):
    name = engine.name("missing")

    result = run_module("volume_info", check=check, name=name, size=True)

    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["exists"] is False
    assert result["volumes"] == []
    assert result["volume"] == {"name": name, "exists": False}
    assert engine.inspect(name) is None


def test_info_lists_only_volumes_carrying_a_label_key_or_key_value(run_module, engine, session_label):
    database = engine.create_volume("list-db", labels={session_label: "db"})
    cache = engine.create_volume("list-cache", labels={session_label: "cache", "tier": "scratch"})
    engine.create_volume("list-unlabelled")

    by_key = run_module("volume_info", labels=[session_label])
    assert not by_key.get("failed"), by_key
    assert by_key["changed"] is False
    assert [volume["name"] for volume in by_key["volumes"]] == sorted([database, cache])
    assert "volume" not in by_key and "exists" not in by_key
    assert all(volume["containers"] == [] for volume in by_key["volumes"])

    by_value = run_module("volume_info", labels=["%s=db" % session_label])
    assert [volume["name"] for volume in by_value["volumes"]] == [database]
    assert by_value["volumes"][0]["labels"] == {session_label: "db"}

    every_label = run_module("volume_info", labels=[session_label, "tier=scratch"])
    assert [volume["name"] for volume in every_label["volumes"]] == [cache]

    none_match = run_module("volume_info", labels=["%s=no-such-value" % session_label])
    assert not none_match.get("failed") and none_match["volumes"] == [], none_match


def test_info_rejects_a_name_together_with_labels(run_module, engine, session_label):
    name = engine.create_volume("both", labels={session_label: "x"})

    result = run_module("volume_info", name=name, labels=[session_label])

    assert result.get("failed") is True, result
    assert "mutually exclusive: name|labels" in result["msg"]
