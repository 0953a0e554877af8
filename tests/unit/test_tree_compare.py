"""Entry-by-entry comparison of two trees: what a restore would add, change and remove."""

import os

from ansible_collections.persist.docker.plugins.module_utils._tree_compare import RecordStream, TreeDifferences, compare
from tarbuild import gnu_tar


def chunks(data, size=3000):
    return [data[start:start + size] for start in range(0, len(data), size)]


def differences_between(archive_root, target_root, mode="replace"):
    differences = compare(RecordStream(chunks(gnu_tar(archive_root))), RecordStream(chunks(gnu_tar(target_root))), TreeDifferences(limit=2))
    return differences, differences.as_dict(mode)


def build(root, files):
    root.mkdir()
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, ns=(0, 10**18))
    for directory in sorted({p.parent for p in root.rglob("*")}, reverse=True):
        os.utime(directory, ns=(0, 10**18))
    return root


def test_equal_trees_have_no_differences(tmp_path):
    files = {"a": b"1", "d/b": b"2"}
    differences, view = differences_between(build(tmp_path / "x", files), build(tmp_path / "y", files))
    assert not differences.would_change("replace") and not differences.would_change("merge")
    assert view["added"] == view["changed"] == view["removed"] == 0


def test_added_changed_and_removed_entries_are_counted_with_bounded_samples(tmp_path):
    archive = build(tmp_path / "archive", {"a": b"1", "new1": b"n", "new2": b"n", "new3": b"n", "same": b"s"})
    target = build(tmp_path / "target", {"a": b"2", "old": b"o", "same": b"s"})
    differences, view = differences_between(archive, target)
    assert (view["added"], view["changed"], view["removed"]) == (3, 1, 1)
    assert view["added_paths"] == ["new1", "new2"]  # limit 2
    assert view["changed_paths"] == ["a"] and view["removed_paths"] == ["old"]
    assert "+ ... and 1 more added" in differences.prepared("replace")


def test_merge_keeps_extras_so_only_additions_and_changes_count(tmp_path):
    archive = build(tmp_path / "archive", {"a": b"1"})
    target = build(tmp_path / "target", {"a": b"1", "extra": b"e"})
    differences, view = differences_between(archive, target, mode="merge")
    assert differences.would_change("replace")
    assert not differences.would_change("merge")
    assert view["kept_extra"] == 1 and view["removed"] == 0


def test_the_root_alone_gives_the_record_of_an_empty_tree_and_a_tree_with_entries_none(tmp_path):
    import subprocess

    from ansible_collections.persist.docker.plugins.module_utils._tree_compare import only_root
    from ansible_collections.persist.docker.plugins.module_utils._tree_digest import SUPPORTED_VERSIONS
    from tarbuild import GNU_TAR_CREATE

    empty = build(tmp_path / "empty", {})
    alone = subprocess.run(GNU_TAR_CREATE + ["--no-recursion", "-C", str(empty), "-cf", "-", "."], check=True, stdout=subprocess.PIPE).stdout
    full = build(tmp_path / "full", {"a": b"1"})
    for version in SUPPORTED_VERSIONS:
        record = only_root(chunks(alone, 700), version)
        assert record is not None and record == only_root(chunks(gnu_tar(empty)), version)
        assert only_root(chunks(gnu_tar(full)), version) is None
