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

from contextlib import closing

from ansible_collections.persist.docker.plugins.module_utils._archive_check import (
    READ_FAILURES,
    check_against_sidecar,
    digest_version,
    refusal,
)
from ansible_collections.persist.docker.plugins.module_utils._errors import RestoreError
from ansible_collections.persist.docker.plugins.module_utils._member_safety import SafetyChecker
from ansible_collections.persist.docker.plugins.module_utils._swap import stage_and_swap
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import VOLUME_MOUNT, extract_command, staged_tree_command
from ansible_collections.persist.docker.plugins.module_utils._tar_write import canonical_stream
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

    def stage(token):
        chunks = canonical_stream(archive.stream(), approver)
        what = "extracting %s into volume %s" % (path, target)
        engine.helpers.run_with_input(extract_command(token), {target: VOLUME_MOUNT}, chunks, what, special=allow_special, bulk=True)

    def check_staged(token):
        if not verified:
            check_against_sidecar(archive, approver, entry, ending)
        if before_read_back is not None:
            before_read_back(token)
        staged = read_staged(engine, target, token, version)
        if staged.hexdigest() != entry["metadata"]["tree"]["digest"]:
            first = _first_difference(engine, archive, target, token, version)
            raise RestoreError(
                "The tree extracted from %s into volume %s does not read back as the archive (first difference: %s); "
                "the volume's storage may not keep every attribute. The staging tree was removed.%s" % (path, target, first, ending),
                archive=path, check="read_back",
            )

    try:
        stage_and_swap(engine, target, stage, mode, commit, special=allow_special, check_staged=check_staged)
    except READ_FAILURES as exc:
        raise refusal(path, exc, ending)


def read_staged(engine, volume, token, version):
    """The TreeDigest of the staging tree ``token`` inside ``volume``."""
    chunks = engine.helpers.stream_output(staged_tree_command(token), {volume: VOLUME_MOUNT}, "reading back the staged tree in volume %s" % volume, bulk=True)
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
