# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Staged swaps into a volume, and what the next run does with those a killed run left.

A restore or copy fills ``.persist-staging-TOKEN`` inside the target volume, checks it, and
swaps it in under a journal (see _tar_commands._SWAP_SCRIPT). Before anything is written,
a record of the run (a container named ``persist-swap-<volume>`` that is never started,
labelled with the token, the mode and a secret) is created on the engine; it is removed
once the swap is complete or the staging tree is gone. The volume's reserved names are
untrusted (_journal), so a later run acts on them only through that record.

``commit`` objects (the operation's Consistency guard, or NO_GUARD) give ``before_commit()``,
called before the swap, and ``hold(volume)``, called when a swap stays half done, so that
the containers of that volume are not started on a mix of two trees.
"""

from __future__ import annotations

import binascii
import os
import re
import time
from contextlib import closing

from ansible_collections.persist.docker.plugins.module_utils._docker_api import NameTaken
from ansible_collections.persist.docker.plugins.module_utils._errors import PersistError, ReservedEntries
from ansible_collections.persist.docker.plugins.module_utils._journal import JOURNAL, OLD_PREFIX, STAGING_PREFIX, ReservedState, plan_recovery, valid_token
from ansible_collections.persist.docker.plugins.module_utils._ownership import owner_is_gone, owner_token
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import (
    VOLUME_MOUNT,
    clean_command,
    discard_command,
    reserved_state_command,
    swap_command,
)
from ansible_collections.persist.docker.plugins.module_utils._text import counted
from ansible_collections.persist.docker.plugins.module_utils._volume_spec import per_volume_name

RECORD_PREFIX = "persist-swap-"
RECORD_LABEL = "persist.docker.swap"
TOKEN_LABEL = "persist.docker.swap.token"
MODE_LABEL = "persist.docker.swap.mode"
SECRET_LABEL = "persist.docker.swap.secret"
SWAP_OWNER_LABEL = "persist.docker.swap.owner"
CREATED_LABEL = "persist.docker.swap.created"
# "true" when the task allowed special files: finishing the swap may then keep a setgid root.
SPECIAL_LABEL = "persist.docker.swap.special"
_SECRET = re.compile(r"\A[0-9a-f]{64}\Z")


class _NoGuard:
    """The commit object of a swap that no container can be affected by (a scratch volume)."""

    def before_commit(self):
        pass

    def hold(self, volume):
        pass


NO_GUARD = _NoGuard()


def record_name(volume):
    return per_volume_name(RECORD_PREFIX, volume)


def read_record(engine, volume):
    """The engine's record of a staged run into ``volume`` as {token, mode, secret}, or None
    (also when its labels are not what this collection writes)."""
    labels = engine.helpers.marker_labels(record_name(volume))
    if labels is None or labels.get(RECORD_LABEL) != volume:
        return None
    record = dict(
        token=labels.get(TOKEN_LABEL), mode=labels.get(MODE_LABEL), secret=labels.get(SECRET_LABEL) or "",
        special=labels.get(SPECIAL_LABEL) == "true",
    )
    if not valid_token(record["token"]) or record["mode"] not in ("replace", "merge") or not _SECRET.match(record["secret"]):
        return None
    return record


def _forget_record(engine, volume):
    """Best effort: a record without staging trees or journal is removed by the next run."""
    try:
        engine.helpers.remove_marker(record_name(volume))
    except PersistError:
        pass


def reserved_state(engine, volume):
    """The ReservedState of ``volume`` (read by a read-only helper)."""
    what = "looking for interrupted restores and copies in volume %s" % volume
    with closing(engine.helpers.stream_output(reserved_state_command(), {volume: VOLUME_MOUNT}, what)) as chunks:
        return ReservedState.parse(b"".join(chunks))


def stage_and_swap(engine, target, stage, mode, commit, *, special=False, check_staged=None):
    """Call ``stage(token)``, which fills ``.persist-staging-TOKEN`` inside volume ``target``,
    then ``check_staged(token)`` (may raise) and ``commit.before_commit()``, then swap the
    staged tree in (``mode`` replace or merge) under the journal. Any failure before the swap
    removes the staging tree and leaves the volume's entries as they were; a failure during
    the swap leaves a journal and the engine's record, which the next run follows to the end
    (and ``commit.hold(target)`` keeps the containers of ``target`` stopped meanwhile).
    ``special``: the swap may keep setuid/setgid bits (allow_special)."""
    token = binascii.hexlify(os.urandom(6)).decode("ascii")
    secret = binascii.hexlify(os.urandom(32)).decode("ascii")
    labels = {
        RECORD_LABEL: target, TOKEN_LABEL: token, MODE_LABEL: mode, SECRET_LABEL: secret,
        SWAP_OWNER_LABEL: owner_token(), CREATED_LABEL: str(int(time.time())), SPECIAL_LABEL: "true" if special else "false",
    }
    what = "staging a restore into volume %s" % target
    try:
        engine.helpers.create_marker(record_name(target), labels, what)
    except NameTaken:
        if not _stale_record(engine, target):
            raise _record_in_the_way(target)
        _forget_record(engine, target)
        try:
            engine.helpers.create_marker(record_name(target), labels, what)
        except NameTaken:
            raise _record_in_the_way(target)
    volumes = {target: VOLUME_MOUNT}
    try:
        stage(token)
        if check_staged is not None:
            check_staged(token)
        commit.before_commit()
    except BaseException:
        try:
            engine.helpers.run_with_input(clean_command(token), volumes, [], "removing the staging tree from volume %s" % target)
            _forget_record(engine, target)
        except Exception:  # the original error matters more; the next run cleans up (the record says how)
            pass
        raise
    try:
        engine.helpers.run_with_input(
            swap_command(token, mode, secret), volumes, [], "swapping the staged tree into volume %s" % target, special=special)
    except BaseException as exc:
        commit.hold(target)
        if isinstance(exc, PersistError):
            exc.msg = (
                "%s The swap into volume %s stopped part way: the volume holds a mix of its old and new "
                "entries, and its journal says how far the swap got. Run the task again to finish it; "
                "containers that use the volume stay stopped until then." % (exc.msg.rstrip("."), target))
        raise
    _forget_record(engine, target)


def _stale_record(engine, volume):
    """Whether the engine's record of a staged run into ``volume`` is one a killed run left
    after its swap ended (or before its staging began): its owner is a process of this host
    that is gone, and the volume holds no journal and no tree of its token. Such a record is
    removed; any other stops the run."""
    labels = engine.helpers.marker_labels(record_name(volume))
    record = read_record(engine, volume)
    if labels is None or record is None or not owner_is_gone(labels.get(SWAP_OWNER_LABEL)):
        return False
    entries = reserved_state(engine, volume).entries
    return not any(name in entries for name in (JOURNAL, STAGING_PREFIX + record["token"], OLD_PREFIX + record["token"]))


def _record_in_the_way(target):
    return ReservedEntries(
        "The engine holds the record of another staged restore or copy into volume %s (container %s), "
        "which the recovery of this run did not clear. Run the task again; if it persists, another run "
        "is working on the volume outside the lock." % (target, record_name(target)),
        volume_name=target,
    )


def recover(engine, volume, commit, check_mode, recovery, actions, state=None):
    """Act on the reserved entries of ``volume`` (an existing target of a restore or copy):
    finish our swap that a killed run left half done, remove our staging trees of runs killed
    before their swap, and with ``recovery`` V(discard) give foreign reserved entries visible
    names. Appends what it does (or would do) to ``actions``. Returns (finished, warnings,
    state): ``state`` is the volume's ReservedState when nothing was to be done, else None.
    A ``state`` given is the volume's, read under the caller's lock; else it is read here.

    Raises ReservedEntries for a journal this collection cannot prove it wrote (unless
    ``recovery`` is discard): nothing is done to the volume, and its containers that a killed
    run left stopped stay stopped (``commit.hold``)."""
    if state is None:
        state = reserved_state(engine, volume)
    record = read_record(engine, volume)
    plan = plan_recovery(state, record)
    volumes = {volume: VOLUME_MOUNT}
    warnings = []
    if plan.foreign_journal and recovery != "discard":
        commit.hold(volume)
        raise foreign_journal_error(volume, plan, target=True)
    if plan.finish:
        actions.append("finish the interrupted swap into volume %s (its journal and the engine's record match)" % volume)
        if not check_mode:
            phase, stamp = plan.finish
            try:
                engine.helpers.run_with_input(
                    swap_command(record["token"], record["mode"], record["secret"], phase, stamp), volumes, [],
                    "finishing an interrupted swap into volume %s" % volume, special=record["special"])
            except BaseException:
                commit.hold(volume)
                raise
    if plan.own:
        actions.append("remove the staging tree of an interrupted restore or copy from volume %s" % volume)
        if not check_mode:
            engine.helpers.run_with_input(clean_command(plan.own), volumes, [], "removing leftovers of an interrupted run from volume %s" % volume)
    if plan.foreign:
        if recovery == "discard":
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            actions.append("give %s that this collection did not write visible names (persist-discarded-%s-...): %s" % (
                counted(len(plan.foreign), "reserved entry", "reserved entries"), stamp, ", ".join(plan.foreign)))
            if not check_mode:
                engine.helpers.run_with_input(discard_command(stamp, plan.foreign), volumes, [], "moving foreign reserved entries in volume %s" % volume)
        else:
            warnings.append(foreign_entries_warning(volume, plan.foreign))
    if (plan.forget_record or (plan.foreign_journal and record is not None)) and not check_mode:
        _forget_record(engine, volume)
    return bool(plan.finish), warnings, None if plan.needed else state


def check_source(engine, volume, commit, *, check_mode, recovery, actions, operation):
    """Reserved entries of ``volume`` before it is read (backup, copy source): refuse a volume
    in the middle of our swap (a mix of two trees), and one with a journal this collection
    cannot prove it wrote, unless ``recovery`` is discard (then, as for other foreign reserved
    entries, they get visible names and are read with the rest). Returns warnings about
    foreign reserved entries left alone (reads leave reserved names out)."""
    state = reserved_state(engine, volume)
    if not state.entries:
        return []
    plan = plan_recovery(state, read_record(engine, volume))
    if plan.finish:
        commit.hold(volume)
        raise ReservedEntries(
            "Volume %s holds a restore or copy that was interrupted during its swap, so its contents are a mix "
            "of two trees. Run the interrupted task (persist.docker.volume_restore or persist.docker.volume_copy "
            "into %s) again to finish it, then %s it." % (volume, volume, operation),
            volume_name=volume,
        )
    if plan.foreign_journal and recovery != "discard":
        commit.hold(volume)
        raise foreign_journal_error(volume, plan, target=False)
    if plan.foreign and recovery == "discard":
        return recover(engine, volume, commit, check_mode, recovery, actions)[1]
    return [foreign_entries_warning(volume, plan.foreign)] if plan.foreign else []


def foreign_journal_error(volume, plan, target):
    """The ReservedEntries error for a journal nobody can vouch for; ``target``: the task
    writes the volume (a restore or copy), else it reads it (a backup or copy source)."""
    if target:
        way_out = (
            "To keep what they hold, back the volume up first with persist.docker.volume_backup and recovery: discard "
            "(it gives them visible names, persist-discarded-..., and backs them up; it deletes nothing). Then run this "
            "task with recovery: discard: it gives them visible names too, and mode replace then removes them with every "
            "other entry that is not in the source")
    else:
        way_out = (
            "Then run the task with recovery: discard: it gives the reserved entries visible names (persist-discarded-...) "
            "and backs them up with the rest; it deletes nothing. Restore the volume if they show it holds a mix of two trees")
    return ReservedEntries(
        "Volume %s holds a swap journal (%s) that this collection cannot prove it wrote: %s. A container that mounts "
        "the volume may have made it, or the engine's record of a real interrupted swap was removed (for example by "
        "'docker container prune'). Nothing was done, and the containers that use the volume were not started if a "
        "killed run had stopped them. Look at the reserved entries (%s). %s."
        % (volume, JOURNAL, plan.foreign_journal, ", ".join(plan.foreign), way_out),
        volume_name=volume, reserved_entries=plan.foreign,
    )


def foreign_entries_warning(volume, names):
    return (
        "Volume %s holds reserved entries that this collection did not write (%s); they were left alone. "
        "Names starting with .persist- at a volume's root are reserved for restore staging and are left out "
        "of backups; run with recovery: discard to give them visible names." % (volume, ", ".join(names)))
