# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Reading an archive file back as a tar stream, pinned to what was verified.

A restore reads an archive twice: once to verify it (before any container is stopped), once
to extract it. Whoever can write the backup directory could change the file in between, so
the file is opened once, and the first read records a sha256 of every block of it; a later
read checks each block against that record before a byte of it is decompressed.
"""

from __future__ import annotations

import hashlib
import zlib

from ansible_collections.persist.docker.plugins.module_utils._compression import decompressing_reader
from ansible_collections.persist.docker.plugins.module_utils._encryption import DecryptingReader
from ansible_collections.persist.docker.plugins.module_utils._prefetch import prefetch

CHUNK = 1 << 20
PIN_BLOCK = 1 << 20


class ArchiveCorrupt(Exception):
    """The archive cannot be decompressed to its end."""


class ArchiveChanged(Exception):
    """The archive file differs from what its first read saw."""


class _PinningReader:
    """A ``read(size)`` over the raw file that works in whole PIN_BLOCKs: records, after each
    block, the sha256 of the file up to its end (``digests`` empty), or checks it against
    ``digests`` before handing any of the block's bytes on. The prefix digests come from the
    one running hash of the whole file (a copy of its state per block), so the file is
    hashed once: equal prefix digests mean equal prefixes, hence an equal block. ``whole``
    is that running hash (its hexdigest is the file's sha256 once it is read to its end)."""

    def __init__(self, raw, digests):
        self._raw = raw
        self._digests = digests
        self._recording = not digests
        self.whole = hashlib.sha256()
        self._block = b""
        self._offset = 0
        self._index = 0
        self.size = 0

    def _next_block(self):
        block = self._raw.read(PIN_BLOCK)
        if block:
            self.whole.update(block)
            digest = self.whole.copy().digest()
            if self._recording:
                self._digests.append(digest)
            elif self._index >= len(self._digests) or self._digests[self._index] != digest:
                raise ArchiveChanged("block %d (at byte %d) of the archive changed since it was verified" % (self._index, self._index * PIN_BLOCK))
            self._index += 1
        self.size += len(block)
        self._block, self._offset = block, 0

    def read(self, size=-1):
        if self._offset >= len(self._block):
            self._next_block()
        if size is None or size < 0:
            size = len(self._block)
        data = self._block[self._offset:self._offset + size]
        self._offset += len(data)
        return data

    def readable(self):
        return True


class PinnedArchive:
    """One archive file, opened once (use as a context manager).

    ``stream()`` yields the decompressed tar stream (decrypted first with ``identities``
    when the archive is encrypted). The first stream reads every byte of the file (after the
    compressed data too) and sets ``sha256`` and ``size``; every later stream raises
    ArchiveChanged before using a block that differs from the first read. Decompression
    failures raise ArchiveCorrupt; decryption failures EncryptionError. ``hash_file()``
    reads the file without decompressing it (an encrypted archive without an identity)."""

    def __init__(self, path, compression, identities=None, raw=None):
        self.path = path
        self.compression = compression
        self.identities = identities
        self.sha256 = None
        self.size = None
        self._digests = []
        # ``raw``: an already open reader with ``read(size)`` (a download read once) instead of the file.
        self._raw = raw if raw is not None else open(path, "rb")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._raw.close()

    def _reader(self):
        first = self.sha256 is None
        if first:
            del self._digests[:]  # an earlier first read that was not finished records anew
        self._raw.seek(0)
        return first, _PinningReader(self._raw, self._digests)

    def hash_file(self):
        """Read the whole file (pinned as a first read is), setting ``sha256`` and ``size``."""
        first, pinning = self._reader()
        while pinning.read(CHUNK):
            pass
        if first:
            self.sha256, self.size = pinning.whole.hexdigest(), pinning.size

    def stream(self, ahead=False):
        """The decompressed tar stream; ``ahead``: read, check and decompress in a thread a
        few MiB ahead of the consumer, which should close the stream (contextlib.closing)
        when it stops early: the close waits until the thread no longer reads the file."""
        if ahead:
            return prefetch(self._decoded(), wait=True)
        return self._decoded()

    def _decoded(self):
        first, pinning = self._reader()
        decrypting = DecryptingReader(pinning, self.identities, self.path) if self.identities else None
        try:
            reader = decompressing_reader(decrypting or pinning, self.compression)
            while True:
                data = reader.read(CHUNK)
                if not data:
                    break
                yield data
            if decrypting is not None:
                while decrypting.read(CHUNK):
                    pass  # the age stream to its end: its last chunk is authenticated too
        except (OSError, EOFError, ValueError, zlib.error) as exc:  # zlib.error: a damaged gzip stream
            raise ArchiveCorrupt("cannot decompress %s (%s)" % (self.path, exc))
        except Exception as exc:  # zstandard.ZstdError derives from Exception only
            if type(exc).__name__ != "ZstdError":
                raise
            raise ArchiveCorrupt("cannot decompress %s (%s)" % (self.path, exc))
        finally:
            if decrypting is not None:
                decrypting.close()
        if first:
            while pinning.read(CHUNK):
                pass  # bytes after the compressed stream still count in the file's hash
            self.sha256, self.size = pinning.whole.hexdigest(), pinning.size
