# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Round trips volume -> volume_backup -> volume_restore -> new volume keep every attribute.

Trees are built on the source volume's host Mountpoint, and both Mountpoints are read back
by the same comparer (volume_trees.snapshot): type, mode with setuid/setgid/sticky, numeric
owner, nanosecond mtime, content, symlink target, xattrs (user, ACLs, file capabilities) and
hard-link groups must be equal; the root keeps its owner, mode and mtime (not its xattrs,
as the module documents); sparse files must still be sparse.
"""

from __future__ import annotations

import itertools
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from volume_trees import (
    differences,
    file_capability,
    posix_acl,
    reserved_leftovers,
    set_attributes,
    snapshot,
    write_file,
)

# Every test runs with each transport (conftest.data_transport).
pytestmark = pytest.mark.usefixtures("data_transport")

MIB = 1 << 20
SPARSE_SIZE = 8 * MIB


def _round_trip(run_module, engine, backup_dir, source, target):
    backup = run_module("volume_backup", volume=source, dest=str(backup_dir), if_changed=False)
    assert backup["changed"] is True, backup
    restored = run_module("volume_restore", volume=target, src=backup["archive"]["path"], allow_special=True)
    assert not restored.get("failed"), restored
    assert restored["changed"] is True
    return backup["archive"], restored


def _assert_root_kept(source_root, target_root):
    """Owner and mode (in the snapshots) and, apart, the root's own mtime to the nanosecond."""
    assert os.lstat(target_root).st_mtime_ns == os.lstat(source_root).st_mtime_ns


def _assert_sparse_kept(expected, actual, sparse_paths):
    for path in sparse_paths:
        allocated = actual[path]["blocks"] * 512
        assert allocated <= expected[path]["blocks"] * 512 + 64 * 1024, (path, expected[path], actual[path])
        assert allocated < actual[path]["size"] // 2, (path, actual[path])


def _kitchen_sink(root):
    """One tree with every kind of entry and attribute the round trip must keep."""
    root = os.fsencode(str(root))

    def at(*parts):
        return os.path.join(root, *parts)

    write_file(at(b"empty"))
    write_file(at(b"small"), b"hello\n")
    write_file(at(b"mebibyte"), random.Random(1).randbytes(MIB))
    write_file(at(b"sparse"), sparse=[(0, b"head"), (5 * MIB, b"x" * 4096), (SPARSE_SIZE - 3, b"end")], size=SPARSE_SIZE)
    write_file(at(b"all-hole"), sparse=[], size=3 * MIB)
    set_attributes(at(b"small"), mode=0o4755, uid=1000, gid=1001, mtime_ns=1234567890123456789,
                   xattrs={"user.plain": b"1", "user.empty": b"", "user.binary": b"\xff\x00\x01"})
    set_attributes(at(b"mebibyte"), mode=0o2640, uid=65534, gid=123456, mtime_ns=1)
    os.mkdir(at(b"dir"))
    os.mkdir(at(b"dir", b"empty-sticky"))
    set_attributes(at(b"dir", b"empty-sticky"), mode=0o1777, uid=5, gid=6, mtime_ns=1000000000000000001)
    os.mkdir(at(b"dir", b"locked"))
    write_file(at(b"dir", b"locked", b"inside"), b"behind 0500")
    set_attributes(at(b"dir", b"locked"), mode=0o500, mtime_ns=1500000000999999999)
    os.symlink(b"../small", at(b"dir", b"relative"))
    os.symlink(b"/etc/passwd", at(b"absolute"))
    os.symlink(b"nowhere/at/all", at(b"dangling"))
    set_attributes(at(b"dangling"), uid=77, gid=78, mtime_ns=1500000000000000007, symlink=True)
    os.link(at(b"small"), at(b"dir", b"hard-link-to-small"))
    os.link(at(b"small"), at(b"small-again"))
    write_file(at(b"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xff\xfe not utf-8\nsecond line"), b"odd name")
    write_file(at(b" leading and trailing spaces "), b"spaces")
    write_file(at(b"acl"), b"acl")
    set_attributes(at(b"acl"), xattrs={"system.posix_acl_access": posix_acl(
        [("user_obj", 6, None), ("user", 4, 1234), ("group_obj", 4, None), ("mask", 4, None), ("other", 0, None)])})
    write_file(at(b"capability"), b"cap")
    # cap_net_bind_service: tar must set it after chown, which clears it.
    set_attributes(at(b"capability"), mode=0o755, uid=1000, xattrs={"security.capability": file_capability(1 << 10)})
    set_attributes(at(b"dir"), mode=0o2750, uid=1000, gid=1000, mtime_ns=1600000000000000009, xattrs={
        "system.posix_acl_default": posix_acl([("user_obj", 7, None), ("group_obj", 5, None), ("other", 0, None)]),
        "user.on-a-directory": b"yes",
    })
    deep = root
    for level in range(30):
        deep = os.path.join(deep, (b"%02d" % level) + b"L" * 98)
        os.mkdir(deep)
    write_file(os.path.join(deep, b"N" * 255), b"deep and long")
    set_attributes(root, mode=0o750, uid=1000, gid=1000, mtime_ns=1111111111222333444)
    return [b"sparse", b"all-hole"]


def test_round_trip_keeps_every_attribute_of_a_tree_with_every_kind_of_entry(run_module, engine, backup_dir):
    source = engine.create_volume("sink-source")
    sparse = _kitchen_sink(engine.mountpoint(source))
    expected = snapshot(engine.mountpoint(source))
    target = engine.name("sink-target")

    archive, _restored = _round_trip(run_module, engine, backup_dir, source, target)

    actual = snapshot(engine.mountpoint(target))
    assert differences(expected, actual) == []
    assert actual[b""] == expected[b""]  # the root's owner and mode
    _assert_root_kept(engine.mountpoint(source), engine.mountpoint(target))
    _assert_sparse_kept(expected, actual, sparse)
    assert reserved_leftovers(engine.mountpoint(target)) == []
    # The restored volume is the archive, entry by entry, and gives the same tree digest.
    again = run_module("volume_restore", volume=target, src=archive["path"], allow_special=True)
    assert again["changed"] is False, again
    copy = run_module("volume_backup", volume=target, dest=str(backup_dir / "copy"))
    assert copy["archive"]["tree_digest"] == archive["tree_digest"], (copy, archive)


# -- generated trees -----------------------------------------------------------------------

NAME_PIECES = st.sampled_from(
    [b"a", b"b", b"Z", b"0", b"-", b"_", b".", b" ", b"\n", b"\t", b"\xc3\xa9", b"\xe6\x97\xa5", b"\xf0\x9f\x92\xbe", b"\xff", b"\x80", b"\\", b"*", b"?"]
)
NAMES = st.lists(NAME_PIECES, min_size=1, max_size=12).map(b"".join).filter(
    lambda name: name not in (b".", b"..") and not name.startswith(b".persist-")
)
OWNERS = st.sampled_from([0, 1, 1000, 65534, 200000])
MTIMES = st.integers(min_value=0, max_value=4102444800 * 10**9 - 1)
FILE_MODES = st.sampled_from([0o644, 0o600, 0o755, 0o400, 0o000, 0o4755, 0o2711, 0o6750, 0o1644])
DIR_MODES = st.sampled_from([0o755, 0o700, 0o1777, 0o2775, 0o555, 0o500])
XATTRS = st.dictionaries(
    st.sampled_from(["user.a", "user.mime_type", "user.checksum", "user.long.name.with.dots"]),
    st.binary(max_size=64), max_size=2,
)


@st.composite
def contents(draw):
    kind = draw(st.sampled_from(["empty", "small", "mebibyte", "sparse"]))
    if kind == "empty":
        return dict(content=b"")
    if kind == "small":
        return dict(content=draw(st.binary(min_size=1, max_size=300)))
    seed = draw(st.integers(0, 2**32))
    if kind == "mebibyte":
        return dict(content=random.Random(seed).randbytes(MIB))
    offsets = draw(st.lists(st.integers(0, SPARSE_SIZE // 4096 - 1), max_size=3, unique=True))
    return dict(sparse=[(block * 4096, random.Random(seed + block).randbytes(100)) for block in sorted(offsets)], size=SPARSE_SIZE)


@st.composite
def trees(draw):
    """A list of entries to create in order: (kind, path components, attributes)."""
    entries = []
    directories = [()]
    used = set()
    big_files = 0

    def new_path(parent):
        name = draw(NAMES)
        path = parent + (name,)
        if path in used:
            return None
        used.add(path)
        return path

    for _index in range(draw(st.integers(0, 4))):
        path = new_path(draw(st.sampled_from(directories)))
        if path is not None:
            directories.append(path)
            attributes = dict(mode=draw(DIR_MODES), uid=draw(OWNERS), gid=draw(OWNERS), mtime_ns=draw(MTIMES), xattrs=draw(XATTRS))
            entries.append(("dir", path, attributes))
    files = []
    for _index in range(draw(st.integers(1, 6))):
        path = new_path(draw(st.sampled_from(directories)))
        if path is None:
            continue
        content = draw(contents())
        if len(content.get("content", b"")) >= MIB or "sparse" in content:
            big_files += 1
            if big_files > 2:
                content = dict(content=b"small instead")
        files.append(path)
        entries.append(("file", path, dict(content, mode=draw(FILE_MODES), uid=draw(OWNERS), gid=draw(OWNERS),
                                           mtime_ns=draw(MTIMES), xattrs=draw(XATTRS))))
    for _index in range(draw(st.integers(0, 2))):
        path = new_path(draw(st.sampled_from(directories)))
        if path is not None:
            entries.append(("hardlink", path, dict(to=draw(st.sampled_from(files)))))
    for _index in range(draw(st.integers(0, 3))):
        parent = draw(st.sampled_from(directories))
        path = new_path(parent)
        if path is None:
            continue
        style = draw(st.sampled_from(["relative", "absolute", "dangling"]))
        if style == "relative":
            # Up to the root, then down to any file: never leaves the volume.
            goal = draw(st.sampled_from(files))
            target = b"/".join([b".."] * len(parent) + list(goal))
        elif style == "absolute":
            target = b"/" + b"/".join(draw(st.lists(NAMES, min_size=1, max_size=3)))
        else:
            target = draw(NAMES) + b"/missing"
        entries.append(("symlink", path, dict(target=target, uid=draw(OWNERS), gid=draw(OWNERS), mtime_ns=draw(MTIMES))))
    root = dict(mode=draw(DIR_MODES), uid=draw(OWNERS), gid=draw(OWNERS), mtime_ns=draw(MTIMES))
    return entries, root


def _build(root, spec):
    entries, root_attributes = spec
    root = os.fsencode(str(root))
    directory_times = []
    for kind, parts, attributes in entries:
        path = os.path.join(root, *parts)
        if kind == "dir":
            os.mkdir(path)
            directory_times.append((path, attributes))
        elif kind == "file":
            write_file(path, attributes.get("content", b""), attributes.get("sparse"), attributes.get("size"))
            set_attributes(path, attributes["mode"], attributes["uid"], attributes["gid"], attributes["mtime_ns"], attributes["xattrs"])
        elif kind == "hardlink":
            os.link(os.path.join(root, *attributes["to"]), path)
        else:
            os.symlink(attributes["target"], path)
            set_attributes(path, uid=attributes["uid"], gid=attributes["gid"], mtime_ns=attributes["mtime_ns"], symlink=True)
    # Directories last, deepest first: creating entries in them changes their mtime.
    for path, attributes in sorted(directory_times, key=lambda item: -item[0].count(b"/")):
        set_attributes(path, attributes["mode"], attributes["uid"], attributes["gid"], attributes["mtime_ns"], attributes["xattrs"])
    set_attributes(root, root_attributes["mode"], root_attributes["uid"], root_attributes["gid"], root_attributes["mtime_ns"])
    return [os.path.relpath(os.path.join(root, *parts), root) for kind, parts, attributes in entries
            if kind == "file" and "sparse" in attributes]


def test_round_trip_of_generated_trees_keeps_every_attribute(run_module, engine, backup_dir):
    counter = itertools.count()

    @settings(max_examples=10, deadline=None, derandomize=False, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(spec=trees())
    def round_trip(spec):
        number = next(counter)
        source = engine.create_volume("generated-source-%d" % number)
        target = engine.name("generated-target-%d" % number)
        dest = backup_dir / str(number)
        try:
            sparse = _build(engine.mountpoint(source), spec)
            expected = snapshot(engine.mountpoint(source))
            _round_trip(run_module, engine, dest, source, target)
            actual = snapshot(engine.mountpoint(target))
            assert differences(expected, actual) == []
            assert actual[b""] == expected[b""]
            _assert_root_kept(engine.mountpoint(source), engine.mountpoint(target))
            _assert_sparse_kept(expected, actual, sparse)
            assert reserved_leftovers(engine.mountpoint(target)) == []
        finally:
            engine.remove_volume(source)
            engine.remove_volume(target)

    round_trip()
