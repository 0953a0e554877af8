"""Archives for the unit tests: real GNU tar output of real trees, and crafted ones."""

import io
import os
import subprocess
import tarfile

from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarParser

GNU_TAR_CREATE = [
    "tar", "--format=posix", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls",
    "--sparse", "--sort=name", "--pax-option=delete=atime,delete=ctime",
]


def gnu_tar(directory):
    """The archive GNU tar writes of ``directory``, as the helper container writes it."""
    return subprocess.run(GNU_TAR_CREATE + ["-C", str(directory), "-cf", "-", "."], check=True, stdout=subprocess.PIPE).stdout


def gnu_untar(data, directory):
    os.makedirs(directory, exist_ok=True)
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "--same-owner", "-p", "-C", str(directory), "-xf", "-"],
        input=data, check=True,
    )


def crafted(*members, fmt=tarfile.PAX_FORMAT):
    """An archive from (TarInfo, content bytes or None) pairs, written by Python's tarfile."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for info, content in members:
            if content is not None:
                info.size = len(content)
            archive.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def info(name, kind=tarfile.REGTYPE, linkname="", mode=0o644, mtime=1700000000):
    entry = tarfile.TarInfo(name)
    entry.type = kind
    entry.linkname = linkname
    entry.mode = mode
    entry.mtime = mtime
    return entry


def feed(handler, data, chunk=65536):
    parser = TarParser(handler)
    for start in range(0, len(data), chunk):
        parser.feed(data[start:start + chunk])
    parser.close()
    return handler


class Recorder:
    """A parser handler that keeps every member and its logical content."""

    def __init__(self):
        self.members = []
        self.contents = {}
        self.ended = False

    def member_start(self, member):
        self.members.append(member)
        self.contents[member.path] = bytearray()

    def member_data(self, member, offset, data):
        content = self.contents[member.path]
        if len(content) < offset:
            content.extend(bytes(offset - len(content)))
        content.extend(data)

    def member_end(self, member):
        content = self.contents[member.path]
        if member.kind == "file" and len(content) < member.size:
            content.extend(bytes(member.size - len(content)))

    def archive_end(self):
        self.ended = True
