# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Safety rules for archive members before anything is extracted (pure logic).

A restore refuses the whole archive on the first member that breaks a rule; it never
sanitizes. The checker sees members in archive order (as the tar parser reports them), and
that order must be the canonical one (GNU tar ``--sort=name``, which persist.docker writes):
it makes a repeated path an order error, puts a member's parents on the path to it (a stack
as deep as the tree), and leaves one table that grows with the archive, the regular files
a hard link may name, kept compressed (about 10 bytes a file for ordinary trees, and about
16 plus the block's first name however the names are made).
"""

from __future__ import annotations

import bisect
import hashlib
import os
import zlib
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

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


class NotCanonicalOrder(ValueError):
    """Members arrive out of the canonical order, so the digest would depend on it;
    ``repeated`` when the path is the previous one's."""

    def __init__(self, message: str, repeated: bool = False) -> None:
        super().__init__(message)
        self.repeated = repeated


def shown(path: bytes) -> str:
    return path.decode("utf-8", "backslashreplace")


def canonical_key(path: bytes) -> bytes:
    """The sort key of a normalized path in the canonical order (GNU tar ``--sort=name``:
    depth first, names compared as bytes): the path with each ``/`` made a NUL byte, which
    sorts below every byte a name may hold (the tar parser refuses names with NUL bytes),
    so comparing keys compares the paths component by component."""
    return path.replace(b"/", b"\0")


class CanonicalOrder:
    """Checks that normalized paths come in strictly increasing canonical order."""

    def __init__(self) -> None:
        self._previous: Optional[bytes] = None  # the last path's key
        self._previous_path = b""

    def advance(self, path: bytes) -> bytes:
        """Take the next path; return its key or raise NotCanonicalOrder."""
        key = canonical_key(path)
        if self._previous is not None and key <= self._previous:
            raise NotCanonicalOrder(
                "member %s comes after %s: the archive is not in the order GNU tar --sort=name "
                "writes, so it was not written by persist.docker" % (shown(path) or ".", shown(self._previous_path) or "."),
                repeated=key == self._previous,
            )
        self._previous = key
        self._previous_path = path
        return key


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
    if b".." in parts:
        raise ValueError("'..' path component")
    if b"" in parts or b"." in parts:
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


class _RegularFiles:
    """The paths of the regular files approved so far, which arrive in canonical order, held
    in blocks of about BLOCK bytes, found by their first keys: the block being filled as a
    dict, the others compressed (sorted paths share long prefixes) or, when that leaves more
    than DIGEST bytes a path (names made not to compress, as a hostile archive's may be), as
    a keyed 16-byte digest of each path. So a path costs at most about DIGEST bytes however it
    is named; a lookup costs at most one block's decompression (the last one is kept)."""

    BLOCK = 1 << 12  # 4 KiB: a lookup decompresses and searches about 100 paths, in 4 to 16 microseconds here
    DIGEST = 16

    def __init__(self) -> None:
        self._first_keys: List[bytes] = []
        # (hashed, data): the digests of the block's paths one after the other, or zlib of NUL
        # and the block's paths joined and ended by NULs.
        self._blocks: List[Tuple[bool, bytes]] = []
        self._filling: Dict[bytes, None] = {}
        self._filling_first = b""
        self._filling_bytes = 0
        self._cached: Tuple[int, bytes] = (-1, b"")
        # A key of this table alone: nobody can make two paths that share a digest.
        self._key = os.urandom(16)

    def _digest(self, path: bytes) -> bytes:
        return hashlib.blake2b(path, digest_size=self.DIGEST, key=self._key).digest()

    def add(self, path: bytes, key: bytes) -> None:
        if not self._filling:
            self._filling_first = key
        self._filling[path] = None
        self._filling_bytes += len(path) + 1
        if self._filling_bytes >= self.BLOCK:
            packed = zlib.compress(b"\0" + b"\0".join(self._filling) + b"\0", 1)
            if len(packed) > self.DIGEST * len(self._filling):
                self._blocks.append((True, b"".join([self._digest(each) for each in self._filling])))
            else:
                self._blocks.append((False, packed))
            self._first_keys.append(self._filling_first)
            self._filling = {}
            self._filling_bytes = 0

    def __contains__(self, path: bytes) -> bool:
        key = canonical_key(path)
        if self._filling and key >= self._filling_first:
            return path in self._filling
        index = bisect.bisect_right(self._first_keys, key) - 1
        if index < 0:
            return False
        hashed, data = self._blocks[index]
        if hashed:
            digest = self._digest(path)
            found = data.find(digest)
            while found >= 0 and found % self.DIGEST:  # a match across two digests does not count
                found = data.find(digest, found + 1)
            return found >= 0
        if self._cached[0] != index:
            self._cached = (index, zlib.decompress(data))
        return b"\0" + path + b"\0" in self._cached[1]


class SafetyChecker:
    """Feed each member with ``check(member)``; it raises UnsafeMember on the first offence,
    and NotCanonicalOrder when members are not in the canonical order.

    ``allow_special`` admits device nodes, FIFOs, setuid/setgid bits and extended attributes
    that grant privileges (file capabilities and the like, see PRIVILEGED_XATTRS). Absolute
    symlink targets are allowed: they point into the file system of the container that mounts the
    volume, and restore never follows them.
    """

    def __init__(self, allow_special: bool = False) -> None:
        self.allow_special = allow_special
        self._order = CanonicalOrder()
        # The members that are parents of the last one, and the last one, from the root down,
        # as (key + NUL, path, kind): the root's first field is b"", a prefix of every key.
        self._chain: List[Tuple[bytes, bytes, str]] = []
        self._files = _RegularFiles()

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
        try:
            key = self._order.advance(path)
        except NotCanonicalOrder as exc:
            if not exc.repeated:
                raise
            previous_kind = self._chain[-1][2]  # the previous member, the one repeated
            if previous_kind != member.kind:
                raise UnsafeMember(name, "appears twice, first as a %s, then as a %s" % (previous_kind, member.kind))
            raise UnsafeMember(name, "appears twice in the archive")
        self._check_parent(key, name)
        self._check_kind(member, path, name)
        self._chain.append((key + b"\0" if path else b"", path, member.kind))
        if member.kind == "file":
            self._files.add(path, key)
        return path

    def _check_names(self, path: bytes, name: str) -> None:
        if len(path) > PATH_MAX:
            raise UnsafeMember(name[:80] + "...", "path longer than %d bytes" % PATH_MAX)
        if len(path) > NAME_MAX and any(len(part) > NAME_MAX for part in path.split(b"/")):
            raise UnsafeMember(name, "a path component is longer than %d bytes" % NAME_MAX)
        if path.startswith(RESERVED_PREFIX):  # the first name of the path: the prefix holds no "/"
            raise UnsafeMember(name, "names starting with .persist- at the volume root are reserved for restore staging")

    def _check_parent(self, key: bytes, name: str) -> None:
        """Drop the members that are not parents of this one from the chain; the nearest
        parent left must be a directory (the ones above it were checked when it came)."""
        chain = self._chain
        while chain and not key.startswith(chain[-1][0]):
            chain.pop()
        if chain and chain[-1][2] != "dir":
            parent, kind = chain[-1][1], chain[-1][2]
            if kind == "symlink":
                raise UnsafeMember(name, "its parent %s is a symlink in the archive (extraction would follow it)" % shown(parent))
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
            if target not in self._files:
                raise UnsafeMember(name, "hard link to %s, which is not a regular file that comes earlier in the archive" % shown(target))
