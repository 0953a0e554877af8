# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Listing and verifying the copies on an off-host target: backup_info and backup_verify
with ``target``.

A listing marks each copy complete, incomplete (no sidecar) or damaged, as a local listing
does, and names the latest complete copy of each volume. A verification does the checks
that download nothing by default (SSH: size and sha256sum on the server; S3: size, the
sha256 stored with the object and the ETag recorded when it was sent); with the target's
``verify: full`` the copy is downloaded as a stream, never to disk, and read by the
restore's own verification (size and sha256, safety rules, tree digest).
"""

from __future__ import annotations

import time

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import masked_metadata, summarize
from ansible_collections.persist.docker.plugins.module_utils._archive_read import PinnedArchive
from ansible_collections.persist.docker.plugins.module_utils._archive_check import identities_for, verify_archive
from ansible_collections.persist.docker.plugins.module_utils._compression import require_library
from ansible_collections.persist.docker.plugins.module_utils._errors import DependencyError, OffsiteError, RestoreError, VerifyError
from ansible_collections.persist.docker.plugins.module_utils._offsite_backend import open_target, read_listing
from ansible_collections.persist.docker.plugins.module_utils._offsite_plan import of_volume
from ansible_collections.persist.docker.plugins.module_utils._offsite_target import check_target, masker_for
from ansible_collections.persist.docker.plugins.module_utils._verify_select import (
    fail,
    fail_read,
    new_verdict,
    select_archives,
    skip,
    summary,
)

_PRIVATE = ("sidecar_data", "mtime", "name")
NOT_OFF_HOST = "not available for off-host copies (restore the copy to a backup directory first)"


def _shown(entry):
    item = dict((key, value) for key, value in entry.items() if key not in _PRIVATE)
    if entry["metadata"] is not None:
        item.update(summarize(entry["path"], entry["metadata"]))
        item["metadata"] = masked_metadata(entry["metadata"])
    item.update(status=entry["status"], reason=entry["reason"])
    return item


def _listing(target, now):
    check_target(target)
    masker = masker_for([target])
    with open_target(target, masker) as backend:
        listing, _missing = read_listing(backend, now)
    return backend, listing


def offsite_info(target, volume=None, now=None):
    """backup_info with ``target`` (a target dict): the copies on the target (of ``volume``
    when given), newest first, and the latest complete one of each volume."""
    backend, listing = _listing(target, time.time() if now is None else now)
    backups, latest = [], {}
    for entry in listing.entries:
        if not of_volume(entry, volume):
            continue
        item = _shown(entry)
        backups.append(item)
        if entry["status"] == "complete" and entry["volume"] not in latest:
            latest[entry["volume"]] = item
    return dict(changed=False, target=backend.name, backups=backups, latest=latest,
                temporaries=[backend.url(name) for name in listing.temporaries], orphan_sidecars=[backend.url(name) for name in listing.orphans])


class _ReadOnce:
    def __init__(self, stream):
        self._stream = stream
        self._started = False

    def seek(self, position):
        if position != 0 or self._started:
            raise OSError("a download stream is read once")

    def read(self, size=-1):
        self._started = True
        return self._stream.read(size)

    def close(self):
        pass


def offsite_verify(options, check_mode):
    """backup_verify with ``target`` (an _options.VerifyOptions); see the module. Raises
    VerifyError (with the result in its details) when any copy failed."""
    if options.test_restore or options.probe:
        raise VerifyError("test_restore and probe are %s." % NOT_OFF_HOST)
    target = options.target
    full = target["verify"] == "full"
    try:
        check_target(target)
        with open_target(target, masker_for([target])) as backend:
            listing, _missing = read_listing(backend, time.time())
            chosen, warnings = select_archives(listing.entries, options.select, options.volume)
            if not chosen:
                raise VerifyError("There is no copy to verify on %s%s. Check the target (persist.docker.backup_info with target lists "
                                  "the copies)." % (backend.name, " (" + "; ".join(warnings) + ")" if warnings else ""), target=backend.name)
            verdicts = []
            for item in chosen:
                verdict = new_verdict(item, backend.name)
                if not item["refused"]:
                    _verify_copy(backend, item["entry"], full, options, verdict)
                verdicts.append(verdict)
                warnings.extend("%s: %s" % (verdict["path"], warning) for warning in verdict["warnings"])
    except OffsiteError as exc:
        raise VerifyError(exc.msg, **exc.details)
    failed = sum(1 for verdict in verdicts if verdict["status"] == "failed")
    result = dict(changed=False, target=backend.name, verdicts=verdicts, reaped_scratch_volumes=[], warnings=warnings,
                  totals=dict(verified=len(verdicts), passed=len(verdicts) - failed, failed=failed))
    message = summary(verdicts)
    if message:
        raise VerifyError(message, **result)
    return result


def _verify_copy(backend, entry, full, options, verdict):
    started = time.time()
    for check in ("test_restore", "probe"):
        skip(verdict, check, NOT_OFF_HOST)
    if full and backend.full_read_covers_remote_check:
        skip(verdict, "remote", "the full read checks the same")
    else:
        verdict["checks"]["remote"] = "not_run"
        try:
            what, problem = backend.remote_check(entry)
        except OffsiteError as exc:
            fail(verdict, exc.msg, remote="failed")
            return
        verdict["remote_checks"] = what
        if problem:
            fail(verdict, "%s: %s" % (entry["path"], problem), remote="failed")
            return
        verdict["checks"]["remote"] = "passed"
        if backend.kind == "ssh":
            verdict["checks"]["sha256"] = "passed"
    if not full:
        for check in ("tree_digest", "safety") + (() if backend.kind == "ssh" else ("sha256",)):
            skip(verdict, check, "verify is quick: no archive data was downloaded (set the target's verify: full)")
    elif _read_in_full(backend, entry, options, verdict):
        verdict["checks"].update(sha256="passed", tree_digest="passed", safety="passed")
    recorded = entry["metadata"]
    verdict.update(compression=recorded["compression"], size=recorded["archive"]["size"], sha256=recorded["archive"]["sha256"],
                   tree_digest=recorded["tree"]["digest"], entries=recorded["tree"]["entries"], bytes=recorded["tree"]["bytes"],
                   read_seconds=round(time.time() - started, 3))


def _read_in_full(backend, entry, options, verdict):
    """Stream the copy through verify_archive (decrypted with the task's identity when it is
    encrypted); True when it passed."""
    try:
        require_library(entry["metadata"]["compression"])
        identities = identities_for(entry, options.decryption)
        with backend.reader(entry) as stream:
            # The download is read once: the archive's one read is the verification.
            with PinnedArchive(entry["path"], entry["metadata"]["compression"], identities, raw=_ReadOnce(stream)) as archive:
                verify_archive(archive, entry, options.allow_special, consequence="")
    except RestoreError as exc:
        check = exc.details.get("check", "read")
        message = exc.msg
        if backend.transport_problem and check in ("read", "sha256"):
            message = "the copy could not be read to its end: %s" % backend.transport_problem
        fail_read(verdict, check, message)
        return False
    except (OffsiteError, DependencyError) as exc:
        fail(verdict, exc.msg, sha256="failed" if isinstance(exc, OffsiteError) else "not_run")
        return False
    except OSError as exc:
        fail(verdict, backend.transport_problem or "reading %s failed: %s" % (entry["path"], exc), sha256="failed")
        return False
    return True
