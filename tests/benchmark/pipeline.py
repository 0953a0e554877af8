# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CPU work of a backup without containers: a volume's tar stream on a host pipe, through
the module's own parser, tree digest and zstd writer, in one process. It shows how much of a
backup's data phase the machine itself needs, and what a second thread for the digest gains.

    TAR="$(python tests/benchmark/pipeline.py --tar-command MOUNTPOINT)"
    $TAR | python tests/benchmark/pipeline.py digest     # parse and digest only
    $TAR | python tests/benchmark/pipeline.py zstd       # compress only
    $TAR | python tests/benchmark/pipeline.py both       # both, one thread (as the module does)
    $TAR | python tests/benchmark/pipeline.py threaded   # the digest in a second thread
    $TAR | python tests/benchmark/pipeline.py restore    # a one-pass restore's checks and re-writing
    $TAR | python tests/benchmark/pipeline.py readback   # a read-back: parse and digest, as records

Run as root on the engine's host (it reads the Mountpoint), with the collection importable
(ANSIBLE_COLLECTIONS_PATH on PYTHONPATH, as scripts/lib.sh sets it); compare with
``$TAR | zstd -T0 -3 >/dev/null``, the benchmark's limit. Prints the wall and CPU seconds of
this process to stderr (``restore`` and ``readback`` also its peak RSS). ``restore`` is what
the one-pass restore's reading thread does with the decompressed stream (safety rules, tree
digest, canonical re-writing; the archive's reading, hashing and decompression are not
included), ``readback`` what the read-back of a staged tree does; the tar stream can also
come from a file (``<FILE``).
"""

from __future__ import annotations

import hashlib
import queue
import resource
import shlex
import sys
import threading
import time

from ansible_collections.persist.docker.plugins.module_utils._compression import compressing_writer
from ansible_collections.persist.docker.plugins.module_utils._member_safety import SafetyChecker
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import VOLUME_MOUNT, tar_create_command
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarParser
from ansible_collections.persist.docker.plugins.module_utils._tar_write import canonical_stream
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import RecordStream
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import TreeDigest

MODES = ("digest", "zstd", "both", "threaded", "restore", "readback")


class _Hashing:
    """The archive's sha256, as the module takes it of what it writes."""

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self):
        pass


def main():
    if sys.argv[1:2] == ["--tar-command"]:
        command = [part.replace("--directory=" + VOLUME_MOUNT, "--directory=" + sys.argv[2]) for part in tar_create_command()]
        print(" ".join(shlex.quote(part) for part in command))
        return
    mode = sys.argv[1]
    if mode not in MODES:
        sys.exit("mode must be one of %s" % ", ".join(MODES))
    if mode in ("restore", "readback"):
        _restore_side(mode)
        return
    parser = TarParser(TreeDigest())
    archive = _Hashing()
    writer = compressing_writer(archive, "zstd")
    chunks = queue.Queue(8)
    worker = None
    if mode == "threaded":
        def digest():
            for chunk in iter(chunks.get, None):
                parser.feed(chunk)

        worker = threading.Thread(target=digest)
        worker.start()
    started = time.monotonic()
    for chunk in _stdin_chunks():
        if mode in ("digest", "both"):
            parser.feed(chunk)
        if mode != "digest":
            writer.write(chunk)
        if worker is not None:
            chunks.put(chunk)
    if worker is not None:
        chunks.put(None)
        worker.join()
    writer.close()
    made = "" if mode == "digest" else ", %d bytes of zstd" % archive.size
    print("%s: %.2f s%s" % (mode, time.monotonic() - started, made), file=sys.stderr)


def _stdin_chunks():
    return iter(lambda: sys.stdin.buffer.read(1 << 20), b"")


def _restore_side(mode):
    started, cpu = time.monotonic(), time.process_time()
    chunks = _stdin_chunks()
    if mode == "restore":
        written = sum(len(out) for out in canonical_stream(chunks, TreeDigest(SafetyChecker())))
        made = ", %d bytes re-written" % written
    else:
        records = RecordStream(chunks)
        made = ", %d records" % sum(1 for _record in records)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("%s: %.2f s, %.2f s of CPU, peak RSS %.1f MiB%s" % (mode, time.monotonic() - started, time.process_time() - cpu, peak, made), file=sys.stderr)


if __name__ == "__main__":
    main()
