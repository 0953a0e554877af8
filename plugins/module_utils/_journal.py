# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""What to do with reserved names found at a volume's root (pure logic).

A staged restore or copy writes ``.persist-staging-TOKEN`` (and, during a replace swap,
``.persist-old-TOKEN``) and a journal ``.persist-journal`` into the volume. Anything that
mounts the volume can write those names too, so they are untrusted: they are acted on only
when the engine holds this collection's record of that very run (see _swap.SwapRecord: its
token, mode and a secret that never enters the volume), and the journal's line carries a
sha256 over that secret. Everything else is foreign: reported, and moved out of the
reserved namespace only when the task says ``recovery: discard``; never executed, never
deleted.
"""

from __future__ import annotations

import hashlib
import re
from typing import Dict, List, Mapping, Optional, Tuple

JOURNAL = ".persist-journal"
STAGING_PREFIX = ".persist-staging-"
OLD_PREFIX = ".persist-old-"
TOKEN_PATTERN = re.compile(r"\A[0-9a-f]{12}\Z")
_JOURNAL_LINE = re.compile(
    r"\A(?P<phase>aside|in|clean) (?P<token>[0-9a-f]{12}) (?P<mode>replace|merge) "
    r"(?P<stamp>-?[0-9]{1,12}\.[0-9]{9}) (?P<mac>[0-9a-f]{64})\n\Z"
)
_KINDS = {"d": "directory", "f": "file", "l": "symlink"}


def journal_mac(secret: str, line: str) -> str:
    """The sha256 a journal line carries: over the secret and the line, as the swap script
    computes it (``printf '%s\\n%s\\n' SECRET LINE | sha256sum``)."""
    return hashlib.sha256(("%s\n%s\n" % (secret, line)).encode("ascii")).hexdigest()


class ReservedState:
    """The reserved entries at a volume's root: ``entries`` maps each name to its kind
    (directory, file, symlink or other), ``journal`` is the journal's content when it is a
    regular file (else None); ``visible``: whether the root holds other entries too; ``root``:
    the tar stream of the root alone when it holds no entry at all (else None)."""

    def __init__(self, entries: Dict[str, str], journal: Optional[bytes], visible: bool = True, root: Optional[bytes] = None) -> None:
        self.entries = entries
        self.journal = journal
        self.visible = visible
        self.root = root

    @classmethod
    def parse(cls, output: bytes) -> ReservedState:
        """From the output of _tar_commands.reserved_state_command."""
        flag, output = output[:1], output[1:]
        if flag not in (b"V", b"E"):
            raise ValueError("the listing of reserved names does not start with V or E")
        listing, separator, journal = output.partition(b"\0\0") if not output.startswith(b"\0") else (b"", b"\0", output[1:])
        if not separator:
            raise ValueError("the listing of reserved names ended early")
        entries = {}
        for item in listing.split(b"\0"):
            if not item:
                continue
            kind, _space, name = item.partition(b" ")
            entries[name.decode("utf-8", "backslashreplace")] = _KINDS.get(kind.decode("ascii", "replace"), "other")
        has_journal = entries.get(JOURNAL) == "file"
        root = journal if flag == b"E" and not entries and journal else None
        return cls(entries, journal if has_journal else None, flag == b"V", root)


class Recovery:
    """The decision about one volume's reserved entries.

    * ``finish``: (phase, stamp) of our swap to finish, or None.
    * ``own``: the token of our run whose trees (staging, old) are to be removed, or None.
    * ``foreign``: reserved names this collection cannot prove it wrote (sorted), and
      ``foreign_journal``: why the journal among them is not ours (None when no journal is).
    * ``forget_record``: the engine's record is to be removed once acted on.
    """

    def __init__(self) -> None:
        self.finish: Optional[Tuple[str, str]] = None
        self.own: Optional[str] = None
        self.foreign: List[str] = []
        self.foreign_journal: Optional[str] = None
        self.forget_record = False

    @property
    def needed(self) -> bool:
        """Whether anything is to be done (finished, cleaned, or decided about)."""
        return bool(self.finish or self.own or self.foreign or self.forget_record)


def _journal_problem(journal: Optional[bytes], record: Optional[Mapping[str, str]]) -> Optional[str]:
    """Why ``journal`` (bytes or None for a non-file) is not the journal of ``record``'s run
    (a dict with token, mode and secret, or None); None when it is."""
    if record is None:
        return "the engine holds no record of a swap into this volume, so this collection did not write it (or its record was removed)"
    if journal is None:
        return "it is not a regular file"
    match = _JOURNAL_LINE.match(journal.decode("ascii", "replace"))
    if match is None:
        return "its content is not a journal line this collection writes"
    if match.group("token") != record["token"] or match.group("mode") != record["mode"]:
        return "it names another run than the engine's record of the swap into this volume"
    line = journal.decode("ascii")[:match.start("mac") - 1]
    if journal_mac(record["secret"], line) != match.group("mac"):
        return "its checksum does not match the engine's record of the swap (it was changed or forged)"
    return None


def plan_recovery(state: ReservedState, record: Optional[Mapping[str, str]]) -> Recovery:
    """The Recovery for ``state`` (a ReservedState) given the engine's ``record`` of a
    staged run into the volume (a dict with token, mode and secret), or None."""
    recovery = Recovery()
    ours = set()
    if JOURNAL in state.entries:
        problem = _journal_problem(state.journal, record)
        if problem is None:
            # _journal_problem found the journal to be a well-formed line of record's run.
            if state.journal is None or record is None:
                raise AssertionError("internal error: a journal without its text or record passed the check")
            match = _JOURNAL_LINE.match(state.journal.decode("ascii"))
            if match is None:
                raise AssertionError("internal error: a journal line that passed the check does not parse")
            recovery.finish = (match.group("phase"), match.group("stamp"))
            ours = {JOURNAL, STAGING_PREFIX + record["token"], OLD_PREFIX + record["token"]}
            recovery.forget_record = True
        else:
            recovery.foreign_journal = problem
    elif record is not None:
        recovery.forget_record = True
        own = [STAGING_PREFIX + record["token"], OLD_PREFIX + record["token"]]
        if any(name in state.entries for name in own):
            recovery.own = record["token"]
        ours = set(own)
    recovery.foreign = sorted(name for name in state.entries if name not in ours)
    return recovery


def valid_token(token: Optional[str]) -> bool:
    return bool(TOKEN_PATTERN.match(token or ""))
