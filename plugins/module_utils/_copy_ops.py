# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The volume_copy operation (volume -> volume, on one engine or across two) and the data
moves of the volume module's ``recreate: migrate``.

One pipeline with backup and restore. GNU tar streams the source with the backup's command;
this process parses every chunk as it passes (the restore's safety rules and the tree digest).

* On one engine, one helper mounts both volumes, and tee hands the stream both to this
  process and to tar extracting into a staging tree inside the destination. The staged tree
  must then read back, inside the helper, as the very bytes the source reads as (see
  _tar_commands.copy_command). The data leaves the engine once instead of three times.
* Across engines, this process forwards each chunk, once parsed, to a helper on the
  destination's engine, which extracts it into the staging tree: a member that breaks a rule
  stops the stream before its header reaches the destination, and there is no temporary file.
  Then the destination is read back and must give the source's tree (the root directory's own
  xattrs apart: the swap cannot carry them, see _copy_rules).

Either way only a complete, checked staging tree is swapped in, under the restore's journal
(the restore's ``stage_and_swap``).
"""

from __future__ import annotations

import binascii
import os
import time
from contextlib import ExitStack, closing, contextmanager

from ansible_collections.persist.docker.plugins.module_utils._archive_restore import read_staged
from ansible_collections.persist.docker.plugins.module_utils._connection import connect, prefixed_params
from ansible_collections.persist.docker.plugins.module_utils._consistency import (
    DEFAULT_LOCK_EXPIRY,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    Consistency,
)
from ansible_collections.persist.docker.plugins.module_utils._container_policy import READS, WRITES, consistency_method
from ansible_collections.persist.docker.plugins.module_utils._copy_rules import (
    MIGRATE_LABEL,
    ComparableDigest,
    aside_name,
    comparable,
    comparable_records,
    destination_settings,
)
from ansible_collections.persist.docker.plugins.module_utils._engine import VolumeEngine
from ansible_collections.persist.docker.plugins.module_utils._errors import CopyError, EngineError, HelperError, PersistError, VolumeMissing
from ansible_collections.persist.docker.plugins.module_utils._helper import OWNER_LABEL, HelperRunner, owner_token
from ansible_collections.persist.docker.plugins.module_utils._member_safety import SafetyChecker, UnsafeMember
from ansible_collections.persist.docker.plugins.module_utils._swap import check_source, recover, stage_and_swap
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import (
    COPY_DIFFERS,
    SOURCE_MOUNT,
    VOLUME_MOUNT,
    copy_command,
    extract_command,
    staged_tree_command,
    tar_create_command,
)
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarFormatError, TarParser
from ansible_collections.persist.docker.plugins.module_utils._tar_write import canonical_stream
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import RecordStream, TreeDifferences, compare
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import CURRENT_VERSION, NotCanonicalOrder, TreeDigest
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import counted

try:
    from docker.errors import APIError
except ImportError:  # pragma: no cover - connect() reports the missing SDK first
    pass

# The guard of a migration: the volume module has no consistency options; a migration
# refuses containers that reference the volume before it starts, so only the lock matters.
_MIGRATE_GUARD = dict(
    containers=None, stop_timeout=DEFAULT_STOP_TIMEOUT, pre_commands=[], post_commands=[],
    lock_timeout=DEFAULT_LOCK_TIMEOUT, lock_expiry=DEFAULT_LOCK_EXPIRY,
)


# -- reading trees ---------------------------------------------------------------------------


def _read_volume(engine, volume):
    """The tar stream of ``volume`` from a read-only helper (a generator: close it when done;
    the helper's output is read ahead in a thread, see HelperRunner.stream_output)."""
    return engine.helpers.stream_output(tar_create_command(), {volume: VOLUME_MOUNT}, "reading volume %s" % volume, bulk=True)


class _CheckedStream:
    """A tar stream (``chunks``). Iterating yields its chunks, each parsed first: the safety
    rules (UnsafeMember), the tree digest (``digest``, with entries and bytes) and the
    comparable digest (``comparable``); ``observe(path, record)`` is called for each entry.
    With ``canonical``, what is yielded is the module's own re-serialization of the checked
    members (see _tar_write), not the bytes read. ``size`` counts the tar bytes read."""

    def __init__(self, chunks, allow_special, observe=None, canonical=False):
        self.comparable = ComparableDigest()

        def on_record(path, record):
            self.comparable.add(path, record)
            if observe is not None:
                observe(path, record)

        self.digest = TreeDigest(SafetyChecker(allow_special), on_record=on_record)
        self.size = 0
        self._chunks = chunks
        self._canonical = canonical

    def _counted(self):
        for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk

    def __iter__(self):
        if self._canonical:
            yield from canonical_stream(self._counted(), self.digest)
            return
        parser = TarParser(self.digest)
        for chunk in self._counted():
            parser.feed(chunk)  # raises before an unsafe member's bytes are handed on
            yield chunk
        parser.close()

    def close(self):
        self._chunks.close()


def _read_tree(engine, volume):
    """(TreeDigest, ComparableDigest) of ``volume`` as it is now; writes nothing."""
    comparable = ComparableDigest()
    digest = TreeDigest(on_record=comparable.add)
    parser = TarParser(digest)
    with closing(_read_volume(engine, volume)) as chunks:
        for chunk in chunks:
            parser.feed(chunk)
    parser.close()
    return digest, comparable


def _compare(engine, source, dest_engine, dest, allow_special):
    """Read ``source`` through the safety rules and, with a ``dest_engine``, compare it with
    ``dest`` entry by entry (both streamed at once). Returns (differences, source digest,
    dest digest or None)."""
    differences = TreeDifferences()
    with closing(_read_volume(engine, source)) as chunks:
        source_records = RecordStream(chunks, SafetyChecker(allow_special))
        if dest_engine is None:
            for _record in source_records:
                pass
            return differences, source_records.digest, None
        with closing(_read_volume(dest_engine, dest)) as live:
            dest_records = RecordStream(live)
            compare(comparable_records(source_records), comparable_records(dest_records), differences)
    return differences, source_records.digest, dest_records.digest


@contextmanager
def _reading(source, consequence=None):
    """Turn what the source's stream may raise into a CopyError naming the source;
    ``consequence`` (a sentence) ends its message."""
    ending = " " + consequence if consequence else ""
    try:
        yield
    except UnsafeMember as exc:
        raise CopyError(
            "Volume %s is not copied: its entry %s breaks a safety rule: %s. A copy never creates what "
            "persist.docker.volume_restore would refuse from an archive; set allow_special: true if "
            "device nodes, FIFOs or setuid/setgid files are expected.%s" % (source, exc.member, exc.rule, ending),
            volume_name=source, member=exc.member, rule=exc.rule,
        )
    except (TarFormatError, NotCanonicalOrder) as exc:
        raise CopyError(
            "The tar stream of volume %s could not be read (%s); the helper image must have GNU tar.%s" % (source, exc, ending),
            volume_name=source,
        )


# -- the data move, shared by volume_copy and migrate ---------------------------------------


def _stream_and_swap(engine, source, dest_engine, dest, mode, allow_special, commit, observe=None, check_staged=None):
    """Stream ``source`` through this process into a staging tree of ``dest`` on another
    engine, read the staged tree back (it must give the source's tree digest) and swap it
    in; returns the stream (digests, counts). Only the module's re-serialization of the
    checked members reaches the destination's tar. Before the swap a failure leaves
    ``dest``'s entries as they were."""
    stream = _CheckedStream(_read_volume(engine, source), allow_special, observe, canonical=True)

    def stage(token):
        what = "copying volume %s into volume %s" % (source, dest)
        dest_engine.helpers.run_with_input(extract_command(token), {dest: VOLUME_MOUNT}, stream, what, special=allow_special, bulk=True)

    def check(token):
        staged = read_staged(dest_engine, dest, token, CURRENT_VERSION)
        if staged.hexdigest() != stream.digest.hexdigest():
            with _reading(source):
                differences = _compare_staged(engine, source, dest_engine, dest, token)
            raise _not_as_copied(source, dest, differences, "replace", staged=True)
        if check_staged is not None:
            check_staged(token)

    try:
        with _reading(source, "Nothing was changed in volume %s." % dest):
            stage_and_swap(dest_engine, dest, stage, mode, commit, special=allow_special, check_staged=check)
    finally:
        stream.close()
    return stream


def _copy_and_swap(engine, source, dest, mode, allow_special, commit, observe=None, check_staged=None):
    """Copy ``source`` into a staging tree of ``dest`` on the same engine, inside one helper
    (see _tar_commands.copy_command), and swap it in; returns the stream this process read
    (digests, counts). The helper's tar stream passes through the safety rules and the
    digest here while the helper extracts it; the staged tree must then read back as the
    source, byte for byte (or, where the two tar streams differ only in how they encode it,
    entry by entry). Before the swap a failure leaves ``dest``'s entries as they were."""
    streams = []

    def stage(token):
        chunks = engine.helpers.stream_output(
            copy_command(token), {source: SOURCE_MOUNT, dest: VOLUME_MOUNT},
            "copying volume %s into volume %s" % (source, dest), writes=dest, special=allow_special, bulk=True)
        stream = _CheckedStream(chunks, allow_special, observe)
        streams.append(stream)
        try:
            for _chunk in stream:
                pass
        except HelperError as exc:
            if exc.details.get("exit_code") != COPY_DIFFERS:
                exc.msg = "%s Nothing was changed in volume %s." % (exc.msg.rstrip("."), dest)
                raise
            with _reading(source):
                differences = _compare_staged(engine, source, engine, dest, token)
            if differences.would_change("replace"):
                raise _not_as_copied(source, dest, differences, "replace", staged=True)
        finally:
            stream.close()

    with _reading(source, "Nothing was changed in volume %s." % dest):
        stage_and_swap(engine, dest, stage, mode, commit, special=allow_special, check_staged=check_staged)
    return streams[0]


def _compare_staged(engine, source, dest_engine, dest, token):
    """How the staged tree ``token`` inside ``dest`` differs from ``source`` as it is now."""
    differences = TreeDifferences()
    with closing(_read_volume(engine, source)) as chunks:
        what = "reading the staged copy in volume %s" % dest
        with closing(dest_engine.helpers.stream_output(staged_tree_command(token), {dest: VOLUME_MOUNT}, what, bulk=True)) as staged:
            compare(comparable_records(RecordStream(chunks)), comparable_records(RecordStream(staged)), differences)
    return differences


def _not_as_copied(source, dest, differences, mode, staged):
    """The CopyError for a copy that does not read back as the source (``staged``: before the
    swap, nothing changed; else after it)."""
    view = differences.as_dict(mode)
    copy_name = "the staged copy" if staged else dest
    kinds = (("added", "missing from %s" % copy_name), ("changed", "different"), ("removed", "only in %s" % copy_name))
    found = "; ".join(
        "%s %s (%s)" % (counted(view[kind], "entry", "entries"), words, ", ".join(view[kind + "_paths"][:5]))
        for kind, words in kinds if view[kind]
    ) or "they differ only in the root directory's attributes"
    if staged:
        opening = (
            "Volume %s was not copied into volume %s: the staged copy does not read back as the source; "
            "compared with %s as it is now: %s." % (source, dest, source, found))
        ending = "Nothing was changed in volume %s; check the containers that use volume %s, then run the task again." % (dest, source)
    else:
        opening = (
            "Volume %s was copied into volume %s, but reading %s back does not give the tree that was "
            "copied; compared with %s as it is now: %s." % (source, dest, dest, source, found))
        ending = "Volume %s was not changed; inspect volume %s, then run the task again." % (source, dest)
    return CopyError(
        "%s A container may have written to one of them during the copy (containers: ignore), or the "
        "destination's storage does not keep every attribute. %s" % (opening, ending),
        volume_name=dest, differences=view,
    )


def _verify_copy(engine, source, dest_engine, dest, mode, stream, allow_special):
    """Read ``dest`` back: in mode replace it must give the source's tree, in mode merge hold
    every entry of the source as it is there. Returns the destination's tree digest."""
    if mode == "replace":
        digest, comparable = _read_tree(dest_engine, dest)
        if comparable.hexdigest() == stream.comparable.hexdigest():
            return digest
        with _reading(source):
            differences = _compare(engine, source, dest_engine, dest, allow_special)[0]
    else:
        with _reading(source):
            differences, _source_digest, digest = _compare(engine, source, dest_engine, dest, allow_special)
        if not differences.would_change("merge"):
            return digest
    raise _not_as_copied(source, dest, differences, mode, staged=False)


def copy_between(engine, source, dest_engine, dest, mode, allow_special, commit, observe=None, check_staged=None):
    """Copy volume ``source`` (of ``engine``) into the existing volume ``dest`` (of
    ``dest_engine``, possibly the same engine), staged, swapped and verified.

    On one engine one helper copies and the staged tree is verified against the source before
    the swap (and, in mode merge, ``dest`` read back after it); across engines the stream
    passes through this process, re-written by it, and the staged tree is read back on the
    destination's engine before the swap. In mode merge, ``dest`` is read back after the swap
    too. ``commit`` is the Consistency guard (or an object with ``before_commit`` and
    ``hold``, see _swap). ``observe(path, record)`` sees every entry of the source as it is
    copied; ``check_staged(token)`` is called before the swap and may raise to leave
    ``dest`` as it was.

    Returns ``tree_digest`` (source and dest), ``comparable_digest`` (the source's, see
    _copy_rules), ``entries`` and ``bytes`` of the source's tree and ``streamed_bytes`` (tar).
    Raises CopyError for a source entry that breaks a safety rule and for a staged tree that
    differs from the source (nothing changed in ``dest``), and when ``dest`` read back
    differs (the copy was swapped in).
    """
    if dest_engine is engine:
        stream = _copy_and_swap(engine, source, dest, mode, allow_special, commit, observe, check_staged)
    else:
        stream = _stream_and_swap(engine, source, dest_engine, dest, mode, allow_special, commit, observe, check_staged)
    verified = stream.digest if mode == "replace" else None
    dest_digest = verified or _verify_copy(engine, source, dest_engine, dest, mode, stream, allow_special)
    return dict(
        tree_digest=dict(source=stream.digest.hexdigest(), dest=dest_digest.hexdigest()),
        comparable_digest=stream.comparable.hexdigest(),
        entries=stream.digest.entries,
        bytes=stream.digest.bytes,
        streamed_bytes=stream.size,
    )


def _remove_quietly(engine, volume):
    """Best effort: the caller reports the error that matters."""
    try:
        engine.remove(volume)
    except Exception:  # the error that made the caller give up matters more
        pass


# -- volume_copy ----------------------------------------------------------------------------


def _engine_identity(client):
    """What tells one engine from another: its id, host name and data root. Two daemons on
    one host may share an id (Docker 20.10 derives it from /etc/docker/key.json), never a
    data root; a daemon reached at two addresses gives the same three."""
    try:
        info = client.info()
    except APIError as exc:
        raise EngineError("Cannot ask the Docker engine at %s who it is: %s" % (client.base_url, exc))
    identity = (info.get("ID"), info.get("Name"), info.get("DockerRootDir"))
    return identity if all(identity) else None


def _destination_engine(engine, params):
    """(engine of the destination, whether it is another engine than the source's)."""
    if not params.get("dest_docker_host"):
        return engine, False
    client = connect(prefixed_params(params, "dest_"))
    source_identity = _engine_identity(engine.client)
    if source_identity is not None and source_identity == _engine_identity(client):
        client.close()
        return engine, False
    return VolumeEngine(client, HelperRunner(client, params["helper_image"], params["helper_pull"], params["helper_transport"])), True


def _guards(engine, dest_engine, cross, params, check_mode):
    """The Consistency guards: one for both volumes on one engine, else one per engine (the
    pre- and post-commands run on the source's engine), entered in a fixed order."""
    source, dest = params["source"], params["dest"]
    if not cross:
        return [Consistency(engine, [(source, READS), (dest, WRITES)], params, check_mode, "volume_copy")]
    dest_params = dict(params, pre_commands=[], post_commands=[])
    keyed = [
        ((params["docker_host"] or "", source), Consistency(engine, [(source, READS)], params, check_mode, "volume_copy")),
        ((params["dest_docker_host"], dest), Consistency(dest_engine, [(dest, WRITES)], dest_params, check_mode, "volume_copy")),
    ]
    return [guard for _key, guard in sorted(keyed, key=lambda pair: pair[0])]


def _report(guards):
    """The consistency, lock and hooks results of all guards as one."""
    if len(guards) == 1:
        return guards[0].report()
    reports = [guard.report() for guard in guards]
    acquired = [report["lock"]["acquired_at"] for report in reports if report["lock"]["acquired_at"] is not None]
    released = [report["lock"]["released_at"] for report in reports if report["lock"]["released_at"] is not None]
    return {
        "consistency": {
            "method": consistency_method([entry for guard in guards for entry in guard.entries]),
            "containers": [entry for report in reports for entry in report["consistency"]["containers"]],
            "restarted_after_interrupted_run": [
                entry for report in reports for entry in report["consistency"]["restarted_after_interrupted_run"]
            ],
        },
        "lock": {
            "names": [name for report in reports for name in report["lock"]["names"]],
            "waited_seconds": max(report["lock"]["waited_seconds"] for report in reports),
            "broken": [broken for report in reports for broken in report["lock"]["broken"]],
            "acquired_at": min(acquired) if acquired else None,
            "released_at": max(released) if released else None,
        },
        "hooks": [hook for report in reports for hook in report["hooks"]],
    }


def copy(engine, params, check_mode):
    """Copy volume ``params['source']`` to ``params['dest']``; see the module for the options."""
    source, dest = params["source"], params["dest"]
    dest_engine, cross = _destination_engine(engine, params)
    if not cross and source == dest:
        raise CopyError(
            "source and dest are the same volume %s on the same engine; a volume is not copied onto "
            "itself. Name another dest, or set dest_docker_host to copy it to another engine." % source,
            volume_name=source,
        )
    described = engine.volume(source)
    if described is None:
        raise VolumeMissing(
            "Volume %s does not exist, so there is nothing to copy. Check source "
            "(persist.docker.volume_info lists the volumes)." % source,
            volume_name=source,
        )
    guards = _guards(engine, dest_engine, cross, params, check_mode)
    with ExitStack() as stack:
        if cross:
            stack.callback(dest_engine.helpers.close)
        for guard in guards:
            stack.enter_context(guard)
        result = _copy_quiet(engine, described, dest_engine, cross, params, check_mode, guards)
        for guard in guards:
            guard.result = result
    result.update(_report(guards))
    result["transport"] = engine.helpers.transport()
    if cross:
        result["dest_transport"] = dest_engine.helpers.transport()
        if dest_engine.helpers.reaped:
            result["dest_reaped_helpers"] = dest_engine.helpers.reaped
    return result


def _dest_to_create(described, dest_engine, params):
    """(driver, driver_opts, labels, taken_from) of the missing destination; CopyError when
    settings taken from the source would mount existing storage (a bind, device or share, or
    a plugin's options), or when the storage would be another volume's or in use."""
    dest = params["dest"]
    driver, options, labels, taken_from, problem = destination_settings(
        described, params.get("dest_driver"), params.get("dest_driver_opts"), params.get("dest_labels"))
    problem = problem or dest_engine.storage_shared(dict(name=dest, driver=driver, driver_opts=options))
    if problem:
        raise CopyError(
            "Volume %s is not created with %s: %s. Give dest_driver_opts for storage of its own (or dest_driver), "
            "or create volume %s first. Nothing was changed." % (dest, taken_from, problem, dest),
            volume_name=dest,
        )
    return driver, options, labels, taken_from


class _Commit:
    """The commit object of a copy (see _swap): every guard must agree before the swap, and
    a volume left half swapped is held by each of them."""

    def __init__(self, guards):
        self.guards = guards

    def before_commit(self):
        for guard in self.guards:
            guard.before_commit()

    def hold(self, volume):
        for guard in self.guards:
            guard.hold(volume)


def _copy_quiet(engine, described, dest_engine, cross, params, check_mode, guards):
    """The copy proper, while the containers in the way are stopped."""
    source, dest, mode, when = params["source"], params["dest"], params["mode"], params["copy_when"]
    result = dict(
        changed=False, source=source, dest=dest, dest_docker_host=params["dest_docker_host"] if cross else None,
        created=False, actions=[action for guard in guards for action in guard.actions],
        finished_interrupted=False, skipped_reason=None, verified=False,
    )
    commit = _Commit(guards)
    result["warnings"] = check_source(engine, source, commit, check_mode, params["recovery"], result["actions"], "copy")
    planned = len(result["actions"])
    current = dest_engine.volume(dest)
    settings = None
    if current is None:
        if not params["create"]:
            raise VolumeMissing(
                "Volume %s does not exist and create is false. Create it first, or set create: true "
                "to create it with the driver, options and labels of volume %s (or dest_driver, "
                "dest_driver_opts and dest_labels)." % (dest, source),
                volume_name=dest,
            )
        settings = _dest_to_create(described, dest_engine, params)
    else:
        reason = dest_engine.storage_shared(current)
        if reason:
            raise CopyError("Volume %s is not written by volume_copy: %s. Writing it would change the other's files under it. "
                            "Nothing was changed." % (dest, reason), volume_name=dest)
        finished, warnings = recover(dest_engine, dest, commit, check_mode, params["recovery"], result["actions"])
        result["finished_interrupted"] = finished
        result["warnings"].extend(warnings)

    started = time.time()
    compare_dest = current is not None and when == "different" and not (check_mode and result["finished_interrupted"])
    empty_root = _root_of_empty(dest_engine, dest) if compare_dest and not check_mode else None
    differences = TreeDifferences()
    if (compare_dest and empty_root is None) or check_mode:
        # Check mode reads the source through the safety rules too, so that it predicts a refusal.
        with _reading(source, "Nothing was changed in volume %s." % dest):
            differences, source_digest, dest_digest = _compare(
                engine, source, dest_engine if compare_dest else None, dest, params["allow_special"])
        result.update(
            tree_digest=dict(source=source_digest.hexdigest(), dest=dest_digest.hexdigest() if dest_digest else None),
            entries=source_digest.entries, bytes=source_digest.bytes,
        )
        if compare_dest and not _note_differences(result, differences, mode, source, dest, planned):
            return result

    if current is None:
        result["actions"].append("create volume %s with driver %s and %s" % (dest, settings[0], settings[3]))
    where = " on engine %s" % params["dest_docker_host"] if cross else ""
    result["actions"].append("copy volume %s into volume %s%s (mode %s)" % (source, dest, where, mode))
    result["changed"] = True
    if check_mode:
        return result

    if current is None:
        dest_engine.create(dest, settings[0], settings[1], settings[2])
        result["created"] = True

    observe = check_staged = None
    if empty_root is not None:
        observe, check_staged = _noting_differences(result, differences, empty_root, mode, source, dest, planned)

    try:
        copied = copy_between(engine, source, dest_engine, dest, mode, params["allow_special"], commit, observe, check_staged)
    except _NothingToCopy:
        result["actions"].pop()
        return result
    except BaseException:
        if result["created"]:
            # Created by this run for a copy that never happened: it holds nothing.
            _remove_quietly(dest_engine, dest)
        raise
    result.update(copied, verified=True, duration_seconds=round(time.time() - started, 3))
    del result["comparable_digest"]
    return result


def _noting_differences(result, differences, empty_root, mode, source, dest, planned):
    """(observe, check_staged) for a copy into an empty dest, whose differences are the
    source's entries: noted as they are copied, and checked before the swap."""

    def observe(path, record):
        if path:
            differences.note("added", path)
        elif comparable(path, record) != comparable(path, empty_root):
            differences.note("changed", path)

    def check_staged(_token):
        if not _note_differences(result, differences, mode, source, dest, planned):
            raise _NothingToCopy()

    return observe, check_staged


class _NothingToCopy(Exception):
    """The staged copy would change nothing: it is discarded, not swapped in."""


def _root_of_empty(engine, volume):
    """The tree-digest record of the root of ``volume`` when it holds no entry, else None
    (reads no further than its second entry)."""
    with closing(_read_volume(engine, volume)) as chunks:
        records = iter(RecordStream(chunks))
        root = next(records, None)
        if root is None or next(records, None) is not None:
            return None
    return root[1]


def _note_differences(result, differences, mode, source, dest, planned):
    """Put ``differences`` into ``result``; True when the copy would change ``dest``, else
    the result says why it is skipped."""
    result["differences"] = differences.as_dict(mode)
    result["diff"] = {"prepared": differences.prepared(mode)}
    if differences.would_change(mode):
        return True
    result["skipped_reason"] = (
        "volume %s already equals volume %s" % (dest, source) if mode == "replace"
        else "volume %s already holds every entry of volume %s as it is there" % (dest, source)
    )
    result["changed"] = len(result["actions"]) > planned
    return False


# -- recreate: migrate -----------------------------------------------------------------------


def leftover_migrations(engine, name):
    """Temporary volumes that interrupted migrations of volume ``name`` left (names)."""
    return [volume["name"] for volume in engine.volumes(["%s=%s" % (MIGRATE_LABEL, name)])]


def migrate(engine, current, driver, driver_opts, labels):
    """Recreate volume ``current`` with new settings and its data.

    The data is copied aside into a temporary local volume (labelled MIGRATE_LABEL=name and
    with its owner) and verified; the volume is removed and created with the new settings
    (should the engine refuse them, with its old ones again); the data is copied back and
    verified against the original's tree; the temporary volume is removed. Any failure
    leaves the data in the volume or in the temporary volume, and the error names it.
    Returns what was done; raises EngineError when the engine refused the new settings
    (the volume is back as it was, data included).
    """
    name = current["name"]
    shared = engine.storage_shared(dict(name=name, driver=driver, driver_opts=driver_opts or {}))
    if shared:
        raise CopyError("Volume %s is not migrated to the new settings: %s. Nothing was changed." % (name, shared), volume_name=name)
    aside = aside_name(name, binascii.hexlify(os.urandom(4)).decode("ascii"))
    started = time.time()
    guard = Consistency(engine, [(name, WRITES), (aside, WRITES)], _MIGRATE_GUARD, False, "volume")
    with guard:
        engine.create(aside, "local", {}, {MIGRATE_LABEL: name, OWNER_LABEL: owner_token()})
        try:
            there = copy_between(engine, name, engine, aside, "replace", True, guard)
        except BaseException as exc:
            _remove_quietly(engine, aside)
            if isinstance(exc, PersistError):
                exc.msg = "Volume %s was not migrated: copying its data aside failed. %s Volume %s was not changed." % (name, exc.msg, name)
            raise
        refused = _recreate_and_copy_back(engine, current, aside, driver, driver_opts, labels, there, guard)
        try:
            engine.remove(aside)
        except PersistError as exc:
            raise CopyError(
                "Volume %s was migrated and verified, but the temporary volume %s could not be removed: %s. "
                "Remove it with persist.docker.volume (state: absent, force: true)." % (name, aside, exc.msg),
                volume_name=name, aside_volume=aside,
            )
    if refused is not None:
        raise EngineError(
            "%s. Volume %s was created again with its previous settings and its data was copied back "
            "and verified; nothing else was changed." % (refused.msg, name),
            volume_name=name,
        )
    return dict(
        aside_volume=aside, tree_digest=there["tree_digest"]["source"], entries=there["entries"],
        bytes=there["bytes"], duration_seconds=round(time.time() - started, 3),
    )


def _recreate_and_copy_back(engine, current, aside, driver, driver_opts, labels, there, guard):
    """The steps after which the only copy of the data may be the temporary volume; any
    failure is reported with its name. Returns the engine's refusal of the new settings."""
    name = current["name"]
    refused = None
    try:
        engine.remove(name)
        try:
            engine.create(name, driver, driver_opts, labels)
        except EngineError as exc:
            refused = exc
            engine.create(name, current["driver"], current["driver_opts"], current["labels"])
        back = copy_between(engine, aside, engine, name, "replace", True, guard)
        if back["comparable_digest"] != there["comparable_digest"]:
            raise CopyError("the copied-back tree differs from the original's (tree digest %s, was %s)" % (
                back["tree_digest"]["dest"], there["tree_digest"]["source"]))
    except Exception as exc:  # whatever failed (the engine gone too), say where the data is
        cause = exc.msg if isinstance(exc, PersistError) else "%s: %s" % (type(exc).__name__, exc)
        raise CopyError(
            "Migrating volume %s failed after its data was copied aside: %s The data is kept, verified, in "
            "volume %s (labelled %s=%s). Once the cause is fixed, copy it back with persist.docker.volume_copy "
            "(source: %s, dest: %s, create: true), then remove %s." % (name, cause.rstrip(".") + ".", aside, MIGRATE_LABEL, name, aside, name, aside),
            volume_name=name, aside_volume=aside,
        )
    return refused
