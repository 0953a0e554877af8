# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The copy pipeline, volume -> volume on one engine or across two: shared by volume_copy
and the volume module's ``recreate: migrate``.

One pipeline with backup and restore. GNU tar streams the source with the backup's command;
this process parses every chunk as it passes (the restore's safety rules and the tree digest).

* On one engine, one helper mounts both volumes and extracts the stream into a staging tree
  inside the destination: through the fast path, this process hands each checked chunk back
  into the extracting tar (HelperRunner.relay); through the API stream, tee hands the stream
  both to this process and to tar, so the data leaves the engine once instead of three times.
  The staged tree must then read back, inside the helper, as the very bytes the source reads as
  (see _tar_commands.copy_command).
* Across engines, this process re-writes each checked member (_tar_write) for a helper on the
  destination's engine, which extracts it into the staging tree: a member that breaks a rule
  stops the stream before its header reaches the destination, and there is no temporary file.
  Then the staged tree is read back there and must give the source's tree digest.

Either way only a complete, checked staging tree is swapped in, under the journal (_swap).
"""

from __future__ import annotations

from contextlib import closing, contextmanager

from ansible_collections.persist.docker.plugins.module_utils._archive_restore import ReadBack
from ansible_collections.persist.docker.plugins.module_utils._copy_rules import ComparableDigest, comparable_records
from ansible_collections.persist.docker.plugins.module_utils._errors import CopyError, HelperError
from ansible_collections.persist.docker.plugins.module_utils._member_safety import NotCanonicalOrder, SafetyChecker, UnsafeMember
from ansible_collections.persist.docker.plugins.module_utils._swap import stage_and_swap
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
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import CURRENT_VERSION, TreeDigest
from ansible_collections.persist.docker.plugins.module_utils._text import counted, no_room


# The guard of a migration: the volume module has no consistency options; a migration

# -- reading trees ---------------------------------------------------------------------------


def read_volume(engine, volume):
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
    with closing(read_volume(engine, volume)) as chunks:
        for chunk in chunks:
            parser.feed(chunk)
    parser.close()
    return digest, comparable


def compare_volumes(engine, source, dest_engine, dest, allow_special):
    """Read ``source`` through the safety rules and, with a ``dest_engine``, compare it with
    ``dest`` entry by entry (both streamed at once). Returns (differences, source digest,
    dest digest or None)."""
    differences = TreeDifferences()
    with closing(read_volume(engine, source)) as chunks:
        source_records = RecordStream(chunks, SafetyChecker(allow_special))
        if dest_engine is None:
            for _record in source_records:
                pass
            return differences, source_records.digest, None
        with closing(read_volume(dest_engine, dest)) as live:
            dest_records = RecordStream(live)
            compare(comparable_records(source_records), comparable_records(dest_records), differences)
    return differences, source_records.digest, dest_records.digest


@contextmanager
def reading(source, consequence=None):
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


def _stream_and_swap(engine, source, dest_engine, dest, *, mode, allow_special, commit, observe=None, check_staged=None):
    """Stream ``source`` through this process into a staging tree of ``dest`` on another
    engine, read the staged tree back (it must give the source's tree digest) and swap it
    in; returns the stream (digests, counts). Only the module's re-serialization of the
    checked members reaches the destination's tar. Before the swap a failure leaves
    ``dest``'s entries as they were."""
    stream = _CheckedStream(read_volume(engine, source), allow_special, observe, canonical=True)
    read_back = ReadBack(dest_engine, dest)

    def stage(token):
        read_back.hold(token)
        what = "copying volume %s into volume %s" % (source, dest)
        try:
            dest_engine.helpers.run_with_input(extract_command(token), {dest: VOLUME_MOUNT}, stream, what, special=allow_special, bulk=True)
        except HelperError as exc:
            _extraction_failed(exc, source, dest)
            raise

    def check(token):
        _check_read_back(read_back, stream, engine, source, dest_engine, dest, token)
        if check_staged is not None:
            check_staged(token)

    try:
        with reading(source, "Nothing was changed in volume %s." % dest), read_back:
            stage_and_swap(dest_engine, dest, stage, mode, commit, special=allow_special, check_staged=check)
    finally:
        stream.close()
    return stream


def _copy_and_swap(engine, source, dest, *, mode, allow_special, commit, observe=None, check_staged=None):
    """Copy ``source`` into a staging tree of ``dest`` on the same engine, inside one helper
    (see _tar_commands.copy_command), and swap it in; returns the stream this process read
    (digests, counts). Through the fast path, the helper's tar stream passes through the
    safety rules and the digest here on its way into the extracting tar, the source must not
    change meanwhile, and the staged tree is then read back here and must give the stream's
    digest. Through the API stream, the stream is checked here while the helper extracts it,
    and the staged tree must read back, in the helper, as the source, byte for byte (or, where
    the two tar streams differ only in how they encode it, entry by entry). Before the swap a
    failure leaves ``dest``'s entries as they were."""
    streams = []
    relayed = engine.helpers.relays()
    read_back = ReadBack(engine, dest)

    def checked(chunks):
        stream = _CheckedStream(chunks, allow_special, observe)
        streams.append(stream)
        return stream

    def stage(token):
        volumes, what = {source: SOURCE_MOUNT, dest: VOLUME_MOUNT}, "copying volume %s into volume %s" % (source, dest)
        try:
            if relayed:
                read_back.hold(token)
                engine.helpers.relay(copy_command(token, relayed=True), volumes, what, checked, writes=dest, special=allow_special)
            else:
                with closing(checked(engine.helpers.stream_output(copy_command(token), volumes, what, writes=dest, special=allow_special,
                                                                  bulk=True))) as stream:
                    for _chunk in stream:
                        pass
        except HelperError as exc:
            if exc.details.get("exit_code") != COPY_DIFFERS:
                _extraction_failed(exc, source, dest)
                raise
            with reading(source):
                differences = _compare_staged(engine, source, engine, dest, token)
            if differences.would_change("replace"):
                raise _not_as_copied(source, dest, differences, "replace", staged=True)

    def check(token):
        if relayed:
            _check_read_back(read_back, streams[0], engine, source, engine, dest, token)
        if check_staged is not None:
            check_staged(token)

    with reading(source, "Nothing was changed in volume %s." % dest), read_back:
        stage_and_swap(engine, dest, stage, mode, commit, special=allow_special, check_staged=check)
    return streams[0]


def _check_read_back(read_back, stream, engine, source, dest_engine, dest, token):
    """Read the staged tree ``token`` back (``read_back``, held): unless it gives the digest
    of ``stream``, raise the CopyError that says how it differs from ``source`` now."""
    staged = read_back.digest(CURRENT_VERSION)
    if staged.hexdigest() != stream.digest.hexdigest():
        with reading(source):
            differences = _compare_staged(engine, source, dest_engine, dest, token)
        raise _not_as_copied(source, dest, differences, "replace", staged=True)


def _extraction_failed(exc, source, dest):
    """End the message of HelperError ``exc`` of a copy whose staging failed: why, when it was
    for want of room, and that ``dest`` was not changed."""
    room = no_room(exc.msg, dest, "as much as volume %s holds" % source)
    exc.msg = "%s.%s Nothing was changed in volume %s." % (exc.msg.rstrip("."), room, dest)


def _compare_staged(engine, source, dest_engine, dest, token):
    """How the staged tree ``token`` inside ``dest`` differs from ``source`` as it is now."""
    differences = TreeDifferences()
    with closing(read_volume(engine, source)) as chunks:
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


def _verify_copy(engine, source, dest_engine, dest, stream, *, mode, allow_special):
    """Read ``dest`` back: in mode replace it must give the source's tree, in mode merge hold
    every entry of the source as it is there. Returns the destination's tree digest."""
    if mode == "replace":
        digest, comparable = _read_tree(dest_engine, dest)
        if comparable.hexdigest() == stream.comparable.hexdigest():
            return digest
        with reading(source):
            differences = compare_volumes(engine, source, dest_engine, dest, allow_special)[0]
    else:
        with reading(source):
            differences, _source_digest, digest = compare_volumes(engine, source, dest_engine, dest, allow_special)
        if not differences.would_change("merge"):
            return digest
    raise _not_as_copied(source, dest, differences, mode, staged=False)


def copy_between(engine, source, dest_engine, dest, *, mode, allow_special, commit, observe=None, check_staged=None):
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
        stream = _copy_and_swap(engine, source, dest, mode=mode, allow_special=allow_special, commit=commit, observe=observe,
                                check_staged=check_staged)
    else:
        stream = _stream_and_swap(engine, source, dest_engine, dest, mode=mode, allow_special=allow_special, commit=commit,
                                  observe=observe, check_staged=check_staged)
    verified = stream.digest if mode == "replace" else None
    dest_digest = verified or _verify_copy(engine, source, dest_engine, dest, stream, mode=mode, allow_special=allow_special)
    return dict(
        tree_digest=dict(source=stream.digest.hexdigest(), dest=dest_digest.hexdigest()),
        comparable_digest=stream.comparable.hexdigest(),
        entries=stream.digest.entries,
        bytes=stream.digest.bytes,
        streamed_bytes=stream.size,
    )


def remove_quietly(engine, volume):
    """Best effort: the caller reports the error that matters."""
    try:
        engine.remove(volume)
    except Exception:  # the error that made the caller give up matters more
        pass
