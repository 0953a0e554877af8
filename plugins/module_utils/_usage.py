# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Counting a volume's entries and bytes from GNU find output (pure logic).

The helper runs ``find ROOT -xdev -mindepth 1 -printf FIND_FORMAT``: one line per entry
with its type, inode, link count, apparent size and allocated 512-byte blocks. No names
travel, so any file name is safe and the stream stays small.
"""

from __future__ import annotations

from typing import Any, Dict, Set

FIND_FORMAT = "%y %i %n %s %b\\n"


class UsageTally:
    """Feed find output in chunks of any size; read the totals from ``result()``.

    ``bytes`` is the apparent size of regular files, ``disk_bytes`` the space allocated to
    files and directories (smaller than ``bytes`` for sparse files); a hard-linked file
    counts once in both. ``entries`` counts every entry below the root.
    """

    def __init__(self) -> None:
        self.entries = 0
        self.bytes = 0
        self.disk_bytes = 0
        self._pending = b""
        self._linked_inodes: Set[bytes] = set()

    def feed(self, chunk: bytes) -> None:
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            if line:
                self._count(line)

    def _count(self, line: bytes) -> None:
        try:
            kind, inode, links_field, size_field, blocks_field = line.split(b" ")
            links, size, blocks = int(links_field), int(size_field), int(blocks_field)
        except ValueError:
            raise ValueError("unexpected find output line: %r" % line[:200])
        self.entries += 1
        if kind == b"f" and links > 1:
            if inode in self._linked_inodes:
                return
            self._linked_inodes.add(inode)
        if kind == b"f":
            self.bytes += size
        self.disk_bytes += blocks * 512

    def result(self) -> Dict[str, Any]:
        if self._pending:
            raise ValueError("find output ended in the middle of a line: %r" % self._pending[:200])
        return {
            "entries": self.entries,
            "bytes": self.bytes,
            "disk_bytes": self.disk_bytes,
            "empty": self.entries == 0,
        }
