#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_offsite
short_description: Copy volume backups off the Docker host to SSH servers or S3 buckets, checked there, with retention
version_added: 0.1.0
description:
  - A backup that lives only on the Docker host dies with the host's disk. This module copies
    the complete backups of a backup directory (the O(persist.docker.volume_backup#module:dest))
    from the Docker host directly to off-host targets. Each target is an SSH server or an
    S3-compatible bucket. Nothing passes through the Ansible controller.
  - Only complete backups are sent, never incomplete or damaged ones. O(select) decides which,
    the latest of each volume or every one that the target lacks.
  - "Each copy is checked on the far side before it counts, and its sidecar goes last: a reader
    of the target never sees a sidecar whose archive is incomplete. Over SSH, rsync sends the
    archive to a hidden temporary name. C(sha256sum) on the server must then give the sidecar's
    sha256, and only then is the file renamed to its final name. On S3, every request carries the
    MD5 of its bytes, and the object's size, the sha256 stored with it and its ETag (predicted
    from the parts sent) must match before the sidecar is uploaded."
  - Interrupted transfers resume. Over SSH, the partial file stays on the server and the next run
    sends only the rest. On S3, the parts of an unfinished multipart upload whose MD5 matches the
    file are kept.
  - Copies already on the target are not sent again (C(changed=false)). Such a copy has the
    recorded size and a sidecar identical to the local one, and on S3 its stored sha256 and ETag
    match too. Its content was checked when it was sent. The target's
    O(targets[].verify=full) checks it again, and sends it again when the check fails.
  - With any of the C(keep_*) options, GFS retention runs on each target per volume, over the
    complete copies there, with the rules of M(persist.docker.backup_prune). The newest complete
    copy of each volume is never deleted. Incomplete and damaged copies and files that are not
    ours are never deleted. A local backup that the policy would delete at once is not sent
    (RV(targets[].skipped)).
  - Retention deletes what it deletes whatever is sent before anything is sent, which makes room
    on a full target. It deletes the rest once the new copies have arrived. Deleting a copy removes
    its sidecar first.
  - A failure fails that archive on that target, or that target when it cannot be reached, and
    the rest goes on. The task fails at the end, naming each failure. The local backups are only
    read. Credentials never appear in results or messages.
  - See the off-host copies guide (docs/offsite.md) for setting up an SSH server and a bucket,
    for what is checked, and for fetching a copy by hand.
author:
  - persist.docker maintainers (@persist-docker)
extends_documentation_fragment:
  - persist.docker._docker.attributes
  - persist.docker._offsite.targets
attributes:
  check_mode:
    support: full
    details:
      - Lists each target and makes the same decisions as a real run, sending and deleting nothing.
        RV(targets[].sent), RV(targets[].deleted) and RV(targets[].skipped) are what a real run would send,
        delete and skip when every transfer succeeds. Copies already on the target are checked
        as in a real run (reads only).
      - A missing target directory is reported in RV(targets[].created_directory), not created.
  diff_mode:
    support: full
    details:
      - The archive names on each target before and after (one diff per target).
  idempotent:
    support: full
    details:
      - A second run finds every copy present and, with the same policy, nothing to delete.
options:
  path:
    description:
      - The backup directory on the Docker host (the O(persist.docker.volume_backup#module:dest) of
        the backups).
    type: path
    required: true
  volume:
    description:
      - Copy only the backups of this volume. Retention on the targets then applies only to its
        copies.
    type: str
  select:
    description:
      - Which complete local backups each target must have.
      - V(latest) sends the newest complete backup of each volume when the target lacks it.
      - V(missing) sends every complete backup that the target lacks (minus those that retention
        on the target would delete at once). A run after an outage catches up this way.
    type: str
    choices: [latest, missing]
    default: latest
  keep_last:
    description:
      - Retention on the targets. Keep the N newest copies of each volume. V(0) or unset turns the rule off.
      - Without any C(keep_*) option nothing is deleted on the targets.
    type: int
  keep_hourly:
    description:
      - Keep the newest copy of each of the N most recent UTC hours that have one.
    type: int
  keep_daily:
    description:
      - Keep the newest copy of each of the N most recent UTC days that have one.
    type: int
  keep_weekly:
    description:
      - Keep the newest copy of each of the N most recent ISO 8601 weeks that have one.
    type: int
  keep_monthly:
    description:
      - Keep the newest copy of each of the N most recent calendar months (UTC) that have one.
    type: int
  keep_yearly:
    description:
      - Keep the newest copy of each of the N most recent calendar years (UTC) that have one.
    type: int
  keep_within:
    description:
      - Keep every copy created at most this long before the volume's newest copy on the target,
        with the duration grammar of O(persist.docker.backup_prune#module:keep_within) (V(36h), V(7d), V(2w3d)).
    type: str
requirements:
  - On the Docker host, for SSH targets, C(ssh) (OpenSSH client) and C(rsync). The server needs
    sshd, C(rsync), C(sha256sum) and a POSIX shell for the login user.
  - On the Docker host, for S3 targets, the Python library C(boto3).
notes:
  - The copies keep the names of the local files, in one directory or prefix per target. A
    temporary file on an SSH server is named C(.persist-partial-<archive>) until it is checked.
  - The ssh and rsync commands of a run share one SSH connection through a control socket in a
    private directory of the temporary directory (E(TMPDIR), else C(/tmp)). When that path is
    too long for a socket (a E(TMPDIR) of more than about 50 characters), each command connects
    anew, which is slower.
  - A target that holds another backup under the same name (a sidecar that differs from the local
    one) is left alone, and that archive fails with a message that says so. This happens when two
    hosts share a target path.
  - Interrupted S3 multipart uploads that no later run resumes stay in the bucket and are billed.
    Set a lifecycle rule that aborts incomplete multipart uploads after a few days (docs/offsite.md).
seealso:
  - module: persist.docker.volume_backup
  - module: persist.docker.backup_prune
  - module: persist.docker.backup_info
  - module: persist.docker.backup_verify
"""

EXAMPLES = r"""
- name: Copy the newest backup of each volume to a backup server over SSH
  persist.docker.backup_offsite:
    path: /srv/backups
    targets:
      - type: ssh
        host: backup.example.com
        user: backup
        path: /srv/offsite/{{ inventory_hostname }}
        private_key: /root/.ssh/offsite_ed25519
        host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0cGpS2x1AqV1FQbJqvxvJvCLHhWJ8TfZSpkLdx0rD"

- name: Keep every backup the bucket lacks, with a month of dailies and a year of monthlies there
  persist.docker.backup_offsite:
    path: /srv/backups
    select: missing
    keep_daily: 30
    keep_monthly: 12
    targets:
      - type: s3
        endpoint_url: https://s3.eu-central-1.amazonaws.com
        region: eu-central-1
        bucket: acme-volume-backups
        prefix: "{{ inventory_hostname }}/"
        access_key: "{{ offsite_access_key }}"
        secret_key: "{{ offsite_secret_key }}"
        storage_class: STANDARD_IA

- name: Preview what would be sent and deleted on both targets, without doing it
  persist.docker.backup_offsite:
    path: /srv/backups
    volume: pgdata
    keep_last: 7
    targets: "{{ offsite_targets }}"
  check_mode: true
  diff: true

- name: Check the copies already there again (sha256sum on the server) and repair what fails
  persist.docker.backup_offsite:
    path: /srv/backups
    select: missing
    targets:
      - type: ssh
        host: backup.example.com
        user: backup
        path: /srv/offsite/{{ inventory_hostname }}
        known_hosts: /etc/persist/known_hosts
        verify: full
"""

RETURN = r"""
targets:
  description: What happened on each target, in the order given. Also returned when the task fails.
  returned: always
  type: list
  elements: dict
  contains:
    target:
      description: The target, as a URL without credentials.
      type: str
      sample: ssh://backup@backup.example.com:22/srv/offsite/web1
    type:
      description: V(ssh) or V(s3).
      type: str
    sent:
      description: The copies sent (in check mode, that would be sent), each checked on the far side.
      type: list
      elements: dict
      contains:
        archive:
          description: The archive's file name.
          type: str
          sample: pgdata-20261127T053000Z.tar.zst
        volume:
          description: The volume it is a backup of.
          type: str
        created:
          description: Its creation time (UTC).
          type: str
        reason:
          description: Why it was sent.
          type: str
          sample: not on the target
        size:
          description: Size of the archive in bytes.
          type: int
        transferred_bytes:
          description: Bytes that crossed the network for it (less than O(targets[].part_size) or the size when a transfer resumed); null in check mode.
          type: int
        resumed_from:
          description: Bytes that were already on the target from an interrupted transfer; null in check mode.
          type: int
        seconds:
          description: Time spent sending and checking it; null in check mode.
          type: float
        mib_per_second:
          description: The archive's size in MiB divided by RV(targets[].sent[].seconds).
          type: float
        verified:
          description: Whether the far-side checks passed (false in check mode, where nothing is sent).
          type: bool
        checks:
          description: The checks the copy passed.
          type: list
          elements: str
          sample: ["sha256 of the copy on the target (sha256sum there)"]
    present:
      description: Copies already on the target that passed the presence checks; not sent again.
      type: list
      elements: dict
    skipped:
      description: Local backups not sent because retention on the target would delete them at once.
      type: list
      elements: dict
    conflicts:
      description: Archives whose name the target holds with another sidecar; left alone, each also an error.
      type: list
      elements: dict
    deleted:
      description: Copies deleted by retention on the target (in check mode, that would be deleted), each with the reason.
      type: list
      elements: dict
      sample: [{"archive": "pgdata-20261101T030000Z.tar.zst", "volume": "pgdata", "created": "2026-11-01T03:00:00Z",
                "reason": "kept by no rule of the policy (keep_last=7)"}]
    kept:
      description: The complete copies retention keeps, with the rules that keep each; empty without a policy.
      type: list
      elements: dict
      sample: [{"archive": "pgdata-20261130T030000Z.tar.zst", "volume": "pgdata", "created": "2026-11-30T03:00:00Z",
                "reasons": ["newest", "last 7"]}]
    damaged:
      description: Damaged copies on the target that this run did not replace; never deleted.
      type: list
      elements: dict
    incomplete:
      description: Copies on the target without a sidecar that this run did not complete; never deleted.
      type: list
      elements: dict
    created_directory:
      description: Whether the target directory was missing and created (SSH; in check mode, would be).
      type: bool
    errors:
      description: The failures on this target, each naming the archive (null for the whole target) and what to do.
      type: list
      elements: dict
errors:
  description: The failures of every target, each with C(target), C(archive) and C(msg).
  returned: always
  type: list
  elements: dict
totals:
  description: Counts over all targets.
  returned: always
  type: dict
  sample: {"sent": 2, "bytes": 73400320, "transferred_bytes": 73400320, "present": 5, "deleted": 1, "errors": 0}
policy:
  description: The retention rules in force on the targets; null without any.
  returned: always
  type: str
  sample: keep_daily=30, keep_monthly=12
path:
  description: The backup directory read.
  returned: always
  type: str
"""

from ansible_collections.persist.docker.plugins.module_utils._local_runner import build_local_module, run_local
from ansible_collections.persist.docker.plugins.module_utils._offsite_ops import OffsiteOptions, offsite
from ansible_collections.persist.docker.plugins.module_utils._offsite_target import targets_argument_spec
from ansible_collections.persist.docker.plugins.module_utils._retention import retention_argument_spec


def main():
    module = build_local_module(
        dict(
            path=dict(type="path", required=True),
            volume=dict(type="str"),
            select=dict(type="str", default="latest", choices=["latest", "missing"]),
            **dict(retention_argument_spec(), **targets_argument_spec())
        ),
        supports_check_mode=True,
    )
    run_local(module, lambda: offsite(OffsiteOptions.from_params(module.params), module.check_mode, module._diff))


if __name__ == "__main__":
    main()
