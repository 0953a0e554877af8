# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""volume_restore refuses a corrupt archive or a sidecar that does not describe it, before
the target volume is touched (entries, root times and listing unchanged)."""

from __future__ import annotations

import os
import shutil

import pytest

import adhoc_process
import crafted_archives as crafted
from volume_trees import capture, differences, seed_target, write_file


@pytest.fixture(scope="module")
def reference(module_engine, module_backup_dir):
    """A real backup of a few files (2 MiB of random data among them)."""
    name = module_engine.create_volume("corruption-reference")
    root = module_engine.mountpoint(name)
    write_file(root / "random", os.urandom(2 << 20))
    os.mkdir(root / "dir")
    for number in range(20):
        write_file(root / "dir" / ("file-%02d" % number), b"content %d\n" % number * 100)
    result = adhoc_process.run("volume_backup", {"volume": name, "dest": str(module_backup_dir)})
    assert result["changed"] is True, result
    return result["archive"]["path"]


def _append_junk(path):
    with open(path, "ab") as handle:
        handle.write(b"junk after the archive" * 10)


def _resign(path):
    """Make the sidecar's size and sha256 those of the file as it is now (the tree digest stays)."""
    metadata = crafted.read_sidecar(path)
    crafted.write_sidecar(path, crafted.describe(metadata, path))


def _wrong_sha256(path):
    metadata = crafted.read_sidecar(path)
    metadata["archive"]["sha256"] = "0" * 64
    crafted.write_sidecar(path, metadata)


def _wrong_tree_digest(path):
    metadata = crafted.read_sidecar(path)
    metadata["tree"]["digest"] = "f" * 64
    crafted.write_sidecar(path, metadata)


# (id, how the copy is spoiled, words the refusal must contain)
CASES = [
    ("flipped-bit", [crafted.flip_middle_byte], ["does not match its sidecar|is corrupt or truncated"]),
    ("flipped-bit-sidecar-resigned", [crafted.flip_middle_byte, _resign], ["is corrupt or truncated|tree digest differs from the sidecar"]),
    ("truncated", [crafted.truncate], ["cannot be restored: archive is", "bytes, its sidecar says"]),
    ("truncated-sidecar-resigned", [crafted.truncate, _resign], ["is corrupt or truncated"]),
    ("junk-appended", [_append_junk], ["cannot be restored: archive is", "bytes, its sidecar says"]),
    ("junk-appended-sidecar-resigned", [_append_junk, _resign], ["is corrupt or truncated"]),
    ("sidecar-sha256-wrong", [_wrong_sha256], ["does not match its sidecar"]),
    ("sidecar-tree-digest-wrong", [_wrong_tree_digest], ["tree digest differs from the sidecar"]),
]


@pytest.mark.parametrize("spoilers, words", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_restore_refuses_corrupt_archive_before_touching_the_target(run_module, engine, backup_dir, reference, spoilers, words):
    archive = str(backup_dir / os.path.basename(reference))
    shutil.copyfile(reference, archive)
    shutil.copyfile(reference + ".json", archive + ".json")
    for spoil in spoilers:
        spoil(archive)
    target = engine.create_volume("corrupt-target")
    seed_target(engine.mountpoint(target))
    before = capture(engine.mountpoint(target))

    for check in (True, False):
        result = run_module("volume_restore", check=check, volume=target, src=archive)
        assert result.get("failed") is True, result
        assert archive in result["msg"]
        for alternatives in words:
            assert any(word in result["msg"] for word in alternatives.split("|")), result["msg"]

    after = capture(engine.mountpoint(target))
    assert differences(before["tree"], after["tree"]) == []
    assert after["root"] == before["root"]
    assert after["listing"] == before["listing"]
    assert engine.helpers_on(target) == []


def test_restore_of_the_unspoiled_reference_copy_succeeds(run_module, engine, backup_dir, reference):
    """The control: copying the reference keeps it restorable, so the refusals are the spoiling's."""
    archive = str(backup_dir / os.path.basename(reference))
    shutil.copyfile(reference, archive)
    shutil.copyfile(reference + ".json", archive + ".json")
    target = engine.name("corrupt-control")

    result = run_module("volume_restore", volume=target, src=archive)

    assert not result.get("failed"), result
    assert result["changed"] is True
    assert os.path.getsize(engine.mountpoint(target) / "random") == 2 << 20
