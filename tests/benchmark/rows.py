# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rows of the benchmark: what each one runs, on which volume, and what it must give.

Five kinds of rows run on the same source volume in the same invocation:

* ``recipe``: the commands of the article users copy ("Backing Up Volumes"): a helper
  container running ``tar czf`` into a bind-mounted host directory, ``tar xzf`` back,
  ``cp -av`` between two mounted volumes.
* ``limit``: what this machine can do at best with the same tools on the host, on the
  volumes' Mountpoints: ``tar | zstd -T0 -3`` into a file, ``zstd -dc | tar -x`` back,
  ``cp -a`` from Mountpoint to Mountpoint.
* ``verified``: the limit's tools on the host plus only the work the modules' guarantees
  require on top: a sha256 of every byte of the stream (and of the archive), the restored or
  copied tree extracted into a staging directory, written out, read back and checked before
  it is moved into place. What a verified backup, restore or copy costs on this machine at
  best, whoever writes it.
* ``ours``: the modules, each run as a user runs it: ``ansible localhost -m
  persist.docker.MODULE -a JSON``, timed as a whole command.
* ``floor``: as many bytes as the data set holds moved out of and into a helper container
  through the engine's API, with no work done on them (floor.py): the part of our rows that
  the design (all data through the API) fixes.

The downtime rows (``*-stop``) back up and restore a volume that a running service uses,
stopping it for the work, and also give the seconds the service was down (service.py). They
apply to the postgres data set only (a row declares its data sets; the others show it "n/a").

Each row's ``run`` is the timed part; whatever it needs first (an archive to restore, an
empty target volume) is prepared untimed, by the same code when another row makes it.
"""

from __future__ import annotations

import os
import shlex
import sys

import measure
import service
from session import log

# The data sets with a service that the downtime rows can stop (the uploads have none).
WITH_SERVICE = ("postgres",)
RECIPE_IMAGE_NOTE = "The recipe's containers run the local Debian image instead of the article's ubuntu (no registry here)."


class RowFailed(Exception):
    """A row's command failed or gave a result that makes its number meaningless."""


class Outcome:
    """One timed run of one row."""

    def __init__(self, measured, archive_bytes=None, note=None, transport=None, down_seconds=None):
        self.wall_seconds = measured.wall_seconds
        self.peak_rss_bytes = measured.peak_rss_bytes
        self.worker_seconds = measured.worker_seconds
        self.archive_bytes = archive_bytes
        self.note = note
        self.transport = transport
        self.down_seconds = down_seconds


class Row:
    def __init__(self, name, kind, operation, run, description, datasets=None):
        self.name = name
        self.kind = kind  # recipe, limit, verified, ours or floor
        # backup, restore, copy, rebackup, noop-restore, backup-stop, restore-stop, overhead, stream-out, stream-in
        self.operation = operation
        self.run = run
        self.description = description
        self.datasets = datasets  # the data sets the row applies to; None: every one

    def applies_to(self, dataset):
        return self.datasets is None or dataset in self.datasets

    def not_applicable(self):
        """The status of the row on a data set it does not apply to."""
        return "n/a (%s only)" % ", ".join(self.datasets)


class Context:
    """One data set at one size: its source volume and what the rows of one repetition left."""

    def __init__(self, session, dataset, source_volume, details):
        self.session = session
        self.dataset = dataset
        self.source = source_volume
        self.details = details
        self.source_bytes = details["bytes"]
        self.source_mountpoint = session.mountpoint(source_volume)
        self.repetition = 0
        self.live = None
        self.filled = []  # volumes rows filled, removed when the data set is done (see done_with)
        self.reset()

    def reset(self):
        self.recipe_archive = None
        self.limit_archive = None
        self.ours_dest = None
        self.ours_archive = None
        self.restored_volume = None
        self.tree_digest = None
        self.verified_archive = None  # (path, sha256 of the archive, sha256 of the tar stream in it)
        self.live_recipe_archive = None
        self.live_ours_archive = None

    def service(self):
        """The running PostgreSQL of the downtime rows, on a copy of the source (started on first use,
        kept for every repetition)."""
        if self.live is None:
            self.live = service.LiveService(self.session, self.dataset, self.source_mountpoint, self.details["pgbench_scale"])
        return self.live

    def close(self):
        """Remove what outlives a repetition: the running service and its volume, and the
        volumes the rows filled."""
        if self.live is not None:
            self.live.remove()
            self.live = None
        self._remove_filled()

    def done_with(self, volume):
        """A volume a row filled and needs no more. It is removed when the data set is done, not
        now: on a file system that creates inodes slowly for a while after many were deleted
        (ext4 without a journal, as here: see "The machine's disk" in docs/benchmark.md), removing
        a tree of many files would slow down whichever row comes next."""
        self.filled.append(volume)

    def _remove_filled(self):
        for volume in self.filled:
            self.session.remove_volume(volume)
        self.filled = []

    def directory(self, purpose):
        """A new empty directory in the work area, for this repetition."""
        path = os.path.join(self.session.workdir, self.dataset, "rep%d" % self.repetition, purpose)
        os.makedirs(path)
        return path

    def empty_volume(self, purpose):
        """A new empty volume. When the volumes' file system has no room left for two more copies
        of the data set (and 1 GiB), the filled volumes are removed first, and the log says so."""
        volume = self.session.create_volume("%s-%s-%d" % (self.dataset, purpose, self.repetition))
        room = os.statvfs(self.session.mountpoint(volume))
        if self.filled and room.f_bavail * room.f_frsize < 2 * self.source_bytes + (1 << 30):
            log("%s: removing %d filled volumes for room; the rows right after may be slower (see docs/benchmark.md)"
                % (self.dataset, len(self.filled)))
            self._remove_filled()
        return volume


def _shell(context, pipeline):
    measured = measure.timed(["/bin/bash", "-o", "pipefail", "-c", pipeline], measure.tool_process)
    if measured.returncode != 0:
        raise RowFailed("%s exited %s: %s" % (pipeline, measured.returncode, measured.stderr[-2000:]))
    return measured


def _recipe_container(context, purpose, mounts, command, stopped=None):
    """``docker run --rm`` of the article, timed; the tools inside are found through the
    container's first process (a child of the engine, not of the docker CLI). With ``stopped``
    (a container's name), the recipe around it is timed too: ``docker stop``, the run, ``docker start``."""
    session = context.session
    name = session.prefix + "recipe-%s-%s" % (context.dataset, purpose)
    argv = ["docker", "run", "--rm", "--name", name, "--network", "none"]
    for source, target in mounts:
        argv += ["-v", "%s:%s" % (source, target)]
    argv += [session.helper_image] + command
    if stopped is not None:
        argv = ["/bin/bash", "-c", 'docker stop "$1" >/dev/null && "${@:2}" && docker start "$1" >/dev/null', "recipe", stopped] + argv
    measured = measure.timed(argv, measure.tool_process, extra_roots=session.container_pid_finder(name))
    if measured.returncode != 0:
        raise RowFailed("%s exited %s: %s" % (" ".join(argv), measured.returncode, measured.stderr[-2000:]))
    return measured


def _with_downtime(context, command):
    """``command()`` (a timed run that stops and starts the service), and the seconds the service was down."""
    try:
        return context.service().downtime(command)
    except service.ServiceFailed as error:
        raise RowFailed(str(error))


def _module(context, module, args, expect_changed):
    measured, result = measure.run_module(module, args)
    if result.get("failed"):
        raise RowFailed("%s failed: %s" % (module, result.get("msg")))
    if bool(result.get("changed")) != expect_changed:
        raise RowFailed("%s reported changed=%s, expected %s: %s"
                        % (module, result.get("changed"), expect_changed, result.get("actions") or result.get("skipped_reason")))
    return measured, result


# ---- recipe -------------------------------------------------------------------------------

def recipe_backup(context):
    backup_dir = context.directory("recipe-backup")
    measured = _recipe_container(
        context, "backup", [(context.source, "/data"), (backup_dir, "/backup")],
        ["tar", "czf", "/backup/backup.tar.gz", "-C", "/data", "."],
    )
    context.recipe_archive = os.path.join(backup_dir, "backup.tar.gz")
    return Outcome(measured, archive_bytes=os.path.getsize(context.recipe_archive))


def recipe_restore(context):
    if context.recipe_archive is None:
        recipe_backup(context)
    target = context.empty_volume("recipe-restore")
    try:
        measured = _recipe_container(
            context, "restore", [(target, "/data"), (os.path.dirname(context.recipe_archive), "/backup")],
            ["sh", "-c", "tar xzf /backup/backup.tar.gz -C /data && sync"],
        )
    finally:
        context.done_with(target)
    return Outcome(measured)


def recipe_copy(context):
    target = context.empty_volume("recipe-copy")
    try:
        measured = _recipe_container(
            context, "copy", [(context.source, "/from"), (target, "/to")], ["sh", "-c", "cp -av /from/. /to/ && sync"],
        )
    finally:
        context.done_with(target)
    return Outcome(measured)


# ---- limit --------------------------------------------------------------------------------

def limit_backup(context):
    archive = os.path.join(context.directory("limit-backup"), "backup.tar.zst")
    measured = _shell(context, "tar -cf - -C %s . | zstd -q -T0 -3 >%s"
                      % (shlex.quote(context.source_mountpoint), shlex.quote(archive)))
    context.limit_archive = archive
    return Outcome(measured, archive_bytes=os.path.getsize(archive))


def limit_restore(context):
    if context.limit_archive is None:
        limit_backup(context)
    target = context.empty_volume("limit-restore")
    try:
        measured = _shell(context, "zstd -q -dc %s | tar -x -C %s && sync"
                          % (shlex.quote(context.limit_archive), shlex.quote(context.session.mountpoint(target))))
    finally:
        context.done_with(target)
    return Outcome(measured)


def limit_copy(context):
    target = context.empty_volume("limit-copy")
    try:
        measured = _shell(context, "cp -a %s/. %s/ && sync"
                          % (shlex.quote(context.source_mountpoint), shlex.quote(context.session.mountpoint(target))))
    finally:
        context.done_with(target)
    return Outcome(measured)


# ---- verified limit: the limit's tools plus only the work the guarantees require -----------
#
# Each tar stream is written with --sort=name, so that the stream of a tree and the stream of
# its restored or copied image are equal byte for byte when the trees are (names, types, modes,
# owners, sizes, mtimes, link targets, hard links, contents): the read-back's sha256 then checks
# what the modules' tree digest checks. The extraction goes into a staging directory in the new
# volume, which is moved into place only after the checks, as the modules' swap does.

def _hashrelay(context, mode, word):
    """Shell: hashrelay.py in ``mode`` with ``word`` (a shell word: a path or digest quoted by the caller)."""
    script = os.path.join(context.session.repo_root, "tests", "benchmark", "hashrelay.py")
    return "%s %s %s %s" % (shlex.quote(sys.executable), shlex.quote(script), mode, word)


def _verified_shell(context, script):
    measured = measure.timed(["/bin/bash", "-o", "pipefail", "-e", "-c", script], measure.verified_process)
    if measured.returncode != 0:
        raise RowFailed("%s exited %s: %s" % (script, measured.returncode, measured.stderr[-2000:]))
    return measured


def _read_back_and_swap(staging, target, check):
    """Shell: write the staged tree out, read it back through ``check`` (which fails unless its
    tar stream is the expected one), move it into place and make the move durable."""
    staging, target = shlex.quote(staging), shlex.quote(target)
    return ("sync -f %s; tar --sort=name -cf - -C %s . | %s; "
            "find %s -mindepth 1 -maxdepth 1 -exec mv -t %s -- {} +; rmdir %s; sync -f %s"
            % (target, staging, check, staging, target, staging, target))


def verified_backup(context):
    """tar | sha256 of the stream (the tree digest's hashing) | zstd | sha256 of the archive >
    FILE, then fsync the file (coreutils sync FILE)."""
    directory = context.directory("verified-backup")
    archive = os.path.join(directory, "backup.tar.zst")
    stream_digest, archive_digest = os.path.join(directory, "stream.sha256"), os.path.join(directory, "archive.sha256")
    measured = _verified_shell(context, "tar --sort=name -cf - -C %s . | %s | zstd -q -T0 -3 | %s >%s; sync %s" % (
        shlex.quote(context.source_mountpoint), _hashrelay(context, "relay", shlex.quote(stream_digest)),
        _hashrelay(context, "relay", shlex.quote(archive_digest)), shlex.quote(archive), shlex.quote(archive)))
    with open(stream_digest) as stream, open(archive_digest) as whole:
        context.verified_archive = (archive, whole.read().strip(), stream.read().strip())
    return Outcome(measured, archive_bytes=os.path.getsize(archive))


def verified_restore(context):
    """The archive's sha256 checked while it is decompressed and extracted into a staging
    directory; then the staged tree written out, read back and its stream's sha256 checked
    against the backup's, and the swap."""
    if context.verified_archive is None:
        verified_backup(context)
    archive, archive_sha256, stream_sha256 = context.verified_archive
    target = context.empty_volume("verified-restore")
    mountpoint = context.session.mountpoint(target)
    staging = os.path.join(mountpoint, ".staging")
    try:
        measured = _verified_shell(context, "mkdir %s; %s <%s | zstd -q -dc | tar -x -C %s; %s" % (
            shlex.quote(staging), _hashrelay(context, "relay-check", archive_sha256), shlex.quote(archive),
            shlex.quote(staging), _read_back_and_swap(staging, mountpoint, _hashrelay(context, "check", stream_sha256))))
    finally:
        context.done_with(target)
    return Outcome(measured)


def verified_copy(context):
    """tar | sha256 of the stream | tar -x into a staging directory; then the staged tree
    written out, read back and its stream's sha256 checked against the source stream's, and
    the swap."""
    target = context.empty_volume("verified-copy")
    mountpoint = context.session.mountpoint(target)
    staging = os.path.join(mountpoint, ".staging")
    stream_digest = shlex.quote(os.path.join(context.directory("verified-copy"), "stream.sha256"))
    try:
        measured = _verified_shell(context, "mkdir %s; tar --sort=name -cf - -C %s . | %s | tar -x -C %s; %s" % (
            shlex.quote(staging), shlex.quote(context.source_mountpoint), _hashrelay(context, "relay", stream_digest),
            shlex.quote(staging),
            _read_back_and_swap(staging, mountpoint, _hashrelay(context, "check", '"$(cat %s)"' % stream_digest))))
    finally:
        context.done_with(target)
    return Outcome(measured)


# ---- ours ---------------------------------------------------------------------------------

def ours_backup(context):
    dest = context.directory("ours-backup")
    measured, result = _module(context, "volume_backup", dict(volume=context.source, dest=dest, if_changed=False), True)
    context.ours_dest = dest
    context.ours_archive = result["archive"]["path"]
    context.tree_digest = result["archive"].get("tree_digest")
    return Outcome(measured, archive_bytes=result["archive"]["size"], transport=result.get("transport"))


_AGE_RECIPIENT = []


def ours_encrypted_backup(context):
    """The same backup, encrypted (age) as it is written: what encryption at rest costs."""
    if not _AGE_RECIPIENT:
        from pyrage import x25519

        _AGE_RECIPIENT.append(str(x25519.Identity.generate().to_public()))
    dest = context.directory("ours-backup-age")
    args = dict(volume=context.source, dest=dest, if_changed=False, encrypt_recipients=_AGE_RECIPIENT)
    measured, result = _module(context, "volume_backup", args, True)
    return Outcome(measured, archive_bytes=result["archive"]["size"], transport=result.get("transport"))


def ours_rebackup(context):
    if context.ours_dest is None:
        ours_backup(context)
    measured, _result = _module(context, "volume_backup", dict(volume=context.source, dest=context.ours_dest, if_changed=True), False)
    return Outcome(measured)


def ours_restore(context):
    if context.ours_archive is None:
        ours_backup(context)
    if context.restored_volume is not None:
        context.done_with(context.restored_volume)
    target = context.empty_volume("ours-restore")
    context.restored_volume = target
    measured, result = _module(context, "volume_restore", dict(volume=target, src=context.ours_archive, create=True), True)
    return Outcome(measured, transport=result.get("transport"))


def ours_noop_restore(context):
    if context.restored_volume is None:
        ours_restore(context)
    measured, result = _module(
        context, "volume_restore", dict(volume=context.restored_volume, src=context.ours_archive, restore_when="different"), False,
    )
    return Outcome(measured, transport=result.get("transport"))


def ours_copy(context):
    target = context.empty_volume("ours-copy")
    try:
        measured, result = _module(context, "volume_copy", dict(source=context.source, dest=target), True)
    finally:
        context.done_with(target)
    return Outcome(measured, transport=result.get("transport"))


# ---- downtime: a running service stopped for the work --------------------------------------

def recipe_backup_stop(context):
    live = context.service()
    backup_dir = context.directory("recipe-backup-stop")
    measured, down = _with_downtime(context, lambda: _recipe_container(
        context, "backup-stop", [(live.volume, "/data"), (backup_dir, "/backup")],
        ["tar", "czf", "/backup/backup.tar.gz", "-C", "/data", "."], stopped=live.container.name,
    ))
    context.live_recipe_archive = os.path.join(backup_dir, "backup.tar.gz")
    return Outcome(measured, archive_bytes=os.path.getsize(context.live_recipe_archive), down_seconds=down)


def recipe_restore_stop(context):
    if context.live_recipe_archive is None:
        recipe_backup_stop(context)
    live = context.service()
    # The recipe's restore into a volume in use: emptied first, in the same container.
    measured, down = _with_downtime(context, lambda: _recipe_container(
        context, "restore-stop", [(live.volume, "/data"), (os.path.dirname(context.live_recipe_archive), "/backup")],
        ["sh", "-c", "find /data -mindepth 1 -delete && tar xzf /backup/backup.tar.gz -C /data && sync"],
        stopped=live.container.name,
    ))
    return Outcome(measured, down_seconds=down)


def ours_backup_stop(context):
    live = context.service()
    dest = context.directory("ours-backup-stop")
    args = dict(volume=live.volume, dest=dest, if_changed=False, containers="stop")
    (measured, result), down = _with_downtime(context, lambda: _module(context, "volume_backup", args, True))
    context.live_ours_archive = result["archive"]["path"]
    return Outcome(measured, archive_bytes=result["archive"]["size"], transport=result.get("transport"), down_seconds=down)


def ours_restore_stop(context):
    if context.live_ours_archive is None:
        ours_backup_stop(context)
    live = context.service()
    args = dict(volume=live.volume, src=context.live_ours_archive, restore_when="always", containers="stop")
    (measured, result), down = _with_downtime(context, lambda: _module(context, "volume_restore", args, True))
    return Outcome(measured, transport=result.get("transport"), down_seconds=down)


def _floor(context, direction, transport="api"):
    script = os.path.join(context.session.repo_root, "tests", "benchmark", "floor.py")
    measured = measure.timed([sys.executable, script, direction, str(context.source_bytes), transport], measure.floor_process)
    if measured.returncode != 0:
        raise RowFailed("floor.py %s exited %s: %s" % (direction, measured.returncode, measured.stderr[-2000:]))
    return Outcome(measured, transport=transport)


def floor_stream_out(context):
    return _floor(context, "out")


def floor_stream_in(context):
    return _floor(context, "in")


def floor_fifo_out(context):
    return _floor(context, "out", "fifo")


def floor_fifo_in(context):
    return _floor(context, "in", "fifo")


def ansible_overhead(context):
    """A module that does next to nothing: what any task costs before it moves a byte."""
    measured, result = measure.run_module("volume_info", dict(name=context.session.prefix + "absent"))
    if result.get("failed"):
        raise RowFailed("volume_info failed: %s" % result.get("msg"))
    return Outcome(measured)


ROWS = [
    Row("recipe-backup", "recipe", "backup", recipe_backup,
        "docker run --rm -v VOL:/data -v DIR:/backup IMAGE tar czf /backup/backup.tar.gz -C /data ."),
    Row("limit-backup", "limit", "backup", limit_backup,
        "tar -cf - -C MOUNTPOINT . | zstd -T0 -3 >FILE (host)"),
    Row("verified-backup", "verified", "backup", verified_backup,
        "tar --sort=name | sha256 relay | zstd -T0 -3 | sha256 relay >FILE, sync FILE (host)"),
    Row("ours-backup", "ours", "backup", ours_backup,
        "volume_backup if_changed=false, into an empty dest"),
    Row("ours-backup-age", "ours", "encrypted-backup", ours_encrypted_backup,
        "volume_backup if_changed=false with encrypt_recipients (one age key), into an empty dest"),
    Row("ours-rebackup", "ours", "rebackup", ours_rebackup,
        "volume_backup if_changed=true on the same dest, volume unchanged (must write nothing)"),
    Row("recipe-restore", "recipe", "restore", recipe_restore,
        "docker run --rm -v NEW:/data -v DIR:/backup IMAGE tar xzf /backup/backup.tar.gz -C /data, then sync"),
    Row("limit-restore", "limit", "restore", limit_restore,
        "zstd -dc FILE | tar -x -C NEW_MOUNTPOINT, then sync (host)"),
    Row("verified-restore", "verified", "restore", verified_restore,
        "sha256 check <FILE | zstd -dc | tar -x into staging, sync, read-back sha256 check, swap (host)"),
    Row("ours-restore", "ours", "restore", ours_restore,
        "volume_restore create=true into an empty volume"),
    Row("ours-noop-restore", "ours", "noop-restore", ours_noop_restore,
        "volume_restore restore_when=different, target already equal (must change nothing)"),
    Row("recipe-copy", "recipe", "copy", recipe_copy,
        "docker run --rm -v VOL:/from -v NEW:/to IMAGE cp -av /from/. /to/, then sync"),
    Row("limit-copy", "limit", "copy", limit_copy,
        "cp -a MOUNTPOINT/. NEW_MOUNTPOINT/, then sync (host)"),
    Row("verified-copy", "verified", "copy", verified_copy,
        "tar --sort=name | sha256 relay | tar -x into staging, sync, read-back sha256 check, swap (host)"),
    Row("ours-copy", "ours", "copy", ours_copy,
        "volume_copy into an empty volume"),
    Row("recipe-backup-stop", "recipe", "backup-stop", recipe_backup_stop,
        "docker stop C; docker run --rm -v LIVE:/data -v DIR:/backup IMAGE tar czf ...; docker start C", datasets=WITH_SERVICE),
    Row("ours-backup-stop", "ours", "backup-stop", ours_backup_stop,
        "volume_backup containers=stop if_changed=false of LIVE, the volume C runs on", datasets=WITH_SERVICE),
    Row("recipe-restore-stop", "recipe", "restore-stop", recipe_restore_stop,
        "docker stop C; docker run --rm ... find /data -mindepth 1 -delete && tar xzf ... && sync; docker start C",
        datasets=WITH_SERVICE),
    Row("ours-restore-stop", "ours", "restore-stop", ours_restore_stop,
        "volume_restore containers=stop restore_when=always into LIVE, of ours-backup-stop's archive", datasets=WITH_SERVICE),
    Row("floor-stream-out", "floor", "stream-out", floor_stream_out,
        "as many zero bytes as the data set holds, from a helper's stdout through the API, thrown away"),
    Row("floor-stream-in", "floor", "stream-in", floor_stream_in,
        "as many zero bytes as the data set holds, through the API into a helper's stdin, thrown away"),
    Row("floor-fifo-out", "floor", "fifo-out", floor_fifo_out,
        "the same zeros out of a helper through the co-located fast path's FIFO"),
    Row("floor-fifo-in", "floor", "fifo-in", floor_fifo_in,
        "the same zeros into a helper through the co-located fast path's FIFO"),
    Row("ansible-overhead", "ours", "overhead", ansible_overhead,
        "volume_info on an absent volume: the cost of any task through Ansible"),
]

ROW_NAMES = [row.name for row in ROWS]
