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

from typing import TYPE_CHECKING, Dict, Optional, Set

if TYPE_CHECKING:
    from ansible_collections.persist.docker.plugins.module_utils._tar_stream import Member

RESERVED_PREFIX = b".persist-"
# Linux limits: longer names cannot be created, and tools that truncate them are fooled.
PATH_MAX = 4095
NAME_MAX = 255
SPECIAL_KINDS = frozenset(["chardev", "blockdev", "fifo"])
# Extended attributes that grant privileges the way a setuid bit does: file capabilities,
# the SMACK labels a process takes on when it runs or maps the file, and the trusted
# namespace (root-only attributes that kernel code such as overlayfs acts on).
PRIVILEGED_XATTRS = frozenset(["security.capability", "security.SMACK64EXEC", "security.SMACK64MMAP"])
PRIVILEGED_XATTR_PREFIXES = ("trusted.",)


def privileged_xattr(name: str) -> bool:
    """Whether extended attribute ``name`` grants privileges (see PRIVILEGED_XATTRS)."""
    return name in PRIVILEGED_XATTRS or name.startswith(PRIVILEGED_XATTR_PREFIXES)


class UnsafeMember(Exception):
    """A member breaks a safety rule; ``member`` and ``rule`` say which and why."""

    def __init__(self, member: str, rule: str) -> None:
        super().__init__("archive member %s is refused: %s" % (member, rule))
        self.member = member
        self.rule = rule


def shown(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def normalize(path: bytes) -> bytes:
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


def symlink_problem(directory: bytes, target: bytes) -> Optional[str]:
    """Why a relative symlink ``target`` placed in ``directory`` may resolve outside the
    volume (a rule, as text), or None.

    ``..`` components may only lead the target, and no further up than ``directory`` is
    deep: after a name, ``..`` would climb out of whatever that name resolves to, and the
    name may itself be a symlink (``s -> .`` then ``up -> s/..`` leaves the root). Leading
    ``..`` climb through real directories (a member's parents are never symlinks), and
    every symlink passed on the way down obeys the same rule, so a target that keeps it
    stays inside the volume however its links chain.
    """
    depth = len(directory.split(b"/")) if directory else 0
    descended = False
    for part in target.split(b"/"):
        if part == b"..":
            if descended:
                return "symlink target %s has '..' after a name (it could climb out through another symlink)" % shown(target)
            depth -= 1
            if depth < 0:
                return "symlink target %s leaves the volume" % shown(target)
        elif part not in (b"", b"."):
            descended = True
    return None


class SafetyChecker:
    """Feed each member with ``check(member)``; it raises UnsafeMember on the first offence.

    ``allow_special`` admits device nodes, FIFOs, setuid/setgid bits and extended attributes
    that grant privileges (file capabilities and the like, see PRIVILEGED_XATTRS). Absolute
    symlink targets are allowed: they point into the file system of the container that mounts the
    volume, and restore never follows them.
    """

    def __init__(self, allow_special: bool = False) -> None:
        self.allow_special = allow_special
        self._kinds: Dict[bytes, str] = {}
        self._symlinks: Set[bytes] = set()

    # As a TarParser handler of its own: checks each member as it starts.
    def member_start(self, member: Member) -> None:
        self.check(member)

    def member_data(self, member: Member, offset: int, data: memoryview) -> None:
        pass

    def member_end(self, member: Member) -> None:
        pass

    def archive_end(self) -> None:
        pass

    def check(self, member: Member) -> bytes:
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

    def _check_names(self, path: bytes, name: str) -> None:
        if len(path) > PATH_MAX:
            raise UnsafeMember(name[:80] + "...", "path longer than %d bytes" % PATH_MAX)
        if any(len(part) > NAME_MAX for part in path.split(b"/")):
            raise UnsafeMember(name, "a path component is longer than %d bytes" % NAME_MAX)
        if path.split(b"/")[0].startswith(RESERVED_PREFIX):
            raise UnsafeMember(name, "names starting with .persist- at the volume root are reserved for restore staging")

    def _check_parents(self, path: bytes, name: str) -> None:
        parent = path
        while b"/" in parent:
            parent = parent.rsplit(b"/", 1)[0]
            if parent in self._symlinks:
                raise UnsafeMember(name, "its parent %s is a symlink in the archive (extraction would follow it)" % shown(parent))
            kind = self._kinds.get(parent)
            if kind is not None and kind != "dir":
                raise UnsafeMember(name, "its parent %s is a %s, not a directory" % (shown(parent), kind))

    def _check_kind(self, member: Member, path: bytes, name: str) -> None:
        if member.kind in SPECIAL_KINDS and not self.allow_special:
            raise UnsafeMember(name, "%s nodes are refused unless allow_special is true" % member.kind)
        if member.mode & 0o6000 and not self.allow_special:
            raise UnsafeMember(name, "setuid/setgid bits are refused unless allow_special is true")
        if not self.allow_special:
            for key in sorted(member.xattrs):
                if privileged_xattr(key):
                    raise UnsafeMember(name, "extended attribute %s grants privileges (like a setuid bit) and is refused unless allow_special is true" % key)
        if member.kind == "symlink":
            target = member.linkname
            if not target:
                raise UnsafeMember(name, "symlink with an empty target")
            directory = path.rsplit(b"/", 1)[0] if b"/" in path else b""
            problem = None if target.startswith(b"/") else symlink_problem(directory, target)
            if problem:
                raise UnsafeMember(name, problem)
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
