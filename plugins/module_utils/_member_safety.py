# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Safety rules for archive members before anything is extracted (pure logic).

A restore refuses the whole archive on the first member that breaks a rule; it never
sanitizes. The checker sees members in archive order (as the tar parser reports them)
and keeps only what the rules need: the names seen, their kinds, and which are symlinks.
"""

from __future__ import annotations

RESERVED_PREFIX = b".persist-"
# Linux limits: longer names cannot be created, and tools that truncate them are fooled.
PATH_MAX = 4095
NAME_MAX = 255
SPECIAL_KINDS = frozenset(["chardev", "blockdev", "fifo"])


class UnsafeMember(Exception):
    """A member breaks a safety rule; ``member`` and ``rule`` say which and why."""

    def __init__(self, member, rule):
        super().__init__("archive member %s is refused: %s" % (member, rule))
        self.member = member
        self.rule = rule


def shown(path):
    return path.decode("utf-8", "backslashreplace")


def normalize(path):
    """The member's path relative to the volume root, as bytes; b"" is the root itself.

    Raises ValueError (with the rule) for an absolute path, a ``..`` or ``.`` component
    other than a leading ``./``, or an empty component.
    """
    if path.startswith(b"/"):
        raise ValueError("absolute path")
    if path in (b".", b"./"):
        return b""
    if path.startswith(b"./"):
        path = path[2:]
    parts = path.split(b"/")
    for part in parts:
        if part == b"..":
            raise ValueError("'..' path component")
        if part in (b"", b"."):
            raise ValueError("empty or '.' path component (not a canonical path)")
    return path


def escapes(directory, target):
    """True when a relative symlink ``target`` placed in ``directory`` resolves above the root."""
    depth = len(directory.split(b"/")) if directory else 0
    for part in target.split(b"/"):
        if part == b"..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in (b"", b"."):
            depth += 1
    return False


class SafetyChecker:
    """Feed each member with ``check(member)``; it raises UnsafeMember on the first offence.

    ``allow_special`` admits device nodes, FIFOs and setuid/setgid bits. Absolute symlink
    targets are allowed: they point into the file system of the container that mounts the
    volume, and restore never follows them.
    """

    def __init__(self, allow_special=False):
        self.allow_special = allow_special
        self._kinds = {}
        self._symlinks = set()

    def check(self, member):
        """Check one member and return its normalized path."""
        try:
            path = normalize(member.path)
        except ValueError as exc:
            raise UnsafeMember(shown(member.path), str(exc))
        name = shown(path) or "."
        if path == b"":
            if member.kind != "dir":
                raise UnsafeMember(".", "the volume root must be a directory, not a %s" % member.kind)
        self._check_names(path, name)
        self._check_parents(path, name)
        self._check_kind(member, path, name)
        if path in self._kinds:
            previous = self._kinds[path]
            if previous != member.kind:
                raise UnsafeMember(name, "appears twice, first as a %s, then as a %s" % (previous, member.kind))
            raise UnsafeMember(name, "appears twice in the archive")
        self._kinds[path] = member.kind
        if member.kind == "symlink":
            self._symlinks.add(path)
        return path

    def _check_names(self, path, name):
        if len(path) > PATH_MAX:
            raise UnsafeMember(name[:80] + "...", "path longer than %d bytes" % PATH_MAX)
        if any(len(part) > NAME_MAX for part in path.split(b"/")):
            raise UnsafeMember(name, "a path component is longer than %d bytes" % NAME_MAX)
        if path.split(b"/")[0].startswith(RESERVED_PREFIX):
            raise UnsafeMember(name, "names starting with .persist- at the volume root are reserved for restore staging")

    def _check_parents(self, path, name):
        parent = path
        while b"/" in parent:
            parent = parent.rsplit(b"/", 1)[0]
            if parent in self._symlinks:
                raise UnsafeMember(name, "its parent %s is a symlink in the archive (extraction would follow it)" % shown(parent))
            kind = self._kinds.get(parent)
            if kind is not None and kind != "dir":
                raise UnsafeMember(name, "its parent %s is a %s, not a directory" % (shown(parent), kind))

    def _check_kind(self, member, path, name):
        if member.kind in SPECIAL_KINDS and not self.allow_special:
            raise UnsafeMember(name, "%s nodes are refused unless allow_special is true" % member.kind)
        if member.mode & 0o6000 and not self.allow_special:
            raise UnsafeMember(name, "setuid/setgid bits are refused unless allow_special is true")
        if member.kind == "symlink":
            target = member.linkname
            if not target:
                raise UnsafeMember(name, "symlink with an empty target")
            directory = path.rsplit(b"/", 1)[0] if b"/" in path else b""
            if not target.startswith(b"/") and escapes(directory, target):
                raise UnsafeMember(name, "symlink target %s leaves the volume" % shown(target))
        elif member.kind == "hardlink":
            try:
                target = normalize(member.linkname)
            except ValueError as exc:
                raise UnsafeMember(name, "hard link target %s: %s" % (shown(member.linkname), exc))
            kind = self._kinds.get(target)
            if kind is None:
                raise UnsafeMember(name, "hard link to %s, which is not an earlier member of the archive" % shown(target))
            if kind != "file":
                raise UnsafeMember(name, "hard link to %s, which is a %s, not a regular file" % (shown(target), kind))
