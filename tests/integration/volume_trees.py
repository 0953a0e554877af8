# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build trees on a volume's host Mountpoint and read them back, attribute by attribute.

The modules under test only ever see volumes through helper containers; these functions
work on ``/var/lib/docker/volumes/NAME/_data`` from the host to set up a tree and to check
what a module left there. Both sides of a comparison are read by the same function
(``snapshot``), so a difference is a difference in the volume, not in how it was read.
"""

from __future__ import annotations

import hashlib
import os
import stat

RESERVED_PREFIX = b".persist-"


class Entry(dict):
    """One entry of a snapshot; a dict so that assertion output shows every attribute."""


def _xattrs(path, follow):
    try:
        names = os.listxattr(path, follow_symlinks=follow)
    except OSError:
        return {}
    return {name: os.getxattr(path, name, follow_symlinks=follow) for name in sorted(names)}


def _content_hash(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def snapshot(root, with_root_times=False, skip_reserved=True):
    """Every entry below ``root`` (bytes paths relative to it; b"" is the root itself).

    Records type, permission bits (setuid, setgid, sticky included), numeric owner, size,
    nanosecond mtime, content sha256, symlink target, all xattrs (user, security, ACLs),
    and hard-link identity: the sorted names of the file's inode group within the tree.
    The root's mtime and xattrs are left out unless ``with_root_times`` (the restore
    documents that it does not restore the root's xattrs, and staging changes its times).
    ``skip_reserved`` leaves out ``.persist-*`` names at the root, which restore uses.
    ``blocks`` (512-byte units allocated) is recorded apart, under the key "blocks", so
    callers can check sparseness without requiring equal allocation.
    """
    root = os.fsencode(str(root))
    entries = {}
    inodes = {}
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        relative_dir = os.path.relpath(directory, root)
        relative_dir = b"" if relative_dir == b"." else relative_dir
        if relative_dir == b"" and skip_reserved:
            dirnames[:] = [name for name in dirnames if not name.startswith(RESERVED_PREFIX)]
            filenames = [name for name in filenames if not name.startswith(RESERVED_PREFIX)]
        dirnames.sort()
        names = [b""] if relative_dir == b"" else []
        names += [os.path.join(relative_dir, name) for name in sorted(dirnames + filenames)]
        for relative in names:
            if relative in entries:
                continue
            full = os.path.join(root, relative) if relative else root
            info = os.lstat(full)
            entry = Entry(
                type=stat.S_IFMT(info.st_mode),
                mode=oct(stat.S_IMODE(info.st_mode)),
                uid=info.st_uid,
                gid=info.st_gid,
            )
            if stat.S_ISREG(info.st_mode):
                entry.update(size=info.st_size, sha256=_content_hash(full), blocks=info.st_blocks)
                inodes.setdefault(info.st_ino, []).append(relative)
                entry["inode"] = info.st_ino
            elif stat.S_ISLNK(info.st_mode):
                entry["target"] = os.readlink(full)
            elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
                entry["rdev"] = (os.major(info.st_rdev), os.minor(info.st_rdev))
            if relative or with_root_times:
                entry["mtime_ns"] = info.st_mtime_ns
                entry["xattrs"] = _xattrs(full, follow=False) if not stat.S_ISLNK(info.st_mode) else {}
            entries[relative] = entry
    for entry in entries.values():
        inode = entry.pop("inode", None)
        if inode is not None:
            entry["links"] = tuple(sorted(inodes[inode]))
    return entries


def comparable(entries):
    """``snapshot`` without the allocation figures: what must be equal after a round trip."""
    return {path: Entry((key, value) for key, value in entry.items() if key != "blocks") for path, entry in entries.items()}


def differences(expected, actual, limit=20):
    """Readable differences between two snapshots (empty when equal)."""
    lines = []
    expected, actual = comparable(expected), comparable(actual)
    for path in sorted(set(expected) | set(actual)):
        shown = path.decode("utf-8", "backslashreplace") or "."
        if path not in actual:
            lines.append("missing %r: %r" % (shown, expected[path]))
        elif path not in expected:
            lines.append("extra %r: %r" % (shown, actual[path]))
        elif expected[path] != actual[path]:
            keys = sorted(set(expected[path]) | set(actual[path]))
            changed = {key: (expected[path].get(key), actual[path].get(key)) for key in keys if expected[path].get(key) != actual[path].get(key)}
            lines.append("differs %r: %r" % (shown, changed))
        if len(lines) >= limit:
            lines.append("...")
            break
    return lines


def root_listing(root):
    """Names directly under ``root`` (bytes), reserved ones included."""
    return sorted(os.listdir(os.fsencode(str(root))))


def reserved_leftovers(root):
    return [name for name in root_listing(root) if name.startswith(RESERVED_PREFIX)]


def root_state(root):
    """The root directory's own stat fields that a refused restore must not change."""
    info = os.lstat(str(root))
    return dict(mode=oct(info.st_mode), uid=info.st_uid, gid=info.st_gid, mtime_ns=info.st_mtime_ns, ctime_ns=info.st_ctime_ns)


# -- building trees ----------------------------------------------------------------------


def write_file(path, content=b"", sparse=None, size=None):
    """A regular file with ``content``; with ``sparse`` [(offset, data), ...] and ``size``,
    a file with holes everywhere else."""
    with open(path, "wb") as handle:
        if sparse is None:
            handle.write(content)
        else:
            handle.truncate(size)
            for offset, data in sparse:
                handle.seek(offset)
                handle.write(data)


def set_attributes(path, mode=None, uid=None, gid=None, mtime_ns=None, xattrs=None, symlink=False):
    """Owner, then mode (chown clears setuid), xattrs, and the mtime last."""
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid, follow_symlinks=not symlink)
    if mode is not None and not symlink:
        os.chmod(path, mode)
    for name, value in (xattrs or {}).items():
        os.setxattr(path, name, value, follow_symlinks=not symlink)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=not symlink)


def posix_acl(entries):
    """The raw value of a system.posix_acl_* xattr from (tag, permissions, id) triples.

    Tags: "user_obj", "user", "group_obj", "group", "mask", "other"; permissions 0-7.
    """
    tags = {"user_obj": 0x01, "user": 0x02, "group_obj": 0x04, "group": 0x08, "mask": 0x10, "other": 0x20}
    value = (2).to_bytes(4, "little")
    for tag, permissions, identifier in entries:
        identifier = 0xFFFFFFFF if identifier is None else identifier
        value += tags[tag].to_bytes(2, "little") + permissions.to_bytes(2, "little") + identifier.to_bytes(4, "little")
    return value


def file_capability(permitted_bits):
    """The raw value of security.capability (revision 2, effective) granting ``permitted_bits``."""
    magic = 0x02000000 | 0x000001
    words = [magic, permitted_bits & 0xFFFFFFFF, 0, permitted_bits >> 32, 0]
    return b"".join(word.to_bytes(4, "little") for word in words)


def fill_random(root, name, size, seed=0):
    """An incompressible file of ``size`` bytes (written in 1 MiB pieces)."""
    path = os.path.join(str(root), name)
    with open(path, "wb") as handle:
        left = size
        while left:
            step = min(left, 1 << 20)
            handle.write(os.urandom(step))
            left -= step
    return path


def capture(root):
    """Everything a refused restore must leave as it was: every entry (reserved names too)
    with the root's own times, and the root directory's stat."""
    return dict(
        tree=comparable(snapshot(root, with_root_times=True, skip_reserved=False)),
        root=root_state(root),
        listing=root_listing(root),
    )


def seed_target(root):
    """A small tree standing for the data a refused restore must not touch."""
    root = str(root)
    write_file(os.path.join(root, "precious.db"), b"the only copy")
    os.mkdir(os.path.join(root, "etc"))
    write_file(os.path.join(root, "etc", "config"), b"key=value\n")
    os.symlink("etc/config", os.path.join(root, "config-link"))
