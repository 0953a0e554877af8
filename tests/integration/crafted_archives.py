# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Archives written by hand (Python's tarfile) with sidecars that describe them correctly.

A sidecar starts as a copy of a real one written by volume_backup; its archive size and
sha256 are those of the crafted file and its tree digest is computed with the collection's
own TreeDigest where the members allow it. So a refusal of such an archive can only come
from what its members are, never from a checksum that does not match.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import sys
import tarfile

import zstandard

ROOT_MTIME = 1700000000


def member(name, kind=tarfile.REGTYPE, data=None, linkname="", mode=None, uid=0, gid=0, mtime=ROOT_MTIME, devmajor=0, devminor=0):
    """A (TarInfo, data) pair; ``name`` as GNU tar writes it (``./x``)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    # What GNU tar records: symlinks 0777, directories 0755, files 0644 unless told.
    info.mode = mode if mode is not None else {tarfile.SYMTYPE: 0o777, tarfile.DIRTYPE: 0o755}.get(kind, 0o644)
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = mtime
    info.devmajor, info.devminor = devmajor, devminor
    if data is not None:
        info.size = len(data)
    return info, data


def root(mode=0o755):
    return member(".", tarfile.DIRTYPE, mode=mode)


def tar_bytes(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def compress(data, compression):
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "none":
        return data
    raise ValueError(compression)


def _collection_digest():
    """The collection's own TarParser and TreeDigest (pure logic, importable without Ansible).

    Under pytest, Ansible's collection finder resolves ``ansible_collections``; elsewhere the
    directories of ANSIBLE_COLLECTIONS_PATH are put on sys.path.
    """
    try:
        from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarParser
    except ImportError:
        for directory in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
            if directory and directory not in sys.path:
                sys.path.append(directory)
        from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarParser
    from ansible_collections.persist.docker.plugins.module_utils._tree_digest import TreeDigest

    return TarParser, TreeDigest


def tree_digest(data):
    """(hexdigest, entries, bytes) of a tar stream by the collection's TreeDigest, or None
    when it refuses to compute one (a member it cannot normalize, an order it rejects)."""
    TarParser, TreeDigest = _collection_digest()
    digest = TreeDigest()
    parser = TarParser(digest)
    try:
        parser.feed(data)
        parser.close()
    except Exception:  # any refusal: the sidecar keeps the template's digest
        return None
    return digest.hexdigest(), digest.entries, digest.bytes


def read_sidecar(archive_path):
    with open(archive_path + ".json") as handle:
        return json.load(handle)


def write_sidecar(archive_path, metadata):
    with open(archive_path + ".json", "w") as handle:
        json.dump(metadata, handle, indent=2, sort_keys=True)


def describe(metadata, archive_path, tar_data=None):
    """``metadata`` (a real sidecar) made to describe the file at ``archive_path``."""
    metadata = copy.deepcopy(metadata)
    with open(archive_path, "rb") as handle:
        content = handle.read()
    metadata["archive"] = {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    if tar_data is not None:
        computed = tree_digest(tar_data)
        if computed is not None:
            metadata["tree"].update(digest=computed[0], entries=computed[1], bytes=computed[2])
            metadata["tree"].pop("fingerprint", None)
    return metadata


def write_backup(directory, stem, members, template, compression="zstd"):
    """Write ``members`` as archive ``directory/stem.tar.zst`` with a sidecar describing it."""
    data = tar_bytes(members)
    suffix = {"zstd": ".tar.zst", "none": ".tar"}[compression]
    path = os.path.join(str(directory), stem + suffix)
    with open(path, "wb") as handle:
        handle.write(compress(data, compression))
    metadata = dict(copy.deepcopy(template), compression=compression)
    write_sidecar(path, describe(metadata, path, data))
    return path


def flip_middle_byte(path):
    """Corrupt a file in place: one bit of its middle byte flipped."""
    with open(path, "r+b") as handle:
        middle = os.path.getsize(path) // 2
        handle.seek(middle)
        byte = handle.read(1)[0]
        handle.seek(middle)
        handle.write(bytes([byte ^ 0x10]))


def truncate(path):
    """Cut a file in place to two thirds of its size."""
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) * 2 // 3)
