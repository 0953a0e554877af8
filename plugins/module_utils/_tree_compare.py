# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Entry-by-entry comparison of two trees streamed as tar (pure logic).

Both sides arrive in canonical order (GNU tar --sort=name), so they are merged like two
sorted lists: memory stays bounded whatever the size of the trees.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from ansible_collections.persist.docker.plugins.module_utils._member_safety import SafetyChecker, canonical_key, shown
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarParser
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import CURRENT_VERSION, TreeDigest


class RecordStream:
    """Iterate ``(path, record)`` over a tar stream given as chunks; ``digest`` is the
    TreeDigest (with ``hexdigest()``, ``entries``, ``bytes``) once the iteration is done.
    ``version`` is the tree digest version of the records (both sides of a comparison must
    use the same)."""

    def __init__(self, chunks: Iterable[bytes], checker: Optional[SafetyChecker] = None, version: int = CURRENT_VERSION) -> None:
        self._chunks = chunks
        self._pending: List[Tuple[bytes, bytes]] = []
        self.digest = TreeDigest(checker, on_record=lambda path, record: self._pending.append((path, record)), version=version)

    def __iter__(self) -> Iterator[Tuple[bytes, bytes]]:
        parser = TarParser(self.digest)
        pending = self._pending
        for chunk in self._chunks:
            parser.feed(chunk)
            if pending:
                yield from pending
                del pending[:]
        parser.close()
        yield from pending
        del pending[:]


def only_root(chunks: Iterable[bytes], version: int = CURRENT_VERSION) -> Optional[bytes]:
    """The record (of digest ``version``) of the root of the tar stream ``chunks`` when the
    stream holds the root alone, else None; reads no further than its second entry."""
    records = iter(RecordStream(chunks, version=version))
    root = next(records, None)
    if root is None or next(records, None) is not None:
        return None
    return root[1]


class TreeDifferences:
    """Counts of added, changed and removed entries, with the first ``limit`` paths of each."""

    def __init__(self, limit: int = 50) -> None:
        self.limit = limit
        self.counts = {"added": 0, "changed": 0, "removed": 0}
        self.samples: Dict[str, List[str]] = {"added": [], "changed": [], "removed": []}

    def note(self, kind: str, path: bytes) -> None:
        self.counts[kind] += 1
        if len(self.samples[kind]) < self.limit:
            self.samples[kind].append(shown(path) or ".")

    def would_change(self, mode: str) -> bool:
        """Whether restoring in ``mode`` (replace or merge) changes the target."""
        if mode == "merge":
            return bool(self.counts["added"] or self.counts["changed"])
        return any(self.counts.values())

    def as_dict(self, mode: str) -> Dict[str, Any]:
        result: Dict[str, Any] = {"mode": mode}
        for kind in ("added", "changed", "removed"):
            result[kind] = self.counts[kind]
            result[kind + "_paths"] = list(self.samples[kind])
        if mode == "merge":
            result["removed_paths"] = []
            result["kept_extra"] = result.pop("removed")
            result["removed"] = 0
        return result

    def prepared(self, mode: str) -> str:
        """A readable diff for Ansible's --diff output."""
        lines = []
        view = self.as_dict(mode)
        for kind, sign in (("added", "+"), ("changed", "~"), ("removed", "-")):
            for path in view[kind + "_paths"]:
                lines.append("%s %s" % (sign, path))
            shown_count = len(view[kind + "_paths"])
            if view[kind] > shown_count:
                lines.append("%s ... and %d more %s" % (sign, view[kind] - shown_count, kind))
        if mode == "merge" and view["kept_extra"]:
            lines.append("  (%d entries only in the volume are kept: mode merge)" % view["kept_extra"])
        return "\n".join(lines) + ("\n" if lines else "")

    def report(self, mode: str) -> Dict[str, Any]:
        """The ``differences`` and ``diff`` fields of a restore's or a copy's result."""
        return {"differences": self.as_dict(mode), "diff": {"prepared": self.prepared(mode)}}


def compare(archive_records: Iterable[Tuple[bytes, bytes]], target_records: Iterable[Tuple[bytes, bytes]], differences: TreeDifferences) -> TreeDifferences:
    """Merge two canonical ``(path, record)`` iterables into ``differences``; a path only in
    the archive is added, only in the target removed, in both with other records changed."""
    archive_iter, target_iter = iter(archive_records), iter(target_records)
    wanted, have = next(archive_iter, None), next(target_iter, None)
    while wanted is not None or have is not None:
        if have is None or (wanted is not None and canonical_key(wanted[0]) < canonical_key(have[0])):
            if wanted is None:
                raise AssertionError("internal error: the loop runs while either side has an entry")
            differences.note("added", wanted[0])
            wanted = next(archive_iter, None)
        elif wanted is None or canonical_key(have[0]) < canonical_key(wanted[0]):
            differences.note("removed", have[0])
            have = next(target_iter, None)
        else:
            if wanted[1] != have[1]:
                differences.note("changed", wanted[0])
            wanted, have = next(archive_iter, None), next(target_iter, None)
    return differences
