# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Checking an archive against its sidecar: what volume_restore, backup_verify and the checks
of off-host copies share. Needs no engine (a live target is compared through the engine the
caller gives).

``verify_archive`` reads the whole archive (opened once, see _archive_read.PinnedArchive): its
sha256 and size must match the sidecar, every member must pass the safety rules, and the tree
digest (of the version the sidecar names) must match; a live target can be compared with it
entry by entry in the same pass.
"""

from __future__ import annotations

from contextlib import closing

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import encryption
from ansible_collections.persist.docker.plugins.module_utils._archive_read import ArchiveChanged, ArchiveCorrupt, PinnedArchive
from ansible_collections.persist.docker.plugins.module_utils._encryption import EncryptionError, load_identities
from ansible_collections.persist.docker.plugins.module_utils._errors import RestoreError
from ansible_collections.persist.docker.plugins.module_utils._member_safety import NotCanonicalOrder, SafetyChecker, UnsafeMember
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import VOLUME_MOUNT, tar_create_command
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarFormatError
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import RecordStream, TreeDifferences, compare
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import SUPPORTED_VERSIONS, DigestTooCostly

UNTOUCHED = " The target volume was not touched."
# What reading an archive (or a tar stream) raises that is the archive's fault.
READ_FAILURES = (UnsafeMember, ArchiveChanged, ArchiveCorrupt, TarFormatError, NotCanonicalOrder, DigestTooCostly, EncryptionError)


def digest_version(entry):
    """The tree digest version of the archive of listing ``entry`` (1 when the sidecar
    predates versions); RestoreError for one this version of the collection cannot compute."""
    version = entry["metadata"]["tree"].get("digest_version", 1)
    if version not in SUPPORTED_VERSIONS:
        raise RestoreError(
            "The sidecar of %s names tree digest version %r; this version of persist.docker computes versions %s. "
            "Use the version of the collection that wrote it." % (entry["path"], version, ", ".join(map(str, SUPPORTED_VERSIONS))),
            archive=entry["path"], check="read",
        )
    return version


def identities_for(entry, decryption):
    """The identities that decrypt the archive of listing ``entry`` (from the task's
    decrypt_identity or decrypt_identity_file: an _options.Decryption), or None when it is
    not encrypted.
    RestoreError (check ``decrypt``) when it is and none is given or usable."""
    recorded = encryption(entry["metadata"])
    if recorded is None:
        return None
    if not decryption.given:
        raise RestoreError(
            "The archive %s is encrypted (age, to %s); give decrypt_identity_file (or decrypt_identity) with a "
            "matching private key to read it. Nothing was done." % (entry["path"], ", ".join(recorded["recipients"]) or "no recipient"),
            archive=entry["path"], check="decrypt",
        )
    try:
        return load_identities(decryption.identity, decryption.identity_file)
    except EncryptionError as exc:
        raise RestoreError("%s Nothing was done." % exc.msg, archive=entry["path"], check="decrypt")


def open_archive(entry, identities=None):
    """The PinnedArchive of listing ``entry`` (a context manager), decrypted with
    ``identities`` when given; RestoreError when the file cannot be opened."""
    try:
        return PinnedArchive(entry["path"], entry["metadata"]["compression"], identities)
    except OSError as exc:
        raise RestoreError("The archive %s cannot be opened: %s." % (entry["path"], exc.strerror or exc), archive=entry["path"], check="read")


def refusal(path, exc, consequence):
    """The RestoreError for what reading an archive raised (or None if not ours to translate)."""
    if isinstance(exc, UnsafeMember):
        return RestoreError(
            "The archive %s is refused: member %s breaks a safety rule: %s.%s" % (path, exc.member, exc.rule, consequence),
            archive=path, member=exc.member, rule=exc.rule, check="safety",
        )
    if isinstance(exc, EncryptionError):
        return RestoreError("%s%s" % (exc.msg, consequence), archive=path, check="decrypt")
    if isinstance(exc, ArchiveChanged):
        return RestoreError(
            "The archive %s changed after it was verified (%s); nothing from the changed part was used.%s" % (path, exc, consequence),
            archive=path, check="sha256",
        )
    if isinstance(exc, (ArchiveCorrupt, TarFormatError, NotCanonicalOrder, DigestTooCostly)):
        return RestoreError("The archive %s is corrupt or truncated: %s.%s" % (path, exc, consequence), archive=path, check="read")
    return None


def verify_archive(archive, entry, allow_special, engine=None, target=None, consequence=UNTOUCHED):
    """Read the whole archive and check it against its sidecar; with ``engine`` and
    ``target``, compare the target's live tree with it in the same pass.

    Returns the TreeDifferences (empty without a target). Raises RestoreError whose
    ``check`` detail names the check that failed: ``safety`` (with ``member`` and ``rule``),
    ``read`` (the archive cannot be decompressed or parsed to its end), ``sha256`` (size or
    sha256 differ from the sidecar's) or ``tree_digest``; ``consequence`` ends its message."""
    path = entry["path"]
    version = digest_version(entry)
    # Decompressed in a thread ahead of the parsing and hashing here (a no-op restore: 13 %
    # faster on the benchmark's PostgreSQL data set); closed before returning, so that no
    # thread reads the file when the caller reads it again.
    chunks = archive.stream(ahead=True)
    records = RecordStream(chunks, SafetyChecker(allow_special), version=version)
    differences = TreeDifferences()
    try:
        with closing(chunks):
            if target is not None:
                live = engine.helpers.stream_output(tar_create_command(), {target: VOLUME_MOUNT}, "reading volume %s" % target, bulk=True)
                with closing(live):
                    compare(records, RecordStream(live, version=version), differences)
            else:
                for _record in records:
                    pass
    except READ_FAILURES as exc:
        raise refusal(path, exc, consequence)
    check_against_sidecar(archive, records.digest, entry, consequence)
    return differences


def check_against_sidecar(archive, digest, entry, consequence):
    """Raise RestoreError (check sha256 or tree_digest) unless the archive just read in full
    and its tree ``digest`` are what the sidecar of listing ``entry`` records."""
    path, metadata = entry["path"], entry["metadata"]
    recorded = metadata["archive"]
    if archive.sha256 != recorded.get("sha256") or archive.size != recorded.get("size"):
        raise RestoreError(
            "The archive %s does not match its sidecar (sha256 %s, %d bytes; the sidecar says sha256 %s, %s bytes): it "
            "is corrupt or was changed.%s" % (path, archive.sha256, archive.size, recorded.get("sha256"), recorded.get("size"), consequence),
            archive=path, check="sha256",
        )
    if digest.hexdigest() != metadata["tree"]["digest"]:
        raise RestoreError(
            "The archive %s passes its checksum but its tree digest differs from the sidecar's: the sidecar does not "
            "describe this archive.%s" % (path, consequence),
            archive=path, check="tree_digest",
        )
