# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Engine access for volumes: inspect, list, create, remove, who mounts what, usage.

A thin layer over the engine's facade (_docker_api) that turns its refusals into EngineError
naming the volume, and hands back plain dicts (see _volume_spec).
"""

from __future__ import annotations

from contextlib import closing

from ansible_collections.persist.docker.plugins.module_utils._errors import EngineError, EngineRefused
from ansible_collections.persist.docker.plugins.module_utils._storage import sharing
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import VOLUME_MOUNT, tar_create_command, usage_command
from ansible_collections.persist.docker.plugins.module_utils._tar_stream import TarParser
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import only_root
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import CURRENT_VERSION, TreeDigest
from ansible_collections.persist.docker.plugins.module_utils._usage import UsageTally
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import (
    bind_sources,
    describe_volume,
    mount_table,
)


class VolumeEngine:
    """Volume operations on one engine (``api``, an EngineAPI); ``helpers`` is a HelperRunner
    for reading data."""

    def __init__(self, api, helpers=None):
        self.api = api
        self.helpers = helpers

    def volume(self, name):
        """The description of volume ``name``, or None when it does not exist."""
        try:
            found = self.api.inspect_volume(name)
        except EngineRefused as exc:
            raise EngineError("Cannot inspect volume %s: %s" % (name, exc), volume_name=name)
        return None if found is None else describe_volume(found)

    def volumes(self, label_filters=None):
        """Descriptions of all volumes, or those carrying every label filter, sorted by name.

        Each filter is ``key`` (the label is set) or ``key=value``.
        """
        try:
            answer = self.api.volumes(label_filters or ())
        except EngineRefused as exc:
            raise EngineError("Cannot list volumes: %s" % exc)
        return sorted((describe_volume(entry) for entry in answer), key=lambda volume: volume["name"])

    def containers(self):
        """The engine's summaries of all containers, running or not."""
        try:
            return self.api.containers()
        except EngineRefused as exc:
            raise EngineError("Cannot list containers: %s" % exc)

    def mount_table(self):
        """{volume name: [containers that mount it]} over all containers, running or not."""
        return mount_table(self.containers())

    def bind_sources(self):
        """(container name, host path) of every bind mount of every container, running or not."""
        return bind_sources(self.containers())

    def storage_shared(self, described):
        """Why the storage of the volume ``described`` (existing or about to be created) is
        also another volume's or a host directory a container bind-mounts (a sentence), or None."""
        return sharing(described, self.volumes(), self.bind_sources())

    def users(self, name):
        """The containers, running or not, that mount volume ``name``."""
        return self.mount_table().get(name, [])

    def create(self, name, driver, driver_opts, labels):
        try:
            self.api.create_volume(name, driver, driver_opts, labels)
        except EngineRefused as exc:
            raise EngineError("Cannot create volume %s with driver %s: %s" % (name, driver, exc), volume_name=name)
        return self.volume(name)

    def remove(self, name):
        try:
            self.api.remove_volume(name)
        except EngineRefused as exc:
            raise EngineError(
                "Cannot remove volume %s: %s. If a container was created with it meanwhile, "
                "remove that container first." % (name, exc),
                volume_name=name,
            )

    def usage(self, name, include_reserved=True):
        """Entries and bytes of volume ``name``, counted by a read-only helper container;
        without ``include_reserved``, leftovers of restores (``.persist-*``) do not count."""
        tally = UsageTally()
        command = usage_command(include_reserved)
        with closing(self.helpers.stream_output(command, {name: VOLUME_MOUNT}, "measuring volume %s" % name)) as chunks:
            for chunk in chunks:
                tally.feed(chunk)
        return tally.result()

    def root_if_empty(self, name, version=CURRENT_VERSION):
        """The tree-digest record (of ``version``) of the root of volume ``name`` when it
        holds no entry (leftovers of restores, ``.persist-*``, are not read), else None;
        reads no further than its second entry."""
        with closing(self.helpers.stream_output(tar_create_command(), {name: VOLUME_MOUNT}, "reading volume %s" % name, bulk=True)) as chunks:
            return only_root(chunks, version)

    def tree_digest(self, name, excludes=(), version=CURRENT_VERSION):
        """The TreeDigest of volume ``name`` as it is now (reads every byte, writes nothing);
        ``excludes`` as for tar_create_command."""
        digest = TreeDigest(version=version)
        parser = TarParser(digest)
        command = tar_create_command(excludes)
        with closing(self.helpers.stream_output(command, {name: VOLUME_MOUNT}, "reading volume %s" % name, bulk=True)) as chunks:
            for chunk in chunks:
                parser.feed(chunk)
        parser.close()
        return digest
