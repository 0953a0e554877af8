# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Reading an archive file back as a tar stream while hashing every byte of the file."""

from __future__ import annotations

import hashlib

from ansible_collections.persist.docker.plugins.module_utils._compression import decompressing_reader

CHUNK = 1 << 20


class ArchiveCorrupt(Exception):
    """The archive cannot be decompressed to its end."""


class _HashingReader:
    def __init__(self, raw, sha256):
        self._raw = raw
        self._sha256 = sha256
        self.size = 0

    def read(self, size=-1):
        data = self._raw.read(size)
        self._sha256.update(data)
        self.size += len(data)
        return data

    def readable(self):
        return True


class ArchiveStream:
    """Iterate the decompressed tar stream of ``path``; afterwards ``sha256`` and ``size``
    describe the archive file itself (every byte, including any after the compressed data)."""

    def __init__(self, path, compression):
        self.path = path
        self.compression = compression
        self._sha256 = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self):
        return self._sha256.hexdigest()

    def __iter__(self):
        with open(self.path, "rb") as raw:
            hashing = _HashingReader(raw, self._sha256)
            try:
                reader = decompressing_reader(hashing, self.compression)
                while True:
                    data = reader.read(CHUNK)
                    if not data:
                        break
                    yield data
            except (OSError, EOFError, ValueError) as exc:
                raise ArchiveCorrupt("cannot decompress %s (%s)" % (self.path, exc))
            except Exception as exc:  # zstandard.ZstdError derives from Exception only
                if type(exc).__name__ != "ZstdError":
                    raise
                raise ArchiveCorrupt("cannot decompress %s (%s)" % (self.path, exc))
            while hashing.read(CHUNK):
                pass  # bytes after the compressed stream still count in the file's hash
            self.size = hashing.size
