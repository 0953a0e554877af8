#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_restore
short_description: Restore a volume backup, verified first, staged, and swapped in atomically
version_added: 0.1.0
description:
  - Restores an archive written by M(persist.docker.volume_backup) into a named volume.
  - Verified first, before any container is stopped. The whole archive is read. Its sha256 must
    match its metadata sidecar, its tree digest must match, and every member must pass the safety
    rules. Absolute paths, C(..) components, symlinks whose relative target leaves the volume or has
    C(..) after a name, hard links to anything but an earlier regular file of the archive, paths
    through a symlink or file of the archive, duplicate names, names reserved for staging, and
    (unless O(allow_special=true)) device nodes, FIFOs, setuid/setgid bits and extended attributes
    that grant privileges (C(security.capability), C(trusted.*)) are refused. The whole archive is
    refused, the message names the member and the rule, and the volume is not touched. Archives
    and sidecars are untrusted input; see the collection's docs/security.md.
  - Only what was verified is written. Where the archive was read before the extraction (to compare
    it with the target), it is read a second time for the extraction, and each block of the file
    must be the one the first read saw; otherwise it is verified as it is extracted, and nothing
    staged is swapped in before the whole archive passed. GNU tar in the helper never sees the
    archive's own headers. The module re-writes every checked member with headers of its own (one
    extended header per member, written one way), so no header trick can make tar extract anything
    the checks did not see. The helper lacks the privileges (C(MKNOD), C(SETFCAP), C(FSETID)) to
    create what the rules refuse, unless O(allow_special=true).
  - Staged, read back, atomic. The archive is extracted into a staging directory inside the target
    volume. The staged tree is read back, and its tree digest must equal the archive's. Only then is
    it swapped in, by renames inside the volume, under a journal. A failure leaves the volume as it
    was. A run killed during the swap leaves a journal; the next run of this module on the volume
    finishes the swap. Staging trees of runs killed before their swap are removed by the next run.
    Both happen only where the engine holds this collection's record of that run (see O(recovery)).
  - Idempotent. With O(restore_when=different), the target's live tree is compared with the archive
    entry by entry, in the same pass as the verification, and nothing is done when they are equal;
    no container is stopped then.
  - Safe around live containers. By default it refuses a target that a running container mounts.
    With O(containers=stop) (or the label C(persist.docker.containers=stop) on each container) they
    keep running while the archive is verified and extracted into the hidden staging tree, are
    stopped for the read-back of that tree and the swap only, and are started again afterwards.
    Whatever they write into the staging tree meanwhile fails the read-back, and nothing is
    swapped in. A swap that stops part way keeps them stopped until a run finishes it.
    A running container sees the hidden C(.persist-staging-*) directory at its volume's root
    during the extraction; databases ignore it, but an application that acts on every new
    entry in its volume (a file-sync tool, a watched import folder) should be stopped before
    the task, so that the extraction happens while nothing runs.
  - Serialized. Two runs on the same volume never interleave; the second waits (O(lock_timeout)).
author:
  - persist.docker maintainers (@persist-docker)
extends_documentation_fragment:
  - persist.docker._docker.attributes
  - persist.docker._docker
  - persist.docker._docker.helper
  - persist.docker._docker.consistency
  - persist.docker._docker.decryption
attributes:
  check_mode:
    support: full
    details:
      - Verifies the archive and compares it with the target (in read-only helpers) and reports
        whether the restore would change the volume; writes nothing.
  diff_mode:
    support: full
    details:
      - Lists the entries that would be added, changed and removed (the first 50 of each, with counts).
  idempotent:
    support: full
  action_group:
    support: full
    membership:
      - persist.docker.docker
options:
  volume:
    description:
      - The volume to restore into.
    type: str
    required: true
    aliases: [name]
  src:
    description:
      - An archive (its sidecar C(ARCHIVE.json) beside it), or a backup directory, in which case the
        latest complete backup of O(source_volume) in it is restored.
    type: path
    required: true
  source_volume:
    description:
      - With a directory in O(src), whose backups to pick. Defaults to O(volume).
    type: str
  mode:
    description:
      - V(replace) makes the volume equal to the archive; entries not in the archive are removed.
      - V(merge) adds and replaces the archive's entries and keeps entries only the volume has.
    type: str
    choices: [replace, merge]
    default: replace
  restore_when:
    description:
      - V(different) restores only when the volume differs from the archive.
      - V(missing_or_empty) restores only into a missing or empty volume (disaster recovery that never
        overwrites data). On a volume that holds data it reads nothing and does nothing.
      - V(always) restores every time.
    type: str
    choices: [different, missing_or_empty, always]
    default: different
  create:
    description:
      - Create a missing volume. O(volume_driver), O(volume_driver_opts) and O(volume_labels) say
        how; where they are not given, it is created as the backup recorded it.
      - A backup's record never makes the restore mount existing storage. The sidecar is
        untrusted, since whoever can write the backup directory can write it. So recorded settings are
        used only when they give the volume storage of its own (the local driver, plain or
        V(tmpfs)). A recorded bind mount, device or network share, or a volume plugin, is refused
        with a message that names the option. Give O(volume_driver_opts) (and O(volume_driver))
        to create such a volume on purpose, or create it first.
      - When false, a missing volume is an error.
    type: bool
    default: true
  volume_driver:
    description:
      - Driver of the volume when it is created (O(create)). Defaults to the recorded driver.
    type: str
  volume_driver_opts:
    description:
      - Driver options of the volume when it is created (O(create)), for example a bind mount of a
        host directory. Defaults to the recorded options, which are used only when they mount no
        existing storage.
      - Whatever they mount must not be another volume's storage or a host directory that a
        container bind-mounts. The same holds for an existing target.
    type: dict
  volume_labels:
    description:
      - Labels of the volume when it is created (O(create)). Defaults to the recorded labels, less
        those of this collection's own temporary volumes (C(persist.docker.*)).
    type: dict
  allow_special:
    description:
      - Accept device nodes, FIFOs, setuid/setgid bits and extended attributes that grant privileges
        (file capabilities C(security.capability), C(security.SMACK64EXEC), C(security.SMACK64MMAP),
        C(trusted.*)) in the archive, and give the helper the privileges to create them.
    type: bool
    default: false
notes:
  - The data is on disk before the task reports success. While the helper extracts the staging
    tree it syncs the volume's file system every 0.3 seconds (C(sync -f), as the swap does at the
    end), so the disk writes while the data arrives; on a shared host this also writes out other
    programs' pending data on that file system sooner than the kernel would have.
  - Absolute symlink targets are restored as they are. They point into the file system of the
    container that mounts the volume, and the restore never follows them.
  - The volume root's owner and mode are restored; extended attributes and ACLs of the root
    directory itself are not.
  - Tree digests come in two versions. Backups of this version record version 2, in which holes
    of sparse files cost nothing. Archives with version 1 (older sidecars) keep verifying, but a
    version-1 digest refuses to hash more than 4 GiB of holes.
seealso:
  - module: persist.docker.volume_backup
  - module: persist.docker.backup_info
"""

EXAMPLES = r"""
- name: Bring back the latest backup of pgdata (nothing happens if the volume already equals it)
  persist.docker.volume_restore:
    volume: pgdata
    src: /srv/backups/pgdata

- name: Disaster recovery on a new host, never overwriting data
  persist.docker.volume_restore:
    volume: pgdata
    src: /srv/backups/pgdata
    restore_when: missing_or_empty

- name: Restore one archive into a new volume for inspection
  persist.docker.volume_restore:
    volume: pgdata-inspect
    src: /srv/backups/pgdata/pgdata-20261127T053000Z.tar.zst

- name: What would a restore change?
  persist.docker.volume_restore:
    volume: uploads
    src: /srv/backups/uploads
  check_mode: true
  diff: true
  register: preview

- name: Put the database's data back, stopping the database for the restore
  persist.docker.volume_restore:
    volume: pgdata
    src: /srv/backups/pgdata
    containers: stop

- name: Restore an encrypted backup with the key kept in a vault
  persist.docker.volume_restore:
    volume: pgdata
    src: /srv/backups/pgdata
    decrypt_identity: "{{ vault_backup_age_key }}"

- name: Restore a backup of a bind-mounted volume onto a new host, into a directory chosen here
  persist.docker.volume_restore:
    volume: shared-media
    src: /srv/backups/shared-media
    volume_driver: local
    volume_driver_opts:
      type: none
      o: bind
      device: /srv/media
"""

RETURN = r"""
volume:
  description: Name of the volume restored into.
  returned: always
  type: str
  sample: pgdata
archive:
  description: The archive restored (or compared), as its sidecar describes it.
  returned: always
  type: dict
  contains:
    path:
      description: Path of the archive.
      type: str
    sidecar:
      description: Path of its sidecar.
      type: str
    created:
      description: When the backup was taken (UTC).
      type: str
    size:
      description: Size of the archive file in bytes.
      type: int
    sha256:
      description: sha256 of the archive file (verified).
      type: str
    tree_digest:
      description: Tree digest of the archive (verified).
      type: str
    entries:
      description: Entries in the archive.
      type: int
    bytes:
      description: Logical bytes of its regular files.
      type: int
verified:
  description:
    - The archive matched its sidecar and passed the safety rules.
    - Into a missing volume, an existing empty one, or with O(restore_when=always), with no running
      container on it, the archive is read once, verified while it is extracted into the staging
      tree, which is swapped in only after the whole archive passed. Otherwise it is verified
      before anything is stopped or extracted, and read again to extract it.
  returned: when the archive was read
  type: bool
  sample: true
differences:
  description:
    - How the volume differed from the archive before the task. In V(merge) mode, entries only
      in the volume are counted in C(kept_extra) instead of C(removed).
  returned: when the volume existed and was compared
  type: dict
  sample: {"mode": "replace", "added": 1, "changed": 0, "removed": 2, "added_paths": ["data/new"], "changed_paths": [], "removed_paths": ["tmp", "tmp/x"]}
skipped_reason:
  description: Why nothing was restored (the volume already equals the archive, or holds data and
    O(restore_when=missing_or_empty)); null when something was restored.
  returned: always
  type: str
  sample: volume pgdata already equals the archive
finished_interrupted:
  description: Whether a swap left half done by a killed run was finished first.
  returned: always
  type: bool
actions:
  description: What the task did (or would do in check mode), one sentence each.
  returned: always
  type: list
  elements: str
duration_seconds:
  description: Time spent verifying, extracting and swapping.
  returned: when the volume was restored
  type: float
verify_seconds:
  description: Time spent reading and verifying the archive (and comparing the target), before any container was stopped.
  returned: when the archive was read
  type: float
extract_seconds:
  description:
    - Time spent extracting, reading back and swapping. Containers that had to be stopped were down
      for the read-back and the swap only (RV(consistency.containers) gives each one's C(downtime_seconds)).
  returned: when the volume was restored
  type: float
member:
  description: On a refused archive, the member that broke a rule.
  returned: on that failure
  type: str
rule:
  description: On a refused archive, the rule it broke.
  returned: on that failure
  type: str
containers:
  description: On failure because running containers mount the volume, each of them.
  returned: on that failure
  type: list
  elements: dict
consistency:
  description: How the data was kept consistent with the containers that mount the volume.
  returned: always
  type: dict
  contains:
    method:
      description: In words, also recorded in the sidecar.
      type: str
      sample: containers stopped
    containers:
      description:
        - Every container that mounts the volume, with C(policy), where it came from (C(policy_from)
          V(option), V(label) or V(default)), the C(action) taken (V(stop), V(pause), V(ignore) or
          V(none)) and whether it was C(performed) (false in check mode, and for a container the run
          failed before it could stop or pause).
        - C(downtime_seconds) for stopped containers, and C(killed_after_stop_timeout) when the
          engine had to kill one.
      type: list
      elements: dict
    restarted_after_interrupted_run:
      description:
        - Containers that a killed earlier run had left stopped or paused, started or unpaused again
          (C(id), C(name), C(left) V(stop) or V(pause), and the C(volume) whose lock recorded them).
        - Containers of a volume left in the middle of a swap are not started; the run that finishes
          the swap starts them.
      type: list
      elements: dict
lock:
  description: The lock on the volume, how long this run waited for it, and stale locks it broke (with the reason).
  returned: always
  type: dict
  sample: {"names": ["persist-lock-pgdata"], "waited_seconds": 0.0, "broken": []}
hooks:
  description:
    - Reports of the pre- and post-commands that ran; C(phase), C(container), C(command), C(rc),
      C(error), C(stdout) and C(stderr) (their last 16 KiB), C(seconds).
  returned: always
  type: list
  elements: dict
transport:
  description:
    - How the volume's data travelled between the helper containers and the module (see
      O(helper_transport)), V(fifo) (the co-located fast path) or V(api) (the Docker API stream);
      null when no data moved.
  returned: always
  type: str
  sample: fifo
reaped_helpers:
  description: Ids of helper containers abandoned by earlier killed runs that this task removed.
  returned: when there were any
  type: list
  elements: str
"""

from ansible_collections.persist.docker.plugins.module_utils._encryption import decryption_argument_spec
from ansible_collections.persist.docker.plugins.module_utils._restore_ops import RestoreOptions, restore
from ansible_collections.persist.docker.plugins.module_utils._runner import build_module, run


def main():
    module = build_module(
        dict(
            volume=dict(type="str", required=True, aliases=["name"]),
            src=dict(type="path", required=True),
            source_volume=dict(type="str"),
            mode=dict(type="str", default="replace", choices=["replace", "merge"]),
            restore_when=dict(type="str", default="different", choices=["different", "missing_or_empty", "always"]),
            create=dict(type="bool", default=True),
            volume_driver=dict(type="str"),
            volume_driver_opts=dict(type="dict"),
            volume_labels=dict(type="dict"),
            allow_special=dict(type="bool", default=False),
            **decryption_argument_spec()
        ),
        uses_helpers=True,
        guards_consistency=True,
        supports_check_mode=True,
        mutually_exclusive=[("decrypt_identity", "decrypt_identity_file")],
    )

    run(module, lambda engine: restore(engine, RestoreOptions.from_params(module.params), module.check_mode))


if __name__ == "__main__":
    main()
