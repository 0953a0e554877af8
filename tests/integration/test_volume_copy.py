# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.volume_copy, and persist.docker.volume with recreate: migrate.

Trees are built on the source volume's host Mountpoint and both Mountpoints are read back
by the comparer of the fidelity tests (volume_trees.snapshot), on this engine and on a second
dockerd that the cross-engine test starts (second_engine.SecondEngine).
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from test_fidelity import _assert_root_kept, _assert_sparse_kept, _build, _kitchen_sink, trees
from volume_trees import capture, differences, fill_random, reserved_leftovers, seed_target, snapshot, write_file

# Every test runs with each transport (conftest.data_transport).
pytestmark = pytest.mark.usefixtures("data_transport")

MIGRATE_LABEL = "persist.docker.migrate"


def _copy(run_module, check=False, diff=False, **args):
    return run_module("volume_copy", check=check, diff=diff, **args)


def _asides(engine, name):
    """Temporary volumes of migrations of ``name`` still on the engine."""
    found = engine.client.api.volumes(filters={"label": "%s=%s" % (MIGRATE_LABEL, name)}).get("Volumes") or []
    return [volume["Name"] for volume in found]


def _check_then_real_then_again(run_module, **args):
    """The three runs every change must survive: check mode predicts, the real run does it,
    a second run finds nothing to do."""
    predicted = _copy(run_module, check=True, diff=True, **args)
    assert not predicted.get("failed"), predicted
    real = _copy(run_module, diff=True, **args)
    assert not real.get("failed"), real
    assert predicted["changed"] is real["changed"] is True
    assert predicted["actions"] == real["actions"]
    again = _copy(run_module, **args)
    assert not again.get("failed"), again
    assert again["changed"] is False, again
    return predicted, real, again


# -- fidelity -----------------------------------------------------------------------------------


def test_copy_keeps_every_attribute_of_a_tree_with_every_kind_of_entry_check_real_again(run_module, engine):
    source = engine.create_volume("sink-source", labels={"app": "sink"})
    sparse = _kitchen_sink(engine.mountpoint(source))
    expected = snapshot(engine.mountpoint(source))
    dest = engine.name("sink-dest")

    predicted, real, again = _check_then_real_then_again(run_module, source=source, dest=dest, allow_special=True)

    assert predicted["created"] is False and predicted["verified"] is False
    assert real["created"] is True and real["verified"] is True
    assert real["tree_digest"]["source"] == real["tree_digest"]["dest"] == predicted["tree_digest"]["source"]
    assert real["entries"] == len(expected) - 1 and real["bytes"] > 8 << 20 and real["streamed_bytes"] > 1 << 20
    assert engine.inspect(dest)["Labels"] == {"app": "sink"}, "created with the source's labels"
    actual = snapshot(engine.mountpoint(dest))
    assert differences(expected, actual) == []
    assert actual[b""] == expected[b""]
    _assert_root_kept(engine.mountpoint(source), engine.mountpoint(dest))
    _assert_sparse_kept(expected, actual, sparse)
    assert reserved_leftovers(engine.mountpoint(dest)) == []
    assert differences(expected, snapshot(engine.mountpoint(source))) == [], "the source was changed"
    assert again["skipped_reason"] == "volume %s already equals volume %s" % (dest, source)
    assert again["tree_digest"] == real["tree_digest"]
    assert engine.helpers_on(source) == [] and engine.helpers_on(dest) == []


def test_copy_of_generated_trees_keeps_every_attribute(run_module, engine):
    counter = itertools.count()

    @settings(max_examples=6, deadline=None, derandomize=False, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(spec=trees())
    def copy_round_trip(spec):
        number = next(counter)
        source = engine.create_volume("generated-source-%d" % number)
        dest = engine.name("generated-dest-%d" % number)
        try:
            sparse = _build(engine.mountpoint(source), spec)
            expected = snapshot(engine.mountpoint(source))
            result = _copy(run_module, source=source, dest=dest, allow_special=True)
            assert not result.get("failed"), result
            assert result["verified"] is True
            actual = snapshot(engine.mountpoint(dest))
            assert differences(expected, actual) == []
            assert actual[b""] == expected[b""]
            _assert_root_kept(engine.mountpoint(source), engine.mountpoint(dest))
            _assert_sparse_kept(expected, actual, sparse)
        finally:
            engine.remove_volume(source)
            engine.remove_volume(dest)

    copy_round_trip()


# -- modes and when -----------------------------------------------------------------------------


def _source_and_stale_dest(engine):
    source = engine.create_volume("modes-source")
    root = engine.mountpoint(source)
    write_file(root / "same", b"same")
    write_file(root / "changed", b"new content")
    os.mkdir(root / "added")
    write_file(root / "added" / "file", b"added")
    dest = engine.create_volume("modes-dest")
    root = engine.mountpoint(dest)
    write_file(root / "changed", b"old content")
    write_file(root / "extra", b"only in dest")
    return source, dest


def test_merge_keeps_extra_entries_and_replace_then_removes_them(run_module, engine):
    source, dest = _source_and_stale_dest(engine)
    os.utime(engine.mountpoint(dest) / "extra", ns=(0, 10**18))  # unchanged by merge, to the nanosecond

    predicted, merged, _again = _check_then_real_then_again(run_module, source=source, dest=dest, mode="merge")

    for result in (predicted, merged):
        assert result["differences"]["mode"] == "merge"
        assert (result["differences"]["added"], result["differences"]["changed"], result["differences"]["kept_extra"]) == (3, 1, 1)
        assert "+ added/file" in result["diff"]["prepared"] and "~ changed" in result["diff"]["prepared"]
    root = engine.mountpoint(dest)
    assert (root / "changed").read_bytes() == b"new content" and (root / "added" / "file").read_bytes() == b"added"
    assert (root / "extra").read_bytes() == b"only in dest" and os.lstat(root / "extra").st_mtime_ns == 10**18
    assert merged["tree_digest"]["source"] != merged["tree_digest"]["dest"], "merge keeps the extra entry"

    predicted, replaced, _again = _check_then_real_then_again(run_module, source=source, dest=dest)

    assert predicted["differences"]["removed_paths"] == ["extra"]
    assert replaced["differences"] == predicted["differences"]
    assert replaced["tree_digest"]["source"] == replaced["tree_digest"]["dest"]
    assert differences(snapshot(engine.mountpoint(source)), snapshot(root)) == []


def test_copy_when_always_copies_on_every_run(run_module, engine):
    source, dest = _source_and_stale_dest(engine)

    first = _copy(run_module, source=source, dest=dest, copy_when="always")
    second = _copy(run_module, source=source, dest=dest, copy_when="always")

    for result in (first, second):
        assert not result.get("failed"), result
        assert result["changed"] is True and result["verified"] is True
        assert "differences" not in result, "always does not compare first"
    assert first["tree_digest"] == second["tree_digest"]
    assert differences(snapshot(engine.mountpoint(source)), snapshot(engine.mountpoint(dest))) == []


# -- creating the destination ----------------------------------------------------------------


def test_create_uses_the_given_settings_over_the_sources(run_module, engine):
    source, _dest = _source_and_stale_dest(engine)
    storage = Path(tempfile.mkdtemp(prefix="pt-copy-bind-"))
    dest = engine.name("given")
    try:
        opts = {"type": "none", "o": "bind", "device": str(storage)}

        _predicted, real, _again = _check_then_real_then_again(
            run_module, source=source, dest=dest, dest_driver="local", dest_driver_opts=opts, dest_labels={"env": "copy"})

        assert "create volume %s with driver local and the given settings" % dest in real["actions"]
        created = engine.inspect(dest)
        assert (created["Options"], created["Labels"]) == (opts, {"env": "copy"})
        assert (storage / "added" / "file").read_bytes() == b"added", "the data is in the given storage"
    finally:
        engine.remove_volume(dest)
        shutil.rmtree(storage)


def test_create_refuses_the_settings_of_a_bind_volume_that_would_be_the_same_files(run_module, engine):
    storage = Path(tempfile.mkdtemp(prefix="pt-copy-bind-"))
    try:
        source = engine.create_volume("bind-source", driver_opts={"type": "none", "o": "bind", "device": str(storage)})
        write_file(storage / "data", b"precious")
        dest = engine.name("bind-dest")

        for check in (True, False):
            result = _copy(run_module, check=check, source=source, dest=dest)
            assert result.get("failed") is True, result
            assert str(storage) in result["msg"] and "dest_driver_opts" in result["msg"]
            assert engine.inspect(dest) is None
        assert (storage / "data").read_bytes() == b"precious"
    finally:
        engine.remove_volume(source)
        (storage / "data").unlink()
        storage.rmdir()


def test_a_missing_dest_with_create_false_fails_and_creates_nothing(run_module, engine):
    source = engine.create_volume("no-create-source")
    engine.fill(source)
    dest = engine.name("no-create-dest")

    for check in (True, False):
        result = _copy(run_module, check=check, source=source, dest=dest, create=False)
        assert result.get("failed") is True, result
        assert "Volume %s does not exist and create is false" % dest in result["msg"]
        assert engine.inspect(dest) is None


def test_copying_a_volume_onto_itself_is_refused(run_module, engine):
    name = engine.create_volume("itself")
    engine.fill(name)
    before = engine.snapshot(name)

    result = _copy(run_module, source=name, dest=name)

    assert result.get("failed") is True, result
    assert "same volume %s" % name in result["msg"] and "dest_docker_host" in result["msg"]
    assert engine.snapshot(name) == before


def _assert_no_room(refused, source, dest):
    assert refused.get("failed") is True, refused
    assert "copying volume %s into volume %s" % (source, dest) in refused["msg"], refused["msg"]
    assert "Volume %s has no room left: the staging tree needs as much as volume %s holds free" % (dest, source) in refused["msg"], refused["msg"]
    assert refused["msg"].endswith("Nothing was changed in volume %s." % dest), refused["msg"]


def test_a_copy_into_a_volume_too_small_for_it_fails_saying_so_and_changes_nothing(run_module, engine):
    source = engine.create_volume("small-copy-source")
    fill_random(engine.mountpoint(source), "big", 3 << 20)
    dest = engine.create_volume("small-copy-dest", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    root = engine.mountpoint(dest)
    write_file(os.path.join(root, "old"), b"kept")
    before = snapshot(root)

    _assert_no_room(_copy(run_module, source=source, dest=dest), source, dest)

    assert snapshot(root) == before
    assert engine.helpers_on(dest) == []


def test_a_copy_to_another_engine_into_a_volume_too_small_for_it_fails_saying_so(run_module, engine, second_engine):
    other, client = second_engine
    source = engine.create_volume("small-cross-source")
    fill_random(engine.mountpoint(source), "big", 3 << 20)
    dest = "pt-small-%s" % secrets.token_hex(3)  # on the second engine, removed with it
    client.api.create_volume(dest, driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    try:
        root = client.api.inspect_volume(dest)["Mountpoint"]
        write_file(os.path.join(root, "old"), b"kept")
        before = snapshot(root)

        _assert_no_room(_copy(run_module, source=source, dest=dest, dest_docker_host=other.url), source, dest)

        assert snapshot(root) == before
        assert client.containers.list(all=True) == [], "helpers and locks on the second engine are gone"
    finally:
        client.api.remove_volume(dest)


# -- live containers ---------------------------------------------------------------------------


def test_a_running_writer_of_the_source_refuses_the_copy(run_module, engine):
    source = engine.create_volume("live-source")
    engine.fill(source)
    dest = engine.name("live-source-dest")
    writer = engine.container("writer", source, state="running")

    for check in (True, False):
        result = _copy(run_module, check=check, source=source, dest=dest)
        assert result.get("failed") is True, result
        assert writer.name in result["msg"] and source in result["msg"] and "containers: stop" in result["msg"]
        assert engine.inspect(dest) is None

    stopped = _copy(run_module, source=source, dest=dest, containers="stop", stop_timeout=5)

    assert not stopped.get("failed"), stopped
    assert [(entry["name"], entry["volume"], entry["action"]) for entry in stopped["consistency"]["containers"]] == [(writer.name, source, "stop")]
    writer.reload()
    assert writer.status == "running"
    assert engine.snapshot(dest) == engine.snapshot(source)


def test_a_running_reader_of_the_dest_refuses_the_copy_and_the_dest_is_untouched(run_module, engine):
    source, dest = _source_and_stale_dest(engine)
    reader = engine.container("reader", dest, state="running", read_only=True)
    before = capture(engine.mountpoint(dest))

    for check in (True, False):
        result = _copy(run_module, check=check, source=source, dest=dest)
        assert result.get("failed") is True, result
        assert reader.name in result["msg"] and dest in result["msg"]
        assert [entry["name"] for entry in result["containers"]] == [reader.name]
    assert capture(engine.mountpoint(dest)) == before


def _copy_while_the_source_changes(run_module, engine, change):
    """Copy a source (containers: ignore) and call ``change(source root, staged bulk-1)`` once
    the copy read added/file and staged all of bulk-1 (streamed in name order: added/file,
    then the two bulk files, which take a while). Returns (source, dest, dest's entries
    before, outcome)."""
    source, dest = _source_and_stale_dest(engine)
    source_root = engine.mountpoint(source)
    write_file(source_root / "bulk-1", secrets.token_bytes(32 << 20))
    write_file(source_root / "bulk-2", secrets.token_bytes(96 << 20))
    before = capture(engine.mountpoint(dest))
    changed_while_staging = threading.Event()

    def change_once_staged():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            staged = list(engine.mountpoint(dest).glob(".persist-staging-*/bulk-1"))
            if staged and staged[0].stat().st_size == 32 << 20:
                change(source_root, staged[0])
                changed_while_staging.set()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=change_once_staged, daemon=True)
    watcher.start()
    outcome = _copy(run_module, source=source, dest=dest, containers="ignore")
    watcher.join(130)
    assert changed_while_staging.is_set(), "the source was never changed while bulk-1 was staged: %s" % outcome
    return source, dest, before, outcome


def test_a_source_changed_during_the_copy_fails_the_verification_and_dest_is_untouched(run_module, engine):
    """On one engine the source must not change while it is copied, and the staged copy is read
    back before the swap. A file of the source is changed (as a live writer would, with
    containers: ignore) after the copy read it and before that check: nothing is swapped in,
    and the message names the file."""

    def overwrite(source_root, _staged):
        # Read already; same size, other bytes, its directory untouched.
        with open(source_root / "added" / "file", "r+b") as changed:
            changed.write(b"ADDED")

    _source, dest, before, outcome = _copy_while_the_source_changes(run_module, engine, overwrite)

    _assert_refused_naming(engine, outcome, dest, before, "added/file")


def _assert_refused_naming(engine, outcome, dest, before, path):
    """The copy failed before the swap, naming ``path`` as the one entry that differs, and the
    entries of ``dest`` are as they were."""
    assert outcome.get("failed") is True, outcome
    assert "the staged copy does not read back as the source" in outcome["msg"], outcome["msg"]
    assert "1 entry different (%s)" % path in outcome["msg"], outcome["msg"]
    assert "Nothing was changed in volume %s" % dest in outcome["msg"]
    assert outcome["differences"]["changed_paths"] == [path], outcome["differences"]
    _assert_entries_kept(before, capture(engine.mountpoint(dest)))
    assert reserved_leftovers(engine.mountpoint(dest)) == []


def test_a_source_entry_touched_but_not_changed_during_the_copy_is_copied(run_module, engine):
    """The source's metadata listing differs after the copy when an entry's ctime moved (here a
    chmod to the mode it has): the staged copy is then compared with the source entry by entry,
    finds nothing that differs, and the copy goes on."""

    def touch_ctime(source_root, _staged):
        path = source_root / "added" / "file"
        os.chmod(path, path.stat().st_mode & 0o7777)

    source, dest, _before, outcome = _copy_while_the_source_changes(run_module, engine, touch_ctime)

    assert not outcome.get("failed") and outcome["changed"] is True, outcome
    assert outcome["tree_digest"]["source"] == outcome["tree_digest"]["dest"], outcome
    assert differences(snapshot(engine.mountpoint(source)), snapshot(engine.mountpoint(dest))) == []
    assert reserved_leftovers(engine.mountpoint(dest)) == []


def test_a_staged_copy_changed_before_the_swap_is_never_swapped_in(run_module, engine):
    """What reaches the destination's staging tree is read back before the swap: a staged file
    overwritten there once tar wrote it (as a hostile writer of the destination could) makes
    the copy fail, naming the file, with the destination's entries as they were."""

    def tamper(_source_root, staged):
        with open(staged, "r+b") as changed:
            changed.write(b"TAMPERED")

    _source, dest, before, outcome = _copy_while_the_source_changes(run_module, engine, tamper)

    _assert_refused_naming(engine, outcome, dest, before, "bulk-1")


# -- safety -----------------------------------------------------------------------------------


def _unsafe_source(engine, suffix, make):
    source = engine.create_volume(suffix)
    root = engine.mountpoint(source)
    write_file(root / "a-first", b"a file before the unsafe entry")
    make(root)
    write_file(root / "z-last", b"a file after it")
    return source


@pytest.mark.parametrize(
    "make, member, rule",
    [
        (lambda root: os.mkfifo(root / "pipe", 0o640), "pipe", "fifo nodes are refused unless allow_special is true"),
        (lambda root: os.symlink("../../etc/shadow", root / "escape"), "escape", "symlink target ../../etc/shadow leaves the volume"),
    ],
    ids=["fifo", "escaping-symlink"],
)
def test_a_source_entry_that_breaks_a_safety_rule_stops_the_copy_before_dest_changes(run_module, engine, make, member, rule):
    source = _unsafe_source(engine, "unsafe-source", make)
    dest = engine.create_volume("unsafe-dest")
    seed_target(engine.mountpoint(dest))
    before = capture(engine.mountpoint(dest))
    missing = engine.name("unsafe-missing")

    for args in (dict(check=True), dict(), dict(dest=missing), dict(copy_when="always")):
        result = _copy(run_module, **dict(dict(source=source, dest=dest), **args))
        assert result.get("failed") is True, (args, result)
        assert (result["member"], result["rule"]) == (member, rule), (args, result)
        assert "Nothing was changed in volume" in result["msg"]
        assert engine.inspect(missing) is None, "a dest created for a refused copy is removed again"
        if "copy_when" not in args:
            # Refused while reading the source in the comparison: nothing was even staged.
            assert capture(engine.mountpoint(dest)) == before, args
    # With copy_when always the refusal came while streaming: a staging tree came and went, so the
    # root's times changed; every entry, and the root's owner and mode, did not.
    _assert_entries_kept(before, capture(engine.mountpoint(dest)))


def _assert_entries_kept(before, after):
    """Every entry, and the root's owner and mode, are as ``before`` (both from capture); the
    root's times are not compared: a staging tree that came and went changed them."""
    assert {path: entry for path, entry in after["tree"].items() if path} == {path: entry for path, entry in before["tree"].items() if path}
    assert [after["root"][key] for key in ("mode", "uid", "gid")] == [before["root"][key] for key in ("mode", "uid", "gid")]
    assert after["listing"] == before["listing"]


def test_allow_special_copies_a_fifo(run_module, engine):
    source = _unsafe_source(engine, "special-source", lambda root: os.mkfifo(root / "pipe", 0o640))
    dest = engine.name("special-dest")

    result = _copy(run_module, source=source, dest=dest, allow_special=True)

    assert not result.get("failed"), result
    assert differences(snapshot(engine.mountpoint(source)), snapshot(engine.mountpoint(dest))) == []


# -- across engines -------------------------------------------------------------------------


def test_copy_to_another_engine_keeps_every_attribute_check_real_again(run_module, engine, second_engine):
    other, client = second_engine
    source = engine.create_volume("cross-source", labels={"app": "moved"})
    sparse = _kitchen_sink(engine.mountpoint(source))
    expected = snapshot(engine.mountpoint(source))
    dest = "pt-cross-%s" % secrets.token_hex(3)  # on the second engine, removed with it

    predicted, real, again = _check_then_real_then_again(
        run_module, source=source, dest=dest, dest_docker_host=other.url, allow_special=True)

    assert real["dest_docker_host"] == other.url and real["created"] is True and real["verified"] is True
    assert "copy volume %s into volume %s on engine %s (mode replace)" % (source, dest, other.url) in predicted["actions"]
    assert real["tree_digest"]["source"] == real["tree_digest"]["dest"]
    assert len(real["lock"]["names"]) == 2
    assert engine.inspect(dest) is None, "nothing was created on the source's engine"
    inspected = client.api.inspect_volume(dest)
    assert inspected["Labels"] == {"app": "moved"}
    actual = snapshot(inspected["Mountpoint"])
    assert differences(expected, actual) == []
    assert actual[b""] == expected[b""]
    _assert_root_kept(engine.mountpoint(source), inspected["Mountpoint"])
    _assert_sparse_kept(expected, actual, sparse)
    assert reserved_leftovers(inspected["Mountpoint"]) == []
    assert again["tree_digest"] == real["tree_digest"]
    assert client.containers.list(all=True) == [], "helpers and locks on the second engine are gone"


def test_a_dest_docker_host_that_names_the_same_engine_is_a_copy_on_one_engine(run_module, engine):
    name = engine.create_volume("same-engine")
    engine.fill(name)

    result = _copy(run_module, source=name, dest=name, dest_docker_host="unix:///var/run/docker.sock")

    assert result.get("failed") is True, result
    assert "same volume %s on the same engine" % name in result["msg"]


# -- volume recreate: migrate --------------------------------------------------------------------


def test_migrate_changes_labels_of_a_volume_with_data_and_keeps_the_data(run_module, engine):
    name = engine.create_volume("migrate", labels={"tier": "old", "keep": "me"})
    _kitchen_sink(engine.mountpoint(name))
    expected = snapshot(engine.mountpoint(name))
    args = dict(name=name, labels={"tier": "new"}, recreate="migrate")

    predicted = run_module("volume", check=True, diff=True, **args)

    assert not predicted.get("failed"), predicted
    assert predicted["changed"] is True and predicted["volume"]["labels"] == {"tier": "new", "keep": "me"}
    assert predicted["actions"][0].startswith("migrate volume %s (labels[tier] is 'old', wanted 'new')" % name)
    assert engine.inspect(name)["Labels"] == {"tier": "old", "keep": "me"}, "check mode migrated it"

    real = run_module("volume", **args)

    assert not real.get("failed"), real
    assert real["changed"] is True and real["actions"] == predicted["actions"]
    assert engine.inspect(name)["Labels"] == {"tier": "new", "keep": "me"}
    actual = snapshot(engine.mountpoint(name))
    assert differences(expected, actual) == [] and actual[b""] == expected[b""]
    assert real["migration"]["aside_volume"].startswith(name + "-persist-migrate-")
    assert real["migration"]["entries"] == len(expected) - 1
    assert _asides(engine, name) == [] and engine.inspect(real["migration"]["aside_volume"]) is None
    assert real["diff"]["before"]["labels"] == {"tier": "old", "keep": "me"}

    again = run_module("volume", **args)

    assert again["changed"] is False, again


def test_migrate_refuses_a_volume_that_a_container_references(run_module, engine):
    name = engine.create_volume("migrate-used", labels={"tier": "old"})
    engine.fill(name)
    user = engine.container("user", name, state="exited")

    for check in (True, False):
        result = run_module("volume", check=check, name=name, labels={"tier": "new"}, recreate="migrate")
        assert result.get("failed") is True, result
        assert user.name in result["msg"] and "Nothing was changed" in result["msg"]
    assert engine.inspect(name)["Labels"] == {"tier": "old"}
    assert _asides(engine, name) == []


def test_migrate_that_the_engine_refuses_puts_the_volume_and_its_data_back(run_module, engine):
    name = engine.create_volume("migrate-refused", labels={"tier": "old"})
    engine.fill(name)
    expected = snapshot(engine.mountpoint(name))

    result = run_module("volume", name=name, labels={"tier": "new"}, driver_opts={"persist-test-no-such-option": "x"}, recreate="migrate")

    assert result.get("failed") is True, result
    assert "persist-test-no-such-option" in result["msg"] and "its data was copied back and verified" in result["msg"]
    assert engine.inspect(name)["Labels"] == {"tier": "old"} and engine.inspect(name)["Options"] in (None, {})
    assert differences(expected, snapshot(engine.mountpoint(name))) == []
    assert _asides(engine, name) == []


def test_a_leftover_temporary_volume_of_a_migration_stops_the_volume_module(run_module, engine):
    name = engine.create_volume("migrate-left")
    aside = engine.create_volume("migrate-left-persist-migrate-00000000", labels={MIGRATE_LABEL: name})

    result = run_module("volume", name=name)

    assert result.get("failed") is True, result
    assert aside in result["msg"] and result["aside_volume"] == aside
