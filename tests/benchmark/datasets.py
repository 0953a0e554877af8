# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two data sets of the benchmark, built into named volumes on every run.

* ``postgres``: a real PostgreSQL 15 data directory, filled by ``pgbench -i`` at the scale
  that gives about the requested size, then shut down cleanly (so every row reads the
  same files, and no running container mounts the volume).
* ``uploads``: the file tree of a web application's uploads, from a seeded generator: the
  same seed and size give the same names, contents, owners, modes and times.
"""

from __future__ import annotations

import os
import random
import shlex
import stat
import subprocess
import time
import zlib

from docker.errors import APIError
from docker.types import LogConfig

GIB = 1024 ** 3
MIB = 1024 ** 2
POSTGRES_IMAGE = "persist-test/postgres:15"
# pgbench -i puts this many rows into pgbench_accounts per unit of scale.
ACCOUNTS_PER_SCALE = 100000
# Measured on PostgreSQL 15 (pgbench -i, default steps, wal_level minimal): an initialised
# cluster holds about 40 MB (16 MB of it one WAL segment), and each unit of scale adds
# 100,000 accounts, about 15.7 MB of table and index.
POSTGRES_BASE_BYTES = 40 * 1000 * 1000
POSTGRES_BYTES_PER_SCALE = 15.7 * 1000 * 1000
# The uploads belong to the web server's user, as they would in its container.
UPLOADS_UID = UPLOADS_GID = 33
# Deterministic file times: a fixed epoch (2025-01-01T00:00:00Z) plus seeded offsets.
EPOCH = 1735689600


def tree_size(root):
    """{files, directories, symlinks, bytes} below ``root``; a hard-linked file counts once."""
    counts = dict(files=0, directories=0, symlinks=0, bytes=0)
    inodes = set()
    for directory, subdirs, names in os.walk(root):
        for name in subdirs:
            counts["symlinks" if os.path.islink(os.path.join(directory, name)) else "directories"] += 1
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            if stat.S_ISLNK(info.st_mode):
                counts["symlinks"] += 1
            elif info.st_ino not in inodes:
                inodes.add(info.st_ino)
                counts["files"] += 1
                counts["bytes"] += info.st_size
    return counts


def postgres_scale(size_bytes):
    """The pgbench scale whose data directory is closest to ``size_bytes`` (at least 1)."""
    return max(1, int(round((size_bytes - POSTGRES_BASE_BYTES) / POSTGRES_BYTES_PER_SCALE)))


def build_postgres(docker_client, volume, container_name, size_bytes, log):
    """Fill ``volume`` with a PostgreSQL data directory by ``pgbench -i``; the server runs with no
    network (pgbench reaches it through the socket, by ``docker exec``) and is stopped cleanly."""
    scale = postgres_scale(size_bytes)
    log("postgres: pgbench -i -s %d into %s" % (scale, volume))
    # Settings of this run only (postgresql.conf in the volume is untouched): wal_level minimal
    # lets pgbench's COPY FREEZE into freshly truncated tables skip the WAL, so the data
    # directory is tables and indexes rather than as much WAL again; no fsync while loading
    # (the clean shutdown writes everything, and os.sync() follows) and a larger sort memory
    # for the primary keys make the load faster.
    settings = ["wal_level=minimal", "max_wal_senders=0", "fsync=off", "full_page_writes=off", "maintenance_work_mem=256MB"]
    container = run_postgres(docker_client, volume, container_name, settings)
    try:
        started = time.monotonic()
        code, output = container.exec_run(["pgbench", "-i", "-s", str(scale), "-q", "postgres"], user="postgres")
        if code != 0:
            raise RuntimeError("pgbench -i failed (exit %s): %s" % (code, output.decode("utf-8", "replace")[-2000:]))
        summary = [line for line in output.decode("utf-8", "replace").splitlines() if line.startswith("done in")]
        log("postgres: pgbench -i took %.1f s (%s)" % (time.monotonic() - started, summary[-1] if summary else "no summary"))
        # SIGINT (the image's stop signal): a fast shutdown with a final checkpoint.
        container.stop(timeout=120)
        container.reload()
        exit_code = container.attrs["State"]["ExitCode"]
        if exit_code != 0:
            raise RuntimeError("PostgreSQL did not shut down cleanly (exit %s): %s"
                               % (exit_code, container.logs(tail=20).decode("utf-8", "replace")))
    finally:
        container.remove(force=True)
    return {"pgbench_scale": scale}


def run_postgres(docker_client, volume, container_name, settings=()):
    """Start PostgreSQL 15 on ``volume`` (its data directory), with no network and local
    connections trusted, ``settings`` (``name=value``) for this run only; returns the container
    once the server accepts connections (it is removed if it does not). Its log driver is
    json-file whatever the engine's default: the downtime rows read the server's log back."""
    container = docker_client.containers.run(
        POSTGRES_IMAGE,
        ["postgres"] + [argument for setting in settings for argument in ("-c", setting)],
        name=container_name,
        detach=True,
        network_mode="none",
        log_config=LogConfig(type="json-file"),
        environment={"POSTGRES_HOST_AUTH_METHOD": "trust"},
        volumes={volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
    )
    try:
        wait_ready(container, timeout=180)
    except BaseException:
        container.remove(force=True)
        raise
    return container


def wait_ready(container, timeout):
    """Return once the server accepts connections; RuntimeError if it exits or takes longer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            raise RuntimeError("PostgreSQL is not running (%s): %s" % (container.status, container.logs(tail=5).decode("utf-8", "replace")))
        try:
            # The image's own health check: the real server (PID 1) answers pg_isready.
            code, _output = container.exec_run(["/usr/local/bin/healthcheck.sh"])
        except APIError:
            code = None  # it stopped since: the next round says how
        if code == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("PostgreSQL did not become ready within %d s" % timeout)


class UploadsGenerator:
    """A web application's uploads: tens of thousands of files per GiB, 100 B to 4 MiB.

    By bytes, about 45 % text-like (HTML, JSON, CSV, logs: compressible about 3x), 40 %
    random (photos and videos: incompressible), 15 % already compressed (archives and
    office documents: deflate output). Small files dominate by count, large ones by bytes.
    Also: directories four levels deep, empty directories, relative symlinks and a few
    hard links (thumbnails shared between two albums).
    """

    TEXT_KINDS = ("html", "json", "csv", "txt", "log")
    RANDOM_KINDS = ("jpg", "png", "mp4", "webp")
    COMPRESSED_KINDS = ("zip", "gz", "docx", "pdf")

    def __init__(self, seed):
        self.rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        vocabulary = ["".join(self.rng.choices(letters, k=self.rng.randint(2, 11))) for _index in range(4000)]
        # An 8 MiB pool of word salad; text files are slices of it at seeded offsets.
        words = self.rng.choices(vocabulary, k=(8 * MIB) // 7)
        self.text_pool = " ".join(words).encode("ascii")
        # Deflate output of the pool: statistically like any compressed file.
        self.compressed_pool = zlib.compress(self.text_pool, 1)

    def _size(self):
        # 97 % small files (100 B .. 32 KiB), 3 % large (256 KiB .. 4 MiB), log-uniform.
        if self.rng.random() < 0.97:
            low, high = 100, 32 * 1024
        else:
            low, high = 256 * 1024, 4 * MIB
        return int(low * (high / low) ** self.rng.random())

    def _content(self, kind, size):
        if kind in self.RANDOM_KINDS:
            return self.rng.randbytes(size)
        pool = self.text_pool if kind in self.TEXT_KINDS else self.compressed_pool
        size = min(size, len(pool))
        start = self.rng.randrange(len(pool))
        chunk = pool[start:start + size]
        return chunk + pool[:size - len(chunk)]

    def _kind(self):
        draw = self.rng.random()
        if draw < 0.45:
            return self.rng.choice(self.TEXT_KINDS)
        if draw < 0.85:
            return self.rng.choice(self.RANDOM_KINDS)
        return self.rng.choice(self.COMPRESSED_KINDS)

    def write(self, root, size_bytes):
        """Write the tree into ``root`` (an empty directory); returns its counts."""
        written = 0
        files = []
        directories = set()
        count = 0
        while written < size_bytes:
            kind = self._kind()
            # The share of bytes per kind is what matters; large files are drawn as often
            # whatever their kind, so a kind's byte share follows its draw probability.
            size = min(self._size(), max(100, size_bytes - written))
            year = 2021 + self.rng.randrange(5)
            month = 1 + self.rng.randrange(12)
            user = self.rng.randrange(30)
            directory = os.path.join("uploads", str(year), "%02d" % month, "user-%03d" % user)
            name = "%s-%06d.%s" % (self.rng.choice(("photo", "doc", "export", "report", "img", "file")), count, kind)
            path = os.path.join(directory, name)
            if directory not in directories:
                os.makedirs(os.path.join(root, directory), exist_ok=True)
                directories.add(directory)
            content = self._content(kind, size)
            with open(os.path.join(root, path), "wb", buffering=MIB) as handle:
                handle.write(content)
            files.append(path)
            written += len(content)
            count += 1
        self._add_links(root, files)
        for empty in ("cache/sessions", "cache/thumbnails", "tmp"):
            os.makedirs(os.path.join(root, empty), exist_ok=True)
        self._set_owners_and_times(root)
        return count

    def _add_links(self, root, files):
        # "latest" in some users' directories: a relative symlink to one of their files.
        for path in self.rng.sample(files, min(200, len(files))):
            link = os.path.join(root, os.path.dirname(path), "latest")
            if not os.path.lexists(link):
                os.symlink(os.path.basename(path), link)
        os.symlink("uploads/%d" % 2025, os.path.join(root, "current"))
        # Albums sharing a picture: hard links to the same inode.
        albums = os.path.join(root, "albums", "shared")
        os.makedirs(albums, exist_ok=True)
        for index, path in enumerate(self.rng.sample(files, min(20, len(files)))):
            os.link(os.path.join(root, path), os.path.join(albums, "%02d-%s" % (index, os.path.basename(path))))

    def _set_owners_and_times(self, root):
        # A sorted list, not the directory order of the file system (which differs between
        # hosts), so that the same seed gives the same times everywhere. Deepest first, so
        # that setting a directory's time is the last change inside it.
        entries = []
        for directory, subdirs, names in os.walk(root):
            entries.extend((os.path.join(directory, name), False) for name in names)
            entries.extend((os.path.join(directory, name), True) for name in subdirs)
        entries.sort(key=lambda entry: (-entry[0].count(os.sep), entry[0]))
        entries.append((root, True))
        for path, is_directory in entries:
            os.lchown(path, UPLOADS_UID, UPLOADS_GID)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if is_directory else 0o644)
            stamp = (EPOCH + self.rng.randrange(3 * 365 * 86400)) * 10 ** 9 + self.rng.randrange(10 ** 9)
            os.utime(path, ns=(stamp, stamp), follow_symlinks=False)


def build_uploads(mountpoint, size_bytes, seed, log):
    """Fill the volume at ``mountpoint`` (on this host) with the uploads tree."""
    started = time.monotonic()
    count = UploadsGenerator(seed).write(mountpoint, size_bytes)
    log("uploads: %d files written in %.1f s" % (count, time.monotonic() - started))
    return {"seed": seed}


def warm(mountpoint):
    """Read every file once (unmeasured), so that every row starts with the data in the page cache."""
    subprocess.run(
        "tar -cf - -C %s . | cat >/dev/null" % shlex.quote(mountpoint), shell=True, check=True, executable="/bin/bash",
    )
