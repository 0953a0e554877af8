# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The data moves of the volume module's ``recreate: migrate``: the data copied aside into a
temporary volume, the volume recreated with its new settings, the data copied back, each copy
verified (through the copy pipeline, _copy_pipeline)."""

from __future__ import annotations

import binascii
import os
import time

from ansible_collections.persist.docker.plugins.module_utils._consistency import Consistency
from ansible_collections.persist.docker.plugins.module_utils._container_policy import WRITES
from ansible_collections.persist.docker.plugins.module_utils._copy_pipeline import copy_between, remove_quietly
from ansible_collections.persist.docker.plugins.module_utils._copy_rules import MIGRATE_LABEL, aside_name
from ansible_collections.persist.docker.plugins.module_utils._errors import CopyError, EngineError, PersistError
from ansible_collections.persist.docker.plugins.module_utils._helper import HELPER_OWNER_LABEL
from ansible_collections.persist.docker.plugins.module_utils._options import ConsistencyOptions
from ansible_collections.persist.docker.plugins.module_utils._ownership import owner_token


def leftover_migrations(engine, name):
    """Temporary volumes that interrupted migrations of volume ``name`` left (names)."""
    return [volume["name"] for volume in engine.volumes(["%s=%s" % (MIGRATE_LABEL, name)])]


def migrate(engine, current, driver, driver_opts, labels):
    """Recreate volume ``current`` with new settings and its data.

    The data is copied aside into a temporary local volume (labelled MIGRATE_LABEL=name and
    with its owner) and verified; the volume is removed and created with the new settings
    (should the engine refuse them, with its old ones again); the data is copied back and
    verified against the original's tree; the temporary volume is removed. Any failure
    leaves the data in the volume or in the temporary volume, and the error names it.
    Returns what was done; raises EngineError when the engine refused the new settings
    (the volume is back as it was, data included).
    """
    name = current["name"]
    shared = engine.storage_shared(dict(name=name, driver=driver, driver_opts=driver_opts or {}))
    if shared:
        raise CopyError("Volume %s is not migrated to the new settings: %s. Nothing was changed." % (name, shared), volume_name=name)
    aside = aside_name(name, binascii.hexlify(os.urandom(4)).decode("ascii"))
    started = time.time()
    guard = Consistency(engine, [(name, WRITES), (aside, WRITES)], ConsistencyOptions(), False, "volume")
    with guard:
        engine.create(aside, "local", {}, {MIGRATE_LABEL: name, HELPER_OWNER_LABEL: owner_token()})
        try:
            there = copy_between(engine, name, engine, aside, mode="replace", allow_special=True, commit=guard)
        except BaseException as exc:
            remove_quietly(engine, aside)
            if isinstance(exc, PersistError):
                exc.msg = "Volume %s was not migrated: copying its data aside failed. %s Volume %s was not changed." % (name, exc.msg, name)
            raise
        refused = _recreate_and_copy_back(engine, current, aside, driver, driver_opts, labels, there, guard)
        try:
            engine.remove(aside)
        except PersistError as exc:
            raise CopyError(
                "Volume %s was migrated and verified, but the temporary volume %s could not be removed: %s. "
                "Remove it with persist.docker.volume (state: absent, force: true)." % (name, aside, exc.msg),
                volume_name=name, aside_volume=aside,
            )
    if refused is not None:
        raise EngineError(
            "%s. Volume %s was created again with its previous settings and its data was copied back "
            "and verified; nothing else was changed." % (refused.msg, name),
            volume_name=name,
        )
    return dict(
        aside_volume=aside, tree_digest=there["tree_digest"]["source"], entries=there["entries"],
        bytes=there["bytes"], duration_seconds=round(time.time() - started, 3),
    )


def _recreate_and_copy_back(engine, current, aside, driver, driver_opts, labels, there, guard):
    """The steps after which the only copy of the data may be the temporary volume; any
    failure is reported with its name. Returns the engine's refusal of the new settings."""
    name = current["name"]
    refused = None
    try:
        engine.remove(name)
        try:
            engine.create(name, driver, driver_opts, labels)
        except EngineError as exc:
            refused = exc
            engine.create(name, current["driver"], current["driver_opts"], current["labels"])
        back = copy_between(engine, aside, engine, name, mode="replace", allow_special=True, commit=guard)
        if back["comparable_digest"] != there["comparable_digest"]:
            raise CopyError("the copied-back tree differs from the original's (tree digest %s, was %s)" % (
                back["tree_digest"]["dest"], there["tree_digest"]["source"]))
    except Exception as exc:  # whatever failed (the engine gone too), say where the data is
        cause = exc.msg if isinstance(exc, PersistError) else "%s: %s" % (type(exc).__name__, exc)
        raise CopyError(
            "Migrating volume %s failed after its data was copied aside: %s The data is kept, verified, in "
            "volume %s (labelled %s=%s). Once the cause is fixed, copy it back with persist.docker.volume_copy "
            "(source: %s, dest: %s, create: true), then remove %s." % (name, cause.rstrip(".") + ".", aside, MIGRATE_LABEL, name, aside, name, aside),
            volume_name=name, aside_volume=aside,
        )
    return refused
