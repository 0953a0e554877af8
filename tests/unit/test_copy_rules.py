"""What volume_copy compares, and how it creates a missing destination (pure logic)."""

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._copy_rules import (
    ComparableDigest,
    aside_name,
    comparable,
    comparable_records,
    destination_settings,
    record_fields,
    without_xattrs,
)
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import RecordStream, TreeDifferences, compare
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import TreeDigest
from tarbuild import feed, gnu_tar


def records_of(root):
    return list(RecordStream([gnu_tar(root)]))


def comparable_digest(root):
    digest = ComparableDigest()
    full = feed(TreeDigest(on_record=digest.add), gnu_tar(root))
    return full.hexdigest(), digest.hexdigest()


def tree(root, root_xattr=None, content=b"content"):
    root.mkdir()
    (root / "dir").mkdir()
    (root / "dir" / "file").write_bytes(content)
    os.setxattr(root / "dir" / "file", "user.kept", b"v")
    os.symlink("dir/file", root / "link")
    if root_xattr is not None:
        os.setxattr(root, "user.root", root_xattr)
    os.utime(root / "link", ns=(0, 10**18), follow_symlinks=False)
    for path in (root / "dir" / "file", root / "dir", root):
        os.utime(path, ns=(0, 10**18))
    return root


def test_record_fields_survive_separators_inside_values():
    record = b"7:a:b,c,d,4:file,3:420,1:0,1:0,1:5,0:,0:,1:0,1:0,1:1,6:user.x,3:1,2,2:99,\n"
    fields = record_fields(record)
    assert fields[0] == b"a:b,c,d"
    assert fields[11:13] == [b"user.x", b"1,2"]
    assert len(fields) == 14


def test_without_xattrs_drops_the_pairs_and_keeps_every_other_field():
    record = b"0:,3:dir,3:493,1:0,1:0,1:0,0:,0:,1:0,1:0,1:2,1:a,1:1,1:b,0:,1:0,\n"
    stripped = without_xattrs(record)
    assert stripped == b"0:,3:dir,3:493,1:0,1:0,1:0,0:,0:,1:0,1:0,1:0,1:0,\n"
    assert without_xattrs(stripped) == stripped


def test_only_the_root_record_loses_its_xattrs(tmp_path):
    records = records_of(tree(tmp_path / "t", root_xattr=b"r"))
    paths = [path for path, _record in records]
    assert paths[0] == b""
    assert comparable(b"", records[0][1]) != records[0][1]
    for path, record in records[1:]:
        assert comparable(path, record) == record
    kept = dict(comparable_records(records))
    assert b"user.kept" in kept[b"dir/file"]


def test_trees_that_differ_only_in_root_xattrs_are_comparable_equal(tmp_path):
    plain_full, plain = comparable_digest(tree(tmp_path / "plain"))
    tagged_full, tagged = comparable_digest(tree(tmp_path / "tagged", root_xattr=b"selinux-like label"))
    assert plain_full != tagged_full, "the tree digest itself still sees the root's xattrs"
    assert plain == tagged
    differences = compare(comparable_records(records_of(tmp_path / "plain")), comparable_records(records_of(tmp_path / "tagged")), TreeDifferences())
    assert not differences.would_change("replace")


def test_any_other_difference_changes_the_comparable_digest(tmp_path):
    _full, base = comparable_digest(tree(tmp_path / "a"))
    _full, other = comparable_digest(tree(tmp_path / "b", content=b"contenT"))
    assert base != other
    (tmp_path / "a" / "dir" / "file").chmod(0o600)
    os.utime(tmp_path / "a" / "dir" / "file", ns=(0, 10**18))
    assert comparable_digest(tmp_path / "a")[1] != base


@given(st.dictionaries(st.text("abcxyz.", min_size=1, max_size=8).map(lambda name: "user." + name), st.binary(max_size=20), max_size=4))
def test_stripping_xattrs_is_exact_for_any_xattr_set(xattrs):
    fields = [b"", b"dir", b"493", b"0", b"0", b"0", b"", b"", b"0", b"0", b"%d" % len(xattrs)]
    for name in sorted(xattrs):
        fields.extend((name.encode(), xattrs[name]))
    fields.append(b"123")
    record = b"".join(b"%d:%s," % (len(field), field) for field in fields) + b"\n"
    assert record_fields(record) == fields
    assert record_fields(without_xattrs(record)) == fields[:10] + [b"0", b"123"]


SOURCE = dict(name="src", driver="local", driver_opts={"type": "tmpfs", "device": "tmpfs"}, labels={"app": "db"})


def test_a_missing_destination_takes_the_sources_settings_by_default():
    assert destination_settings(SOURCE) == ("local", SOURCE["driver_opts"], {"app": "db"}, "the settings of volume src", None)


def test_given_settings_win_and_another_driver_drops_the_sources_options():
    driver, opts, labels, taken, problem = destination_settings(SOURCE, driver="other", labels={"env": 1})
    assert (driver, opts, labels, problem) == ("other", {}, {"env": "1"}, None)
    assert taken == "the given driver and labels and otherwise the settings of volume src"
    assert destination_settings(SOURCE, "local", {"o": True}, {})[:3] == ("local", {"o": "true"}, {})
    assert destination_settings(SOURCE, "local", {}, {})[3] == "the given settings"


def test_labels_of_the_collections_own_temporary_volumes_are_never_carried_over():
    source = dict(SOURCE, labels={"app": "db", "persist.docker.migrate": "pgdata", "persist.docker.owner": "host/1/2"})
    assert destination_settings(source)[2] == {"app": "db"}
    assert destination_settings(source, labels={"persist.docker.migrate": "x"})[2] == {"persist.docker.migrate": "x"}


@pytest.mark.parametrize(
    "source_opts, problem_words",
    [
        ({"type": "none", "o": "bind", "device": "/etc"}, "device=/etc mounts existing storage (a host directory)"),
        ({"type": "nfs", "o": "addr=10.0.0.1,password=hunter2", "device": ":/export"}, "device=:/export mounts existing storage"),
        ({"type": "ext4", "device": "/dev/sdb1"}, "device=/dev/sdb1"),
        ({"type": "tmpfs", "device": "tmpfs", "o": "size=100m"}, None),
        ({}, None),
    ],
)
def test_settings_taken_over_from_a_source_never_mount_existing_storage(source_opts, problem_words):
    source = dict(name="src", driver="local", driver_opts=source_opts, labels={})
    problem = destination_settings(source)[4]
    if problem_words is None:
        assert problem is None
    else:
        assert problem_words in problem
        assert "hunter2" not in problem
    # Options the task gives are the operator's to choose.
    assert destination_settings(source, driver_opts=source_opts)[4] is None


def test_a_plugin_driver_taken_over_from_a_source_is_refused_unless_the_task_names_it():
    source = dict(name="src", driver="vieux/sshfs", driver_opts={"sshcmd": "user@host:/"}, labels={})
    assert "volume plugin" in destination_settings(source)[4]
    assert "would be given to the driver vieux/sshfs" in destination_settings(source, driver="vieux/sshfs")[4]
    assert destination_settings(source, driver="vieux/sshfs", driver_opts={"sshcmd": "me@there:/"})[4] is None


def test_the_aside_volume_is_named_after_the_migrated_one():
    assert aside_name("pgdata", "1a2b3c4d") == "pgdata-persist-migrate-1a2b3c4d"
