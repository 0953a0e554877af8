# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Extracting a verified archive into a volume: the data path that volume_restore and
backup_verify's test restores share.

``extract_and_swap`` reads the archive again (opened once, see _archive_read.PinnedArchive),
each block checked against the first read before it is used; every member is checked again
and re-written by the module (_tar_write), so GNU tar extracts only headers the module wrote;
the staging tree is read back and its tree digest must equal the archive's before the swap
(_swap) makes it live. The checks themselves are _archive_check's.
"""

from __future__ import annotations

from contextlib import ExitStack, closing

from ansible_collections.persist.docker.plugins.module_utils._archive_check import (
    READ_FAILURES,
    check_against_sidecar,
    digest_version,
    refusal,
)
from ansible_collections.persist.docker.plugins.module_utils._errors import HelperError, RestoreError
from ansible_collections.persist.docker.plugins.module_utils._member_safety import SafetyChecker
from ansible_collections.persist.docker.plugins.module_utils._swap import stage_and_swap
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import VOLUME_MOUNT, extract_command, staged_tree_command
from ansible_collections.persist.docker.plugins.module_utils._tar_write import canonical_stream
from ansible_collections.persist.docker.plugins.module_utils._text import no_room, sized
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import RecordStream, TreeDifferences, compare
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import TreeDigest


def extract_and_swap(engine, archive, entry, target, mode, commit, *, allow_special, verified=True, observe=None, before_read_back=None):
    """Extract ``archive`` into a staging tree of volume ``target``, read it back, and swap it
    in (``mode`` replace or merge); see the module doc. ``commit`` is the Consistency guard
    (or _swap.NO_GUARD). Without ``verified`` this is the archive's first read: it is
    verified as it is extracted (the safety rules before each member reaches tar, sha256 and
    tree digest before the swap); ``observe(path, record)`` then sees each entry as it passes.
    ``before_read_back(token)`` runs once the archive is staged and proved to be what its
    sidecar says, before the staged tree is read back (it may raise to discard the staging
    tree; a restore stops the containers in the way there). Any failure before the swap leaves
    the target's entries as they were."""
    path = entry["path"]
    version = digest_version(entry)
    ending = " The target volume was not changed."
    approver = SafetyChecker(allow_special) if verified else TreeDigest(SafetyChecker(allow_special), on_record=observe, version=version)

    read_back = ReadBack(engine, target)

    def stage(token):
        read_back.hold(token)
        chunks = canonical_stream(archive.stream(), approver)
        what = "extracting %s into volume %s" % (path, target)
        try:
            engine.helpers.run_with_input(extract_command(token), {target: VOLUME_MOUNT}, chunks, what, special=allow_special, bulk=True)
        except HelperError as exc:  # GNU tar failed (a full volume, storage that refuses an attribute)
            need = "the archive's %s of data" % sized(entry["metadata"]["tree"]["bytes"])
            exc.msg = "%s.%s%s" % (exc.msg.rstrip("."), no_room(exc.msg, target, need), ending)
            raise

    def check_staged(token):
        if not verified:
            check_against_sidecar(archive, approver, entry, ending)
        if before_read_back is not None:
            before_read_back(token)
        staged = read_back.digest(version)
        if staged.hexdigest() != entry["metadata"]["tree"]["digest"]:
            first = _first_difference(engine, archive, target, token, version)
            raise RestoreError(
                "The tree extracted from %s into volume %s does not read back as the archive (first difference: %s); "
                "the volume's storage may not keep every attribute. The staging tree was removed.%s" % (path, target, first, ending),
                archive=path, check="read_back",
            )

    try:
        with read_back:
            stage_and_swap(engine, target, stage, mode, commit, special=allow_special, check_staged=check_staged)
    except READ_FAILURES as exc:
        raise refusal(path, exc, ending)


class ReadBack:
    """The helper that reads a staging tree of ``volume`` back, started before the tree is
    written and held until it is (HelperRunner.held_output): it reads the tree as soon as the
    writer ended, while the engine writes the data out and starts no new container. A context
    manager around stage_and_swap, which removes the helper; ``hold(token)`` in ``stage``
    before the writing starts, ``digest(version)`` in ``check_staged``."""

    def __init__(self, engine, volume):
        self._engine = engine
        self._volume = volume
        self._held = ExitStack()
        self._release = None

    def __enter__(self):
        return self

    def __exit__(self, *failure):
        return self._held.__exit__(*failure)

    def hold(self, token):
        what = "reading back the staged tree in volume %s" % self._volume
        self._release = self._held.enter_context(
            self._engine.helpers.held_output(staged_tree_command(token), {self._volume: VOLUME_MOUNT}, what))

    def digest(self, version):
        """The TreeDigest of the staging tree, read back now."""
        if self._release is None:
            raise AssertionError("internal error: reading back before hold()")
        chunks = self._release()
        with closing(chunks):
            records = RecordStream(chunks, version=version)
            for _record in records:
                pass
        return records.digest


def _first_difference(engine, archive, volume, token, version):
    """The first entry in which the staging tree differs from the archive, in words."""
    differences = TreeDifferences(limit=1)
    staged = engine.helpers.stream_output(staged_tree_command(token), {volume: VOLUME_MOUNT}, "reading back the staged tree in volume %s" % volume, bulk=True)
    with closing(staged):
        compare(RecordStream(archive.stream(), version=version), RecordStream(staged, version=version), differences)
    for kind, words in (("changed", "%s differs"), ("added", "%s is missing"), ("removed", "%s is extra")):
        if differences.samples[kind]:
            return words % differences.samples[kind][0]
    return "none entry by entry, the digests differ in their order"
