# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The backup_verify operation: prove that archives are restorable.

Each chosen archive is read in full by the restore's own verification (sha256 and size
against the sidecar, the safety rules on every member, the tree digest recomputed); that
needs no Docker engine. With ``test_restore`` it is then restored, through the restore's
staged path, into a new scratch volume whose tree digest must equal the archive's, and an
optional probe runs on that copy. Scratch volumes carry an owner label and are removed in
a ``finally``; those of killed runs are removed by the next run that test-restores.
"""

from __future__ import annotations

import binascii
import os
import time
from typing import Any, Dict

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import describe_archive, encryption, scan_directory
from ansible_collections.persist.docker.plugins.module_utils._archive_read import PinnedArchive
from ansible_collections.persist.docker.plugins.module_utils._archive_check import digest_version, identities_for, open_archive, verify_archive
from ansible_collections.persist.docker.plugins.module_utils._archive_restore import extract_and_swap
from ansible_collections.persist.docker.plugins.module_utils._compression import compression_of, require_library
from ansible_collections.persist.docker.plugins.module_utils._errors import (
    EngineError,
    HelperError,
    PersistError,
    RestoreError,
    VerifyError,
)
from ansible_collections.persist.docker.plugins.module_utils._helper import HELPER_OWNER_LABEL
from ansible_collections.persist.docker.plugins.module_utils._ownership import owner_is_gone, owner_token
from ansible_collections.persist.docker.plugins.module_utils._probe import run_probe
from ansible_collections.persist.docker.plugins.module_utils._storage import masked_options
from ansible_collections.persist.docker.plugins.module_utils._swap import NO_GUARD
from ansible_collections.persist.docker.plugins.module_utils._verify_select import (
    SCRATCH_LABEL,
    SCRATCH_PREFIX,
    fail,
    fail_read,
    new_verdict,
    scratch_driver,
    scratch_name,
    select_archives,
    single_archive,
    skip,
    summary,
)
from ansible_collections.persist.docker.plugins.module_utils._text import counted

# How much of a failed probe's output its verdict's reason quotes (the verdict has more).
REASON_OUTPUT_CHARS = 1000


def verify(engine, options, check_mode):
    """Verify the archives ``options`` (an _options.VerifyOptions with ``path``) name.

    ``engine`` is needed (and only given) when test restores run: with ``test_restore``
    outside check mode. Returns the result (its ``warnings`` for the user), or raises
    VerifyError (with the same result in its details) when any archive failed.
    """
    _check_options(options)
    chosen, warnings = _choose(options.path, options.volume, options.select)
    testing = options.test_restore and not check_mode
    # Counts under their own key: Ansible reserves a result's top-level "failed".
    result = dict(changed=False, verdicts=[], totals=dict(verified=0, passed=0, failed=0), reaped_scratch_volumes=[],
                  warnings=warnings)
    if testing:
        result["reaped_scratch_volumes"] = reap_scratch_volumes(engine, warnings)

    for item in chosen:
        verdict = new_verdict(item, options.path)
        if not item["refused"]:
            _verify_one(engine, item["entry"], options, check_mode, verdict)
        result["verdicts"].append(verdict)
        warnings.extend("%s: %s" % (verdict["path"], warning) for warning in verdict["warnings"])
    failed = sum(1 for verdict in result["verdicts"] if verdict["status"] == "failed")
    result["totals"].update(verified=len(result["verdicts"]), passed=len(result["verdicts"]) - failed, failed=failed)
    message = summary(result["verdicts"])
    if message:
        raise VerifyError(message, **result)
    return result


def _check_options(options):
    probe = options.probe
    if probe is None:
        return
    if not options.test_restore:
        raise VerifyError("A probe runs on the restored copy of an archive; set test_restore: true to run one, or drop probe.")
    if not probe["path"].startswith("/"):
        raise VerifyError("probe.path %r is not an absolute path; give where the restored copy is mounted in the probe container, "
                          "for example /var/lib/postgresql/data." % probe["path"])
    if probe["timeout"] <= 0:
        raise VerifyError("probe.timeout must be a positive number of seconds, not %d." % probe["timeout"])


def _choose(path, volume, select):
    """The items of select_archives for ``path`` (a directory or one archive), and warnings."""
    if os.path.isdir(path):
        try:
            entries = scan_directory(path)
        except OSError as exc:
            raise VerifyError("Cannot read the backup directory %s: %s" % (path, exc), path=path)
        chosen, warnings = select_archives(entries, select, volume)
        if not chosen:
            raise VerifyError(
                "There is no archive to verify in %s%s. Check path (persist.docker.backup_info lists the backups)."
                % (path, " (" + "; ".join(warnings) + ")" if warnings else ""),
                path=path,
            )
        return chosen, warnings
    if not os.path.exists(path):
        raise VerifyError("%s does not exist. Give an archive written by persist.docker.volume_backup, or a backup directory." % path, path=path)
    if compression_of(path) is None:
        raise VerifyError(
            "%s is not an archive of persist.docker.volume_backup (those end in .tar.zst, .tar.gz or .tar). "
            "Give the archive itself (its sidecar beside it), or a backup directory." % path,
            path=path,
        )
    return [single_archive(describe_archive(path), volume)], []


def reap_scratch_volumes(engine, warnings):
    """Remove the scratch volumes of test restores whose run is gone (killed); only those
    of this host, since only this host can tell whether their run still goes on."""
    engine.helpers.prepare()  # first the run's abandoned helpers and probes, which may hold them
    reaped = []
    for volume in engine.volumes(["%s=true" % SCRATCH_LABEL]):
        if not volume["name"].startswith(SCRATCH_PREFIX) or not owner_is_gone(volume["labels"].get(HELPER_OWNER_LABEL)):
            continue
        try:
            engine.remove(volume["name"])
        except EngineError as exc:
            warnings.append("The scratch volume %s of a killed run could not be removed: %s" % (volume["name"], exc.msg))
            continue
        reaped.append(volume["name"])
    return reaped


def _verify_one(engine, entry, options, check_mode, verdict):
    started = time.time()
    if encryption(entry["metadata"]) is not None and not options.decryption.given:
        _checksum_only(entry, verdict, started)
        return
    try:
        archive = open_archive(entry, identities_for(entry, options.decryption))
    except RestoreError as exc:
        fail_read(verdict, exc.details.get("check", "read"), exc.msg)
        return
    with archive:
        if _read(archive, entry, options.allow_special, verdict, started):
            if not options.test_restore:
                skip(verdict, "test_restore", "test_restore is false")
                skip(verdict, "probe", "test_restore is false")
            elif check_mode:
                skip(verdict, "test_restore", "check mode")
                skip(verdict, "probe", "check mode")
            else:
                _test_restore(engine, archive, entry, options, verdict)


def _read(archive, entry, allow_special, verdict, started):
    """Read the whole archive as a restore does before it writes anything; True when it
    passed (the verdict then holds what the sidecar records)."""
    metadata = entry["metadata"]
    try:
        require_library(metadata["compression"])
        verify_archive(archive, entry, allow_special, consequence="")
    except RestoreError as exc:
        fail_read(verdict, exc.details.get("check", "read"), exc.msg)
        for detail in ("member", "rule"):
            if detail in exc.details:
                verdict[detail] = exc.details[detail]
        return False
    except OSError as exc:  # not a damaged archive: one this user cannot open, a failing disk
        fail_read(verdict, "read", "The archive %s cannot be read: %s. Check its permissions and the disk." % (entry["path"], exc))
        return False
    verdict["checks"].update(sha256="passed", tree_digest="passed", safety="passed")
    tree = metadata["tree"]
    verdict.update(
        compression=metadata["compression"],
        size=metadata["archive"]["size"],
        sha256=metadata["archive"]["sha256"],
        tree_digest=tree["digest"],
        entries=tree["entries"],
        bytes=tree["bytes"],
        read_seconds=round(time.time() - started, 3),
    )
    return True


def _checksum_only(entry, verdict, started):
    """What can be verified of an encrypted archive without its identity: the file's size
    and sha256 against the sidecar. The rest is skipped, saying why."""
    why = "the archive is encrypted and no decrypt_identity or decrypt_identity_file was given"
    recorded = entry["metadata"]["archive"]
    try:
        with PinnedArchive(entry["path"], entry["metadata"]["compression"]) as archive:
            archive.hash_file()
    except OSError as exc:
        fail(verdict, "The archive %s cannot be read: %s. Check its permissions and the disk." % (entry["path"], exc), sha256="failed")
        return
    verdict.update(size=archive.size, sha256=archive.sha256, read_seconds=round(time.time() - started, 3))
    if (archive.sha256, archive.size) != (recorded.get("sha256"), recorded.get("size")):
        fail(verdict, "The archive %s does not match its sidecar (sha256 %s, %d bytes; the sidecar says sha256 %s, %s bytes): it is "
             "corrupt or was changed." % (entry["path"], archive.sha256, archive.size, recorded.get("sha256"), recorded.get("size")),
             sha256="failed")
        return
    verdict["checks"]["sha256"] = "passed"
    for check in ("tree_digest", "safety", "test_restore", "probe"):
        skip(verdict, check, why)


def _test_restore(engine, archive, entry, options, verdict):
    recorded = entry["metadata"]["volume"]
    driver, driver_opts, note = scratch_driver(recorded)
    name = scratch_name(recorded.get("name"), binascii.hexlify(os.urandom(6)).decode("ascii"))
    details: Dict[str, Any] = {"scratch_volume": name, "driver": driver, "driver_opts": masked_options(driver_opts), "tree_digest": None}
    verdict["test_restore"] = details
    if note:
        verdict["warnings"].append(note)
    started = time.time()
    try:
        engine.create(name, driver, driver_opts, {SCRATCH_LABEL: "true", HELPER_OWNER_LABEL: owner_token()})
    except EngineError as exc:
        fail(verdict, "the scratch volume for the test restore could not be created: %s" % exc.msg, test_restore="failed")
        return
    try:
        if _restore_into(engine, archive, entry, name, options.allow_special, verdict, details):
            _probe(engine, options, name, verdict)
    finally:
        try:
            engine.remove(name)
        except PersistError as exc:
            verdict["warnings"].append(
                "the scratch volume %s could not be removed (%s); the next test restore on this host removes it" % (name, exc.msg))
        details["duration_seconds"] = round(time.time() - started, 3)


def _restore_into(engine, archive, entry, name, allow_special, verdict, details):
    """Restore into the new scratch volume and compare its tree digest; True when equal."""
    try:
        usage = engine.usage(name)
        if not usage["empty"]:
            fail(verdict, "the new scratch volume %s already holds %s: driver %s with options %s gives storage that is in use, "
                 "so nothing was restored into it" % (name, counted(usage["entries"], "entry", "entries"), details["driver"], details["driver_opts"]),
                 test_restore="failed")
            return False
        extract_and_swap(engine, archive, entry, name, "replace", NO_GUARD, allow_special=allow_special)
        details["tree_digest"] = engine.tree_digest(name, version=digest_version(entry)).hexdigest()
    except PersistError as exc:
        fail(verdict, "the test restore into scratch volume %s failed: %s" % (name, exc.msg), test_restore="failed")
        return False
    expected = entry["metadata"]["tree"]["digest"]
    if details["tree_digest"] != expected:
        fail(verdict, "the copy restored into scratch volume %s has tree digest %s, not the archive's %s: restoring this archive "
             "does not give back the tree that was backed up" % (name, details["tree_digest"], expected), test_restore="failed")
        return False
    verdict["checks"]["test_restore"] = "passed"
    return True


def _probe(engine, options, name, verdict):
    probe = options.probe
    if not probe:
        skip(verdict, "probe", "no probe given")
        return
    image = probe.get("image") or options.helper.image
    try:
        outcome = run_probe(engine.api, probe, image, options.helper.pull, name)
    except HelperError as exc:
        fail(verdict, "the probe could not run: %s" % exc.msg, probe="failed")
        return
    verdict["probe"] = outcome
    ending = outcome["output"].strip()[-REASON_OUTPUT_CHARS:] or "(no output)"
    if outcome["timed_out"]:
        fail(verdict, "probe timed out after %d s and was killed; its output ends: %s" % (probe["timeout"], ending), probe="failed")
    elif outcome["exit_code"] != 0:
        fail(verdict, "the probe (image %s) exited with code %s on the restored copy; its output ends: %s" % (image, outcome["exit_code"], ending),
             probe="failed")
    else:
        verdict["checks"]["probe"] = "passed"
