# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The volume_copy operation: volume -> volume, on one engine or across two, through the
copy pipeline (_copy_pipeline), with the live-container policy and locks on both volumes."""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Optional

from ansible_collections.persist.docker.plugins.module_utils._connection import connect
from ansible_collections.persist.docker.plugins.module_utils._consistency import Consistency
from ansible_collections.persist.docker.plugins.module_utils._container_policy import READS, WRITES, consistency_method
from ansible_collections.persist.docker.plugins.module_utils._copy_pipeline import compare_volumes, copy_between, reading, remove_quietly
from ansible_collections.persist.docker.plugins.module_utils._copy_rules import comparable, destination_settings
from ansible_collections.persist.docker.plugins.module_utils._engine import VolumeEngine
from ansible_collections.persist.docker.plugins.module_utils._errors import CopyError, VolumeMissing
from ansible_collections.persist.docker.plugins.module_utils._helper import HelperRunner
from ansible_collections.persist.docker.plugins.module_utils._options import Connection, ConsistencyOptions, Helper, Params, WriteOptions
from ansible_collections.persist.docker.plugins.module_utils._prefetch import InBackground
from ansible_collections.persist.docker.plugins.module_utils._swap import check_source, recover, reserved_state
from ansible_collections.persist.docker.plugins.module_utils._tree_compare import TreeDifferences, only_root


@dataclass(frozen=True)
class CopyOptions:
    """The options of volume_copy (see the module's documentation). ``connection`` is the
    source's engine; ``dest_connection`` the destination's when dest_docker_host is set."""

    source: str
    dest: str
    connection: Connection
    helper: Helper
    consistency: ConsistencyOptions
    write: WriteOptions = WriteOptions()
    dest_connection: Optional[Connection] = None
    copy_when: str = "different"

    @classmethod
    def from_params(cls, params: Params) -> "CopyOptions":
        return cls(
            source=params["source"], dest=params["dest"], connection=Connection.from_params(params),
            helper=Helper.from_params(params), consistency=ConsistencyOptions.from_params(params),
            dest_connection=Connection.from_params(params, "dest_") if params.get("dest_docker_host") else None,
            write=WriteOptions.from_params(params, "dest_"), copy_when=params["copy_when"],
        )


def _destination_engine(engine, options):
    """(engine of the destination, whether it is another engine than the source's)."""
    if options.dest_connection is None:
        return engine, False
    api = connect(options.dest_connection)
    source_identity = engine.api.identity()
    if source_identity is not None and source_identity == api.identity():
        api.close()
        return engine, False
    return VolumeEngine(api, HelperRunner(api, options.helper)), True


def _guards(engine, dest_engine, cross, options, check_mode):
    """The Consistency guards: one for both volumes on one engine, else one per engine (the
    pre- and post-commands run on the source's engine), entered in a fixed order."""
    source, dest, consistency = options.source, options.dest, options.consistency
    if not cross:
        return [Consistency(engine, [(source, READS), (dest, WRITES)], consistency, check_mode, "volume_copy")]
    keyed = [
        ((options.connection.docker_host, source), Consistency(engine, [(source, READS)], consistency, check_mode, "volume_copy")),
        ((options.dest_connection.docker_host, dest),
         Consistency(dest_engine, [(dest, WRITES)], consistency.without_commands(), check_mode, "volume_copy")),
    ]
    return [guard for _key, guard in sorted(keyed, key=lambda pair: pair[0])]


def _report(guards):
    """The consistency, lock and hooks results of all guards as one."""
    if len(guards) == 1:
        return guards[0].report()
    reports = [guard.report() for guard in guards]
    acquired = [report["lock"]["acquired_at"] for report in reports if report["lock"]["acquired_at"] is not None]
    released = [report["lock"]["released_at"] for report in reports if report["lock"]["released_at"] is not None]
    return {
        "consistency": {
            "method": consistency_method([entry for guard in guards for entry in guard.entries]),
            "containers": [entry for report in reports for entry in report["consistency"]["containers"]],
            "restarted_after_interrupted_run": [
                entry for report in reports for entry in report["consistency"]["restarted_after_interrupted_run"]
            ],
        },
        "lock": {
            "names": [name for report in reports for name in report["lock"]["names"]],
            "waited_seconds": max(report["lock"]["waited_seconds"] for report in reports),
            "broken": [broken for report in reports for broken in report["lock"]["broken"]],
            "acquired_at": min(acquired) if acquired else None,
            "released_at": max(released) if released else None,
        },
        "hooks": [hook for report in reports for hook in report["hooks"]],
    }


def copy(engine, options, check_mode):
    """Copy volume ``options.source`` to ``options.dest`` (a CopyOptions)."""
    source, dest = options.source, options.dest
    dest_engine, cross = _destination_engine(engine, options)
    if not cross and source == dest:
        raise CopyError(
            "source and dest are the same volume %s on the same engine; a volume is not copied onto "
            "itself. Name another dest, or set dest_docker_host to copy it to another engine." % source,
            volume_name=source,
        )
    described = engine.volume(source)
    if described is None:
        raise VolumeMissing(
            "Volume %s does not exist, so there is nothing to copy. Check source "
            "(persist.docker.volume_info lists the volumes)." % source,
            volume_name=source,
        )
    guards = _guards(engine, dest_engine, cross, options, check_mode)
    with ExitStack() as stack:
        if cross:
            stack.callback(dest_engine.helpers.close)
        for guard in guards:
            stack.enter_context(guard)
        result = _copy_quiet(engine, described, dest_engine, cross, options, check_mode, guards)
        for guard in guards:
            guard.result = result
    result.update(_report(guards))
    result["transport"] = engine.helpers.transport()
    if cross:
        result["dest_transport"] = dest_engine.helpers.transport()
        if dest_engine.helpers.reaped:
            result["dest_reaped_helpers"] = dest_engine.helpers.reaped
    return result


def _dest_to_create(described, dest_engine, options):
    """(driver, driver_opts, labels, taken_from) of the missing destination; CopyError when
    settings taken from the source would mount existing storage (a bind, device or share, or
    a plugin's options), or when the storage would be another volume's or in use."""
    dest = options.dest
    driver, driver_opts, labels, taken_from, problem = destination_settings(
        described, options.write.new_volume.driver, options.write.new_volume.driver_opts, options.write.new_volume.labels)
    problem = problem or dest_engine.storage_shared(dict(name=dest, driver=driver, driver_opts=driver_opts))
    if problem:
        raise CopyError(
            "Volume %s is not created with %s: %s. Give dest_driver_opts for storage of its own (or dest_driver), "
            "or create volume %s first. Nothing was changed." % (dest, taken_from, problem, dest),
            volume_name=dest,
        )
    return driver, driver_opts, labels, taken_from


class _Commit:
    """The commit object of a copy (see _swap): every guard must agree before the swap, and
    a volume left half swapped is held by each of them."""

    def __init__(self, guards):
        self.guards = guards

    def before_commit(self):
        for guard in self.guards:
            guard.before_commit()

    def hold(self, volume):
        for guard in self.guards:
            guard.hold(volume)


def _copy_quiet(engine, described, dest_engine, cross, options, check_mode, guards):
    """The copy proper, while the containers in the way are stopped."""
    source, dest, mode, when = options.source, options.dest, options.write.mode, options.copy_when
    dest_host = options.dest_connection.docker_host if cross else None
    result = dict(
        changed=False, source=source, dest=dest, dest_docker_host=dest_host,
        created=False, actions=[action for guard in guards for action in guard.actions],
        finished_interrupted=False, skipped_reason=None, verified=False,
    )
    commit = _Commit(guards)
    recovery = options.consistency.recovery
    current = dest_engine.volume(dest)
    dest_state = None
    if current is not None and (cross or engine.helpers.transport_known()):
        # The destination's reserved names are listed while the source's are looked at; on
        # one engine only once the transport is decided (the first short helper of a run
        # carries the fast path's proof, see _helper, and only one may).
        dest_state = InBackground(lambda: reserved_state(dest_engine, dest), name="persist-listing")
    try:
        result["warnings"] = check_source(engine, source, commit, check_mode=check_mode, recovery=recovery, actions=result["actions"],
                                          operation="copy")
    finally:
        if dest_state is not None:
            dest_state.settle()
    planned = len(result["actions"])
    settings = state = None
    if current is None:
        if not options.write.create:
            raise VolumeMissing(
                "Volume %s does not exist and create is false. Create it first, or set create: true "
                "to create it with the driver, options and labels of volume %s (or dest_driver, "
                "dest_driver_opts and dest_labels)." % (dest, source),
                volume_name=dest,
            )
        settings = _dest_to_create(described, dest_engine, options)
    else:
        reason = dest_engine.storage_shared(current)
        if reason:
            raise CopyError("Volume %s is not written by volume_copy: %s. Writing it would change the other's files under it. "
                            "Nothing was changed." % (dest, reason), volume_name=dest)
        finished, warnings, state = recover(dest_engine, dest, commit, check_mode, recovery, result["actions"],
                                            dest_state.result() if dest_state is not None else None)
        result["finished_interrupted"] = finished
        result["warnings"].extend(warnings)

    started = time.time()
    compare_dest = current is not None and when == "different" and not (check_mode and result["finished_interrupted"])
    empty_root = None
    if compare_dest and not check_mode:
        # The listing of the reserved names gave the root of an empty dest, unless the
        # recovery changed something since.
        if state is None:
            empty_root = dest_engine.root_if_empty(dest)
        elif state.root is not None:
            empty_root = only_root([state.root])
    differences = TreeDifferences()
    if (compare_dest and empty_root is None) or check_mode:
        # Check mode reads the source through the safety rules too, so that it predicts a refusal.
        with reading(source, "Nothing was changed in volume %s." % dest):
            differences, source_digest, dest_digest = compare_volumes(
                engine, source, dest_engine if compare_dest else None, dest, options.write.allow_special)
        result.update(
            tree_digest=dict(source=source_digest.hexdigest(), dest=dest_digest.hexdigest() if dest_digest else None),
            entries=source_digest.entries, bytes=source_digest.bytes,
        )
        if compare_dest and not _note_differences(result, differences, mode, source, dest, planned):
            return result

    if settings is not None:
        result["actions"].append("create volume %s with driver %s and %s" % (dest, settings[0], settings[3]))
    where = " on engine %s" % dest_host if cross else ""
    result["actions"].append("copy volume %s into volume %s%s (mode %s)" % (source, dest, where, mode))
    result["changed"] = True
    if check_mode:
        return result

    if settings is not None:
        dest_engine.create(dest, settings[0], settings[1], settings[2])
        result["created"] = True

    observe = check_staged = None
    if empty_root is not None:
        observe, check_staged = _noting_differences(result, differences, empty_root, mode, source, dest, planned)

    try:
        copied = copy_between(engine, source, dest_engine, dest, mode=mode, allow_special=options.write.allow_special, commit=commit,
                              observe=observe, check_staged=check_staged)
    except _NothingToCopy:
        result["actions"].pop()
        return result
    except BaseException:
        if result["created"]:
            # Created by this run for a copy that never happened: it holds nothing.
            remove_quietly(dest_engine, dest)
        raise
    result.update(copied, verified=True, duration_seconds=round(time.time() - started, 3))
    del result["comparable_digest"]
    return result


def _noting_differences(result, differences, empty_root, mode, source, dest, planned):
    """(observe, check_staged) for a copy into an empty dest, whose differences are the
    source's entries: noted as they are copied, and checked before the swap."""

    def observe(path, record):
        if path:
            differences.note("added", path)
        elif comparable(path, record) != comparable(path, empty_root):
            differences.note("changed", path)

    def check_staged(_token):
        if not _note_differences(result, differences, mode, source, dest, planned):
            raise _NothingToCopy()

    return observe, check_staged


class _NothingToCopy(Exception):
    """The staged copy would change nothing: it is discarded, not swapped in."""


def _note_differences(result, differences, mode, source, dest, planned):
    """Put ``differences`` into ``result``; True when the copy would change ``dest``, else
    the result says why it is skipped."""
    result.update(differences.report(mode))
    if differences.would_change(mode):
        return True
    result["skipped_reason"] = (
        "volume %s already equals volume %s" % (dest, source) if mode == "replace"
        else "volume %s already holds every entry of volume %s as it is there" % (dest, source)
    )
    result["changed"] = len(result["actions"]) > planned
    return False
