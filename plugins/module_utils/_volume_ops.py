# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The volume operation: read state, decide, act (outside check mode).

Decisions are made the same way in check mode and for real, so check mode predicts
``changed`` and the actions exactly. Nothing here removes a volume that holds data or
that a container references unless the caller said so explicitly.
"""

from __future__ import annotations

from ansible_collections.persist.docker.plugins.module_utils._errors import (
    CopyError,
    EngineError,
    VolumeConflict,
    VolumeInUse,
    VolumeNotEmpty,
)
from ansible_collections.persist.docker.plugins.module_utils._migrate import leftover_migrations, migrate
from ansible_collections.persist.docker.plugins.module_utils._text import counted
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import (
    describe_users,
    format_differences,
    missing_volume,
    stringify_options,
    valid_local_name,
    volume_differences,
)

_DIFF_KEYS = ("name", "driver", "driver_opts", "labels")


def _diff_view(volume):
    if not volume or not volume.get("exists"):
        return {}
    return dict((key, volume[key]) for key in _DIFF_KEYS)


def _result(changed, actions, before, after, **extra):
    result = dict(changed=changed, actions=actions, volume=after, diff=dict(before=_diff_view(before), after=_diff_view(after)))
    result.update(extra)
    return result


def _refuse_if_used(engine, name, doing):
    users = engine.users(name)
    if users:
        raise VolumeInUse(
            "Volume %s is used by %s: %s. Docker keeps a volume referenced until "
            "the container is removed, running or not; remove those containers before %s. "
            "Nothing was changed." % (name, counted(len(users), "container"), describe_users(users), doing),
            volume_name=name,
            containers=users,
        )


def _refuse_if_migrating(engine, name):
    """A temporary volume of a migration of ``name`` may hold its only complete data: never
    create, confirm or recreate ``name`` past it without the user looking."""
    leftovers = leftover_migrations(engine, name)
    if leftovers:
        raise CopyError(
            "Volume %s has the temporary volume(s) %s of a migration (recreate: migrate) that is "
            "still running or was interrupted; it may hold the only complete copy of the data of %s. "
            "If no migration runs: compare them (persist.docker.volume_copy with source %s, dest %s "
            "and check_mode: true lists the differences), copy it back if %s lacks data, then "
            "remove %s. Nothing was changed." % (name, ", ".join(leftovers), name, leftovers[0], name, name, ", ".join(leftovers)),
            volume_name=name,
            aside_volume=leftovers[0],
        )


def ensure_present(engine, name, driver, driver_opts, labels, recreate, check_mode):
    """Create volume ``name`` or confirm it matches; recreate it only if allowed, and only if
    empty unless ``recreate`` is ``migrate`` (then its data is carried over, see _migrate)."""
    if driver == "local" and not valid_local_name(name):
        raise EngineError(
            "Volume name %r is not valid for the local driver: it must start with a letter or "
            "digit, have at least two characters, and use only letters, digits, '_', '.' and '-'."
            % name,
            volume_name=name,
        )
    _refuse_if_migrating(engine, name)
    current = engine.volume(name)
    if current is None:
        wanted = _planned(name, driver, stringify_options(driver_opts) or {}, stringify_options(labels) or {})
        action = "create volume %s with driver %s" % (name, driver)
        after = wanted if check_mode else engine.create(name, driver, wanted["driver_opts"], wanted["labels"])
        return _result(True, [action], None, after, differences=[])

    differences = volume_differences(current, driver, driver_opts, labels)
    if not differences:
        return _result(False, [], current, current, differences=[])

    summary = format_differences(differences)
    if recreate == "never":
        raise VolumeConflict(
            "Volume %s exists with other settings than requested: %s. Docker cannot change a "
            "volume's driver, options or labels in place. Either change the task to match the "
            "volume, or set recreate: if_empty to recreate it when it holds no data, or "
            "recreate: migrate to recreate it and carry its data over."
            % (name, summary),
            volume_name=name,
            differences=differences,
        )

    _refuse_if_used(engine, name, "it can be recreated")
    usage = engine.usage(name)
    if not usage["empty"] and recreate != "migrate":
        raise VolumeNotEmpty(
            "Volume %s differs from the request (%s) but holds %s (%s), so it is "
            "not recreated: that would destroy its data. Set recreate: migrate to recreate it "
            "and carry its data over (copied aside, verified, copied back), or change the "
            "task to match the volume. Nothing was changed."
            % (name, summary, counted(usage["entries"], "entry", "entries"), counted(usage["bytes"], "byte")),
            volume_name=name,
            differences=differences,
            usage=usage,
        )

    same_driver = current["driver"] == driver
    new_opts = stringify_options(driver_opts)
    if new_opts is None:
        new_opts = current["driver_opts"] if same_driver else {}
    new_labels = dict(current["labels"])
    new_labels.update(stringify_options(labels) or {})
    wanted = _planned(name, driver, new_opts, new_labels)
    if not usage["empty"]:
        action = (
            "migrate volume %s (%s): copy its %s aside into a temporary volume, recreate it, copy "
            "them back and verify them, remove the temporary volume"
            % (name, summary, counted(usage["entries"], "entry", "entries"))
        )
        if check_mode:
            return _result(True, [action], current, wanted, differences=differences, usage=usage)
        migration = migrate(engine, current, driver, new_opts, new_labels)
        return _result(True, [action], current, engine.volume(name), differences=differences, usage=usage, migration=migration)
    action = "recreate empty volume %s (%s)" % (name, summary)
    after = wanted if check_mode else _recreate(engine, current, driver, new_opts, new_labels)
    return _result(True, [action], current, after, differences=differences, usage=usage)


def _recreate(engine, current, driver, driver_opts, labels):
    """Replace empty volume ``current`` by one with the new settings. Should the engine refuse
    them, the volume is put back as it was (it held no data), and the refusal reported."""
    name = current["name"]
    engine.remove(name)
    try:
        return engine.create(name, driver, driver_opts, labels)
    except EngineError as refused:
        engine.create(name, current["driver"], current["driver_opts"], current["labels"])
        raise EngineError(
            "%s. Volume %s was put back with its previous settings (it was empty); nothing "
            "else was changed." % (refused.msg, name),
            volume_name=name,
        )


def _planned(name, driver, driver_opts, labels):
    return dict(name=name, exists=True, driver=driver, driver_opts=driver_opts, labels=labels)


def ensure_absent(engine, name, force, check_mode):
    """Remove volume ``name``; refuse while containers reference it, or while it holds data
    unless ``force``."""
    current = engine.volume(name)
    if current is None:
        return _result(False, [], None, missing_volume(name))
    _refuse_if_used(engine, name, "removing the volume")
    extra = {}
    if not force:
        usage = engine.usage(name)
        extra["usage"] = usage
        if not usage["empty"]:
            raise VolumeNotEmpty(
                "Volume %s holds %s (%s); removing it would destroy that data. "
                "Back it up first with persist.docker.volume_backup, then set force: true to "
                "remove it. Nothing was removed." % (name, counted(usage["entries"], "entry", "entries"), counted(usage["bytes"], "byte")),
                volume_name=name,
                usage=usage,
            )
    if not check_mode:
        engine.remove(name)
    return _result(True, ["remove volume %s" % name], current, missing_volume(name), **extra)
