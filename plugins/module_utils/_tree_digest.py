# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The tree digest: one sha256 over a canonical record of every entry (pure logic).

Fed by the tar parser, from an archive or from a live volume streamed by a helper running
GNU tar with ``--sort=name``, it gives the same digest for the same tree. Each entry's
record holds its path, type, permission bits, owner, size, content hash (holes of sparse
files count as zeros), link target (for hard links, the first name of the file), device
numbers, xattrs and ACLs, and modification time in nanoseconds. The root directory's
modification time is left out: staging a restore inside the volume changes it.

Records are hashed in the order ``--sort=name`` produces (depth first, names compared as
bytes), which is checked as they come, so nothing is held in memory but the current entry.
"""

from __future__ import annotations

import hashlib

from ansible_collections.persist.docker.plugins.module_utils._member_safety import normalize, shown

DIGEST_VERSION = b"persist.docker tree digest v1\n"
_ZEROS = bytes(1 << 20)


class NotCanonicalOrder(ValueError):
    """Members arrive out of the canonical order, so the digest would depend on it."""


# The type names as they appear in records.
_KINDS = {kind: kind.encode("ascii") for kind in ("file", "hardlink", "symlink", "chardev", "blockdev", "dir", "fifo")}


class TreeDigest:
    """A tar parser handler that computes the tree digest and counts entries and bytes.

    With a ``checker`` (a SafetyChecker), every member is checked before it is counted, and
    the first unsafe one stops the parse. ``on_record(path, record)`` is called with each
    entry's normalized path and canonical record, in canonical order, for comparisons.
    """

    def __init__(self, checker=None, on_record=None):
        self.checker = checker
        self.on_record = on_record
        self.entries = 0
        self.bytes = 0
        self._hash = hashlib.sha256(DIGEST_VERSION)
        self._previous_key = None
        self._path = None
        self._content = None
        self._written = 0

    def member_start(self, member):
        path = self.checker.check(member) if self.checker else normalize(member.path)
        key = path.split(b"/") if path else []
        if self._previous_key is not None and key <= self._previous_key:
            raise NotCanonicalOrder(
                "member %s comes after %s: the archive is not in the order GNU tar --sort=name "
                "writes, so it was not written by persist.docker"
                % (shown(path) or ".", shown(b"/".join(self._previous_key)) or ".")
            )
        self._previous_key = key
        self._path = path
        if member.kind == "file":
            self._content = hashlib.sha256()
            self._written = 0

    def member_data(self, member, offset, data):
        if member.kind != "file":
            return
        self._fill_zeros(offset)
        self._content.update(data)
        self._written += len(data)

    def _fill_zeros(self, until):
        while self._written < until:
            step = min(len(_ZEROS), until - self._written)
            self._content.update(_ZEROS[:step])
            self._written += step

    def member_end(self, member):
        path = self._path
        content = b""
        if member.kind == "file":
            self._fill_zeros(member.size)
            content = self._content.hexdigest().encode("ascii")
            self.bytes += member.size
        if path:
            self.entries += 1
        link = member.linkname if member.kind == "symlink" else b""
        if member.kind == "hardlink":
            link = normalize(member.linkname)
        devices = (member.devmajor, member.devminor) if member.kind in ("chardev", "blockdev") else (0, 0)
        fields = [
            path, _KINDS[member.kind], b"%d" % member.mode, b"%d" % member.uid, b"%d" % member.gid,
            b"%d" % (member.size if member.kind == "file" else 0), content, link,
            b"%d" % devices[0], b"%d" % devices[1], b"%d" % len(member.xattrs),
        ]
        for name in sorted(member.xattrs):
            fields.extend((name.encode("utf-8", "surrogateescape"), member.xattrs[name]))
        fields.append(b"%d" % (member.mtime_ns if path else 0))
        encoded = b"".join([b"%d:%s," % (len(field), field) for field in fields]) + b"\n"
        self._hash.update(encoded)
        if self.on_record is not None:
            self.on_record(path, encoded)
        self._content = None

    def archive_end(self):
        pass

    def hexdigest(self):
        return self._hash.hexdigest()
