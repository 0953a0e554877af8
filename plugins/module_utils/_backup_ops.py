# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The volume_backup operation: volume -> archive + sidecar, atomically, only when changed.

The data path is one pass: a helper's GNU tar stream is parsed (tree digest, counts) and,
in the same loop, compressed and hashed into a temporary file beside the final name. Only a
complete archive gets its final name, and only then is the sidecar written.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import os
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import List, Optional, Tuple

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import (
    FORMAT_VERSION,
    ORPHAN_SIDECAR_GRACE,
    dump_metadata,
    encryption,
    latest_complete,
    orphan_sidecars,
    render_name,
    scan_directory,
    sidecar_path,
    summarize,
)
from ansible_collections.persist.docker.plugins.module_utils._atomic import AtomicFile, stale_temporary_files
from ansible_collections.persist.docker.plugins.module_utils._compression import compressing_writer, require_library
from ansible_collections.persist.docker.plugins.module_utils._encryption import FORMAT, EncryptingWriter, EncryptionError, parse_recipients
from ansible_collections.persist.docker.plugins.module_utils._consistency import Consistency
from ansible_collections.persist.docker.plugins.module_utils._container_policy import READS
from ansible_collections.persist.docker.plugins.module_utils._errors import BackupError, HelperError, VolumeMissing
from ansible_collections.persist.docker.plugins.module_utils._options import ConsistencyOptions, Params, strings
from ansible_collections.persist.docker.plugins.module_utils._swap import check_source
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import (
    HOLDS_RESERVED,
    TAR_ENTRIES_CHANGED,
    VOLUME_MOUNT,
    fingerprint_command,
    tar_create_command,
)
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarFormatError, TarParser
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import CURRENT_VERSION, TreeDigest
from ansible_collections.persist.docker.plugins.module_utils._text import counted

TOOL_VERSION = "0.1.0"
# Temporary files of writers on other hosts are only removed when this old (seconds).
FOREIGN_TEMP_GRACE = 24 * 3600


@dataclass(frozen=True)
class BackupOptions:
    """The options of volume_backup (see the module's documentation)."""

    volume: str
    dest: str
    consistency: ConsistencyOptions
    name_template: str = "{volume}-{timestamp}"
    compression: str = "zstd"
    compression_level: Optional[int] = None
    threads: int = 0
    if_changed: bool = True
    exclude: Tuple[str, ...] = ()
    encrypt_recipients: Tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: Params) -> "BackupOptions":
        return cls(
            volume=params["volume"], dest=params["dest"], consistency=ConsistencyOptions.from_params(params),
            name_template=params["name_template"], compression=params["compression"],
            compression_level=params.get("compression_level"), threads=params.get("threads") or 0,
            if_changed=params["if_changed"], exclude=strings(params.get("exclude")),
            encrypt_recipients=tuple(text.strip() for text in strings(params.get("encrypt_recipients"))),
        )


class _HashingFile:
    """Counts and hashes the bytes that reach the archive file."""

    def __init__(self, target):
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.target.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self):
        pass


def fingerprint(engine, volume, when_clean=False):
    """A sha256 over every entry's metadata: equal fingerprints mean an unchanged tree. With
    ``when_clean``, None instead for a volume with reserved names at its root (staging trees,
    a journal), which _swap.check_source must look at first."""
    digest = hashlib.sha256()
    command = fingerprint_command(when_clean)
    try:
        with closing(engine.helpers.stream_output(command, {volume: VOLUME_MOUNT}, "listing volume %s" % volume)) as chunks:
            for chunk in chunks:
                digest.update(chunk)
    except HelperError as exc:
        if when_clean and exc.details.get("exit_code") == HOLDS_RESERVED:
            return None
        raise
    return digest.hexdigest()


def _prepare_dest(dest, check_mode):
    if os.path.isdir(dest):
        if not check_mode and not os.access(dest, os.W_OK | os.X_OK):
            raise BackupError("The backup directory %s is not writable by this user; fix its permissions or choose another dest." % dest, dest=dest)
        return []
    if os.path.lexists(dest):
        raise BackupError("dest %s exists but is not a directory; dest names the directory that holds the archives." % dest, dest=dest)
    return ["create backup directory %s" % dest]


def _comparable(latest, excludes, recipients):
    """Whether backup ``latest`` was taken as this one would be: the same excludes, the current
    digest version, the same encryption recipients (not after a key rotation)."""
    recorded = latest["metadata"]
    if recorded.get("excludes", []) != list(excludes) or recorded["tree"].get("digest_version", 1) != CURRENT_VERSION:
        return False
    return sorted((encryption(recorded) or {}).get("recipients") or []) == sorted(recipients)


def _same_fingerprint(latest, current_fingerprint):
    if latest["metadata"]["tree"].get("fingerprint") == current_fingerprint:
        return "its metadata fingerprint equals that of %s" % os.path.basename(latest["path"])
    return None


def _same_tree(latest, digest):
    if digest == latest["metadata"]["tree"]["digest"]:
        return "its tree digest equals that of %s" % os.path.basename(latest["path"])
    return None


def _same_live_tree(engine, volume, latest, excludes):
    """_same_tree for the volume as it is now, read by a helper of its own (check mode, which
    writes no archive to compare as it is written)."""
    try:
        live = engine.tree_digest(volume, excludes)
    except HelperError as exc:
        if exc.details.get("exit_code") == TAR_ENTRIES_CHANGED:
            return None  # it changed while it was read: not unchanged (the backup decides what that means)
        raise
    return _same_tree(latest, live.hexdigest())


class _SameTree(Exception):
    """The archive just written holds the tree of the latest backup: it is not kept."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def backup(engine, options, check_mode, now=None):
    """Back up volume ``options.volume`` into ``options.dest`` (a BackupOptions)."""
    volume = options.volume
    require_library(options.compression)
    if options.encrypt_recipients:
        try:
            parse_recipients(options.encrypt_recipients)  # refused before anything is locked or read
        except EncryptionError as exc:
            raise BackupError("%s Nothing was backed up." % exc.msg, **exc.details)
    described = engine.volume(volume)
    if described is None:
        raise VolumeMissing(
            "Volume %s does not exist, so there is nothing to back up. Check the name "
            "(persist.docker.volume_info lists the volumes)." % volume,
            volume_name=volume,
        )
    guard = Consistency(engine, [(volume, READS)], options.consistency, check_mode, "volume_backup")
    result = _unchanged_before_stopping(engine, described, options)
    if result is None:
        with guard, _volume_stream(engine, volume, options, check_mode) as stream:
            result = _backup_quiet(engine, described, options, check_mode, now, guard, stream)
            guard.result = result
    result.update(guard.report())
    result["transport"] = engine.helpers.transport()
    return result


def _unchanged_before_stopping(engine, described, options):
    """The result of a backup skipped before anything is locked or stopped, when the cheap
    check alone (the metadata fingerprint) shows the volume unchanged since its latest
    backup, and nothing else is to be done (no leftovers to remove); else None. So an
    unchanged volume whose containers would be stopped for the copy costs no downtime."""
    volume, dest = described["name"], options.dest
    if not options.if_changed or not os.path.isdir(dest):
        return None
    if stale_temporary_files(dest, FOREIGN_TEMP_GRACE) or orphan_sidecars(dest, ORPHAN_SIDECAR_GRACE):
        return None
    latest = latest_complete(scan_directory(dest), volume)
    if latest is None or not _comparable(latest, options.exclude, options.encrypt_recipients):
        return None
    reason = _same_fingerprint(latest, fingerprint(engine, volume))
    if reason is None:
        return None
    return dict(
        changed=False, volume=volume, archive=None, actions=[], warnings=[],
        skipped_reason="volume %s is unchanged since the latest backup: %s" % (volume, reason),
        latest=summarize(latest["path"], latest["metadata"]),
    )


@contextmanager
def _volume_stream(engine, volume, options, check_mode):
    """Yield ``stream()``, which returns the generator of the volume's tar stream for the
    archive. Where the transport is known already (a listing before the lock decided it), the
    helper that streams it starts now, held (HelperRunner.held_output), side by side with the
    listing that decides whether an archive is written at all; it reads nothing unless
    called, and is removed when the block ends. Otherwise it starts when called."""
    command = tar_create_command(options.exclude)
    volumes = {volume: VOLUME_MOUNT}
    what = "backing up volume %s" % volume
    if check_mode or not engine.helpers.transport_known():
        yield lambda: engine.helpers.stream_output(command, volumes, what, bulk=True)
        return
    with engine.helpers.held_output(command, volumes, what) as release:
        yield release


def _backup_quiet(engine, described, options, check_mode, now, guard, stream):
    """The backup proper, while the containers in the way are stopped or paused; ``stream``
    as _volume_stream yields it."""
    volume, dest = described["name"], options.dest
    actions: List[str] = []
    warnings: List[str] = []
    # One helper lists the metadata when the root holds no reserved names; otherwise
    # check_source looks at them first (it refuses a volume in the middle of a swap).
    current_fingerprint = fingerprint(engine, volume, when_clean=True)
    if current_fingerprint is None:
        warnings = check_source(engine, volume, guard, check_mode=check_mode, recovery=options.consistency.recovery, actions=actions,
                                operation="back up")
        current_fingerprint = fingerprint(engine, volume)
    dest_actions = _prepare_dest(dest, check_mode)
    actions.extend(dest_actions)
    created, archive_path = _archive_name(options, now)
    result = dict(changed=False, volume=volume, archive=None, skipped_reason=None, warnings=warnings)

    if not dest_actions:
        stale = stale_temporary_files(dest, FOREIGN_TEMP_GRACE) + orphan_sidecars(dest, ORPHAN_SIDECAR_GRACE)
        if stale:
            actions.append("remove %s of unfinished backups" % counted(len(stale), "leftover file"))
            result["removed_temporary_files"] = stale
            if not check_mode:
                for path in stale:
                    os.unlink(path)

    latest = latest_complete(scan_directory(dest), volume) if os.path.isdir(dest) else None
    if not (options.if_changed and latest is not None and _comparable(latest, options.exclude, options.encrypt_recipients)):
        latest = None
    if latest is not None:
        # The metadata fingerprint decides without reading a file. Where it differs, the tree
        # digest of the archive as it is written is compared with the latest backup's, and an
        # archive of the same tree is not kept: the volume is read once, not once to compare
        # and again to back up (check mode, which writes nothing, reads it to compare).
        reason = _same_fingerprint(latest, current_fingerprint)
        if reason is None and check_mode:
            reason = _same_live_tree(engine, volume, latest, options.exclude)
        if reason:
            return _unchanged(result, guard, actions, latest, reason)

    writing = "back up volume %s to %s" % (volume, archive_path)
    result.update(changed=True, actions=guard.actions + actions + [writing], archive=dict(path=archive_path, sidecar=sidecar_path(archive_path)))
    if check_mode:
        return result
    if not os.path.isdir(dest):
        try:
            os.makedirs(dest, 0o700)
        except OSError as exc:
            raise BackupError("Cannot create the backup directory %s: %s. Fix dest or its parent's permissions." % (dest, exc.strerror), dest=dest)
    for taken in (archive_path, sidecar_path(archive_path)):
        if os.path.lexists(taken):
            raise BackupError(
                "%s already exists; not overwriting it. Run again a second later or change "
                "name_template." % taken,
                archive=archive_path,
            )
    try:
        metadata = _write_archive(engine, described, options, guard, stream, archive_path=archive_path, created=created,
                                  tree_fingerprint=current_fingerprint, unless_same_as=latest)
    except _SameTree as same:
        return _unchanged(result, guard, actions, latest, same.reason)
    result["archive"] = summarize(archive_path, metadata)
    changed = metadata["consistency"].get("changed_while_read")
    if changed:
        warnings.append(
            "Entries of volume %s changed while the backup read them (containers: ignore, a live copy); the "
            "archive holds them as they were read, which may be torn: %s" % (volume, "; ".join(changed))
        )
    return result


def _unchanged(result, guard, actions, latest, reason):
    """``result`` of a backup that writes no archive: the volume holds the tree of backup
    ``latest`` (``reason`` says how that was found); ``actions`` were done all the same."""
    result.update(
        changed=bool(actions), actions=guard.actions + actions, archive=None,
        skipped_reason="volume %s is unchanged since the latest backup: %s" % (result["volume"], reason),
        latest=summarize(latest["path"], latest["metadata"]),
    )
    return result


def _archive_name(options, now):
    """(creation time, archive path). Backups serialized by the lock may end within one
    second: a name that is taken already moves on to the next second's (up to a few)."""
    for _attempt in range(3):
        created = now or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        try:
            name = render_name(options.name_template, options.volume, created, options.compression, encrypted=bool(options.encrypt_recipients))
        except ValueError as exc:
            raise BackupError(str(exc))
        archive_path = os.path.join(options.dest, name)
        if now or not any(os.path.lexists(path) for path in (archive_path, sidecar_path(archive_path))):
            break
        time.sleep(1.01 - time.time() % 1)
    return created, archive_path


def _write_archive(engine, described, options, guard, stream, *, archive_path, created, tree_fingerprint, unless_same_as):
    volume = described["name"]
    try:
        metadata = _stream_to_archive(engine, described, options, guard, stream, archive_path=archive_path, created=created,
                                      tree_fingerprint=tree_fingerprint, unless_same_as=unless_same_as)
    except FileExistsError as exc:
        raise BackupError(
            "%s appeared while the backup was written (another run?); it was not overwritten." % exc.filename,
            archive=archive_path,
        )
    except TarFormatError as exc:
        raise BackupError("The tar stream of volume %s could not be read back (%s); no archive was kept." % (volume, exc), volume_name=volume)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise BackupError(
                "The backup directory %s is full (no space left on device) while backing up volume %s; "
                "nothing was kept under a final name. Free space or choose another dest."
                % (os.path.dirname(archive_path), volume),
                volume_name=volume,
                dest=os.path.dirname(archive_path),
            )
        raise BackupError(
            "Writing the backup of volume %s to %s failed: %s; nothing was kept under a final name." % (volume, archive_path, exc),
            volume_name=volume,
        )
    return metadata


def _stream_to_archive(engine, described, options, guard, stream, *, archive_path, created, tree_fingerprint, unless_same_as):
    """Stream the volume (``stream()``, see _volume_stream) into a temporary archive; once
    complete, give its sidecar and then the archive their final names. Raises _SameTree
    instead (the temporary file is removed) when its tree digest is that of backup
    ``unless_same_as`` (None: the archive is kept)."""
    volume = described["name"]
    started = time.time()
    digest = TreeDigest()
    parser = TarParser(digest)
    with AtomicFile(archive_path) as target:
        hashing = _HashingFile(target)
        recipients = options.encrypt_recipients
        sink = EncryptingWriter(hashing, parse_recipients(recipients)) if recipients else None
        try:
            writer = compressing_writer(sink or hashing, options.compression, options.compression_level, options.threads)
            changed_while_read = None
            with closing(stream()) as chunks:
                try:
                    for chunk in chunks:
                        parser.feed(chunk)
                        writer.write(chunk)
                except HelperError as exc:
                    changed_while_read = _changed_while_read(exc, guard, volume)
            parser.close()
            writer.close()
        except BaseException:
            if sink is not None:
                sink.abort()  # the file is dropped; what failed first is what the user sees
            raise
        if sink is not None:
            sink.close()  # ends the age stream
        same = unless_same_as is not None and _same_tree(unless_same_as, digest.hexdigest())
        if same:
            raise _SameTree(same)
        metadata = _metadata(described, options, created=created, started=started, hashing=hashing, digest=digest, tree_fingerprint=tree_fingerprint)
        metadata["consistency"] = guard.record()
        metadata["transport"] = engine.helpers.transport()
        if changed_while_read:
            metadata["consistency"]["changed_while_read"] = changed_while_read
        guard.before_commit()
        # The sidecar gets its final name first: a run killed between the two leaves a
        # sidecar without an archive, which no listing shows and a later run removes,
        # never an archive that looks like a backup without its metadata.
        with AtomicFile(sidecar_path(archive_path), mode=0o600) as sidecar:
            sidecar.write(dump_metadata(metadata))
            sidecar.commit()
        try:
            target.commit()
        except BaseException:
            os.unlink(sidecar_path(archive_path))
            raise
    return metadata


def _changed_while_read(error, guard, volume):
    """The lines of GNU tar's report when the tar of a backup ended with exit code 1 (entries
    changed while they were read, the archive complete) during a live copy that the user
    accepted (containers: ignore); any other helper failure is raised again."""
    if error.details.get("exit_code") != TAR_ENTRIES_CHANGED:
        raise error
    report = error.details.get("helper_stderr") or "no error output"
    if not guard.live_copy():
        raise BackupError(
            "Volume %s changed while it was read (tar: %s), although no running container was left on "
            "it. Something else writes to it: a process on the host, or a container started meanwhile. "
            "Stop that writer and run the task again, or set containers: ignore to accept a live copy. "
            "No archive was kept." % (volume, report),
            volume_name=volume, helper_stderr=report,
        )
    return [line for line in report.splitlines() if line.strip()]


def _metadata(described, options, *, created, started, hashing, digest, tree_fingerprint):
    return {
        "format_version": FORMAT_VERSION,
        "tool": {"name": "persist.docker", "version": TOOL_VERSION},
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(time.time() - started, 3),
        "volume": {
            "name": described["name"],
            "driver": described["driver"],
            "driver_opts": described["driver_opts"],
            "labels": described["labels"],
        },
        "compression": options.compression,
        "encryption": {"format": FORMAT, "recipients": list(options.encrypt_recipients)} if options.encrypt_recipients else None,
        "excludes": list(options.exclude),
        "archive": {"size": hashing.size, "sha256": hashing.sha256.hexdigest()},
        "tree": {
            "digest": digest.hexdigest(),
            "entries": digest.entries,
            "bytes": digest.bytes,
            "fingerprint": tree_fingerprint,
            "digest_version": digest.version,
        },
    }
