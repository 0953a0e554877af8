#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_backup
short_description: Back up a Docker volume to a compressed archive, atomically and only when it changed
version_added: 0.1.0
description:
  - Streams the volume through a short-lived helper container running GNU tar (POSIX format,
    numeric owners, xattrs, ACLs, sparse files, hard links, nanosecond times) over the Docker API
    into an archive in O(dest) on the managed node. No host path is bind-mounted, so it works
    with remote and rootless engines and from inside a container with the engine's socket.
  - Compression happens in the module (zstd on all cores by default). The archive is a standard
    C(.tar.zst), C(.tar.gz) or C(.tar) that plain C(tar) can restore by hand.
  - A metadata sidecar C(ARCHIVE.json) is written after the archive, with the volume's driver, options and
    labels, creation time, archive size and sha256, tree digest (and its version, C(tree.digest_version);
    version 2 costs nothing for holes of sparse files), entry and byte counts, duration and tool
    version. An archive without its sidecar is not a complete backup.
  - Atomic. The archive is written under a temporary name in O(dest), fsynced, then given its final
    name, and the sidecar likewise. A failed or killed run leaves nothing under a final name; its
    temporary files are removed by a later run.
  - With O(if_changed=true), no archive is kept when the volume is unchanged since its latest
    complete backup in O(dest). A metadata fingerprint decides cheaply, before anything is locked
    or any container stopped (an unchanged volume costs its services no downtime); where it cannot,
    the volume is backed up, and an archive whose tree digest is the latest backup's is not kept
    (the volume is read once; in check mode, which writes nothing, it is read to compare).
  - Consistent around live containers. A copy taken while a database writes can be corrupt, so by
    default the backup refuses a volume that a running container mounts read-write. O(containers)
    (or a label on each container) stops or pauses them for the duration, and O(pre_commands) can
    take a logical dump first; see the options.
  - Serialized. Two runs on the same volume (forks, controllers, AWX jobs) never interleave; the
    second waits for the first (O(lock_timeout)).
author:
  - persist.docker maintainers (@persist-docker)
extends_documentation_fragment:
  - persist.docker._docker.attributes
  - persist.docker._docker
  - persist.docker._docker.helper
  - persist.docker._docker.consistency
attributes:
  check_mode:
    support: full
    details:
      - Reports whether a backup would be written and under which name. The unchanged check runs
        in read-only helper containers; nothing is written.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - With O(if_changed=true), a second run on an unchanged volume writes nothing and reports
        V(changed=false).
  action_group:
    support: full
    membership:
      - persist.docker.docker
options:
  volume:
    description:
      - Name of the volume to back up.
    type: str
    required: true
    aliases: [name]
  dest:
    description:
      - Directory on the managed node that holds the archives. Created (mode 0700) when missing.
    type: path
    required: true
  name_template:
    description:
      - File name of the archive without its suffix; C({volume}) and C({timestamp}) (UTC, for
        example C(20261127T053000Z)) are replaced. The suffix follows O(compression).
    type: str
    default: "{volume}-{timestamp}"
  compression:
    description:
      - V(zstd) (needs the Python library C(zstandard) on the managed node), V(gzip) or V(none).
    type: str
    choices: [zstd, gzip, none]
    default: zstd
  compression_level:
    description:
      - Compression level. Defaults to 3 for zstd and 6 for gzip.
    type: int
  threads:
    description:
      - Compression threads for zstd; V(0) uses every CPU.
    type: int
    default: 0
  if_changed:
    description:
      - Keep no new archive when the volume is unchanged since its latest complete backup in O(dest)
        (with the same O(exclude)). When only its metadata fingerprint differs, the archive is
        written under a temporary name and removed once its tree digest shows the same tree, so
        the check needs room for it.
    type: bool
    default: true
  encrypt_recipients:
    description:
      - Encrypt the archive as it is written, to these public keys, so that no plaintext ever
        reaches the disk. Each is an age public key (C(age1...), from C(age-keygen)) or an SSH public
        key (C(ssh-ed25519 ...) or C(ssh-rsa ...)); any one of the matching private keys opens the
        archive.
      - The archive is a standard age file named C(NAME.tar.zst.age). By hand,
        C(age -d -i KEY NAME.tar.zst.age | zstd -d | tar -x ...) restores it. M(persist.docker.volume_restore)
        and M(persist.docker.backup_verify) read it with O(persist.docker.volume_restore#module:decrypt_identity_file).
      - The sidecar stays plaintext. It records the format and the recipients' public keys, and the
        size and sha256 of the encrypted file; the tree digest and counts are of the plaintext tree
        (hashes and numbers, nothing of the content).
      - Needs the Python library pyrage (the bindings of rage, an implementation of age) on the managed
        node (C(pip install pyrage)). A key that cannot be parsed fails the task before anything is read.
      - With O(if_changed=true), a volume is backed up again when its latest backup was encrypted to
        other recipients (after a key rotation).
    type: list
    elements: str
    default: []
  exclude:
    description:
      - GNU tar C(--exclude) patterns, matched against member names such as C(./cache/tmp);
        a pattern without a slash matches a name at any depth.
      - Names at the volume root starting with C(.persist-) are always left out (they are
        reserved for restore staging).
    type: list
    elements: str
    default: []
notes:
  - Archives and sidecars are created with mode 0600; they hold the volume's data.
  - The archive's temporary name starts with C(.persist-partial-), in O(dest).
  - The sidecar gets its final name just before the archive. A run killed between the two leaves
    a sidecar without an archive, which is listed nowhere and removed by a later run.
  - A volume in the middle of an interrupted restore or copy (a mix of two trees) is refused. A swap
    journal in the volume that this collection cannot prove it wrote is refused too, until the task
    says O(recovery=discard); reserved names (C(.persist-*)) are never part of a backup.
seealso:
  - module: persist.docker.backup_info
  - module: persist.docker.volume_info
"""

EXAMPLES = r"""
- name: Back up the database volume (skipped when nothing changed since the last backup)
  persist.docker.volume_backup:
    volume: pgdata
    dest: /srv/backups/pgdata
  register: backup

- name: Say where it went
  ansible.builtin.debug:
    msg: "{{ backup.archive.path }} ({{ backup.archive.size }} bytes, sha256 {{ backup.archive.sha256 }})"
  when: backup.changed

- name: Stop the database for a consistent copy, start it again afterwards
  persist.docker.volume_backup:
    volume: pgdata
    dest: /srv/backups/pgdata
    containers: stop
    stop_timeout: 120

- name: Keep the database running; back up a dump it writes into the volume
  persist.docker.volume_backup:
    volume: pgdata
    dest: /srv/backups/pgdata
    containers: ignore
    pre_commands:
      - container: postgres
        command: pg_dumpall -U postgres --file=/var/lib/postgresql/data/dump.sql
    post_commands:
      - container: postgres
        command: [rm, -f, /var/lib/postgresql/data/dump.sql]

- name: A gzip archive for a system without zstandard, leaving caches out
  persist.docker.volume_backup:
    volume: uploads
    dest: /srv/backups/uploads
    compression: gzip
    exclude:
      - ./cache
      - "*.tmp"

- name: Encrypt the backup to the team's age key and a break-glass SSH key
  persist.docker.volume_backup:
    volume: pgdata
    dest: /srv/backups/pgdata
    encrypt_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBreakGlassKeyOfTheOnCallTeamForExampleOnly oncall

- name: Always write a new archive, named by the hour
  persist.docker.volume_backup:
    volume: uploads
    dest: /srv/backups/uploads
    if_changed: false
    name_template: "{volume}-hourly-{timestamp}"
"""

RETURN = r"""
volume:
  description: Name of the volume backed up.
  returned: always
  type: str
  sample: pgdata
archive:
  description:
    - The archive written. In check mode, only C(path) and C(sidecar) (the names it would get).
    - Null when nothing was written because the volume is unchanged.
  returned: always
  type: dict
  contains:
    path:
      description: Path of the archive.
      type: str
      sample: /srv/backups/pgdata/pgdata-20261127T053000Z.tar.zst
    sidecar:
      description: Path of its metadata sidecar.
      type: str
      sample: /srv/backups/pgdata/pgdata-20261127T053000Z.tar.zst.json
    created:
      description: Creation time (UTC).
      type: str
      sample: "2026-11-27T05:30:00Z"
    compression:
      description: Compression of the archive.
      type: str
      sample: zstd
    size:
      description: Size of the archive file in bytes.
      type: int
      sample: 1048576
    sha256:
      description: sha256 of the archive file.
      type: str
    tree_digest:
      description: Digest of the volume's tree (paths, types, modes, owners, contents, links, xattrs, times).
      type: str
    entries:
      description: Entries below the volume's root.
      type: int
      sample: 1523
    bytes:
      description: Logical bytes of the regular files.
      type: int
      sample: 48234496
    duration_seconds:
      description: Time spent streaming and writing.
      type: float
      sample: 3.2
    encrypted:
      description: Whether the archive is encrypted (age).
      type: bool
    recipients:
      description: The public keys it is encrypted to (empty when not encrypted).
      type: list
      elements: str
skipped_reason:
  description: Why no archive was written (the volume is unchanged since the latest backup).
  returned: always
  type: str
  sample: "volume pgdata is unchanged since the latest backup: its metadata fingerprint equals that of pgdata-20261127T053000Z.tar.zst"
latest:
  description: The latest backup, when it made this one unnecessary (same keys as RV(archive)).
  returned: when the backup was skipped
  type: dict
actions:
  description: What the task did (or would do in check mode), one sentence each.
  returned: always
  type: list
  elements: str
removed_temporary_files:
  description:
    - Leftovers of unfinished earlier backups removed from O(dest). These are temporary files of
      writers that are gone (at once on this host, after a day for other hosts), and sidecars
      older than ten minutes whose archive never got its name.
  returned: when there were any
  type: list
  elements: str
containers:
  description: On failure because running containers write to the volume, each of them.
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
      null when no data moved. Also recorded in the sidecar (C(transport)).
  returned: always
  type: str
  sample: fifo
reaped_helpers:
  description: Ids of helper containers abandoned by earlier killed runs that this task removed.
  returned: when there were any
  type: list
  elements: str
"""

from ansible_collections.persist.docker.plugins.module_utils._backup_ops import BackupOptions, backup
from ansible_collections.persist.docker.plugins.module_utils._runner import build_module, run


def main():
    module = build_module(
        dict(
            volume=dict(type="str", required=True, aliases=["name"]),
            dest=dict(type="path", required=True),
            name_template=dict(type="str", default="{volume}-{timestamp}"),
            compression=dict(type="str", default="zstd", choices=["zstd", "gzip", "none"]),
            compression_level=dict(type="int"),
            threads=dict(type="int", default=0),
            if_changed=dict(type="bool", default=True),
            exclude=dict(type="list", elements="str", default=[]),
            encrypt_recipients=dict(type="list", elements="str", default=[]),
        ),
        uses_helpers=True,
        guards_consistency=True,
        supports_check_mode=True,
    )

    run(module, lambda engine: backup(engine, BackupOptions.from_params(module.params), module.check_mode))


if __name__ == "__main__":
    main()
