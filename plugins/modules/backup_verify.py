#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_verify
short_description: Prove that volume backups are restorable, optionally by restoring them into a scratch volume
version_added: 0.1.0
description:
  - Verifies archives written by M(persist.docker.volume_backup). It checks one archive, the latest
    complete backup of each volume in a directory, or every archive in a directory, and returns
    a verdict for each archive, with the reason for each failure.
  - Reads each archive in full, with the same code that M(persist.docker.volume_restore) runs
    before it writes anything. The file's size and sha256 must match its metadata sidecar. Every
    member must pass the restore's safety rules. The tree digest is recomputed from the members
    and must match the sidecar's. This needs no Docker engine, so it runs on a backup server
    that has none.
  - With O(test_restore=true), each archive that passed is then restored into a new scratch
    volume through the restore's staged path. The scratch volume is named
    C(persist-verify-<volume>-<random hex>) and has the driver and driver options recorded in the
    backup when they give it storage of its own (the local driver, plain or tmpfs), else it is a
    plain local volume (a sidecar is untrusted and never decides to mount existing storage). The
    tree digest of the restored copy must equal the archive's. An optional
    O(probe) then runs a command in a container on the restored copy, for example to start
    PostgreSQL on it and run a query. The scratch volume is removed afterwards, also when a
    check fails.
  - An encrypted archive (M(persist.docker.volume_backup) with C(encrypt_recipients)) is read in full only
    with its identity (O(decrypt_identity_file) or O(decrypt_identity)). Without one, only its size and
    sha256 are checked; the other checks are skipped, and the verdict says why.
  - With O(target), verifies the copies on an off-host target (an SSH server or an S3 bucket, see
    M(persist.docker.backup_offsite)) instead, with O(volume) and O(select) as for a directory. The
    target's C(verify) decides how. V(quick) (the default) downloads nothing. Over SSH it checks the
    size and runs C(sha256sum) on the server; on S3 it checks the size, the sha256 stored with the
    object and its ETag. V(full) streams each copy (never to disk) through the same read checks as a
    local archive. Test restores and probes need a local archive.
  - The task fails when any archive fails. Its message names each failed archive and the
    reason, and the verdicts are returned with the failure, so alerts fire and the details are
    still there.
author:
  - persist.docker maintainers (@persist-docker)
extends_documentation_fragment:
  - persist.docker._docker.attributes
  - persist.docker._docker
  - persist.docker._docker.helper
  - persist.docker._docker.decryption
  - persist.docker._offsite.target
attributes:
  check_mode:
    support: full
    details:
      - Runs the read-only checks (size, sha256, safety rules, tree digest). Test restores and
        probes are skipped, and each verdict says so (RV(verdicts[].skipped)).
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Never changes anything that exists before or after the task. Scratch volumes exist only
        while the task runs, and C(changed) is always false.
  action_group:
    support: full
    membership:
      - persist.docker.docker
options:
  path:
    description:
      - An archive (its sidecar C(ARCHIVE.json) beside it), or a backup directory (the
        O(persist.docker.volume_backup#module:dest) of the backups).
      - Required unless O(target) is given.
    type: path
  volume:
    description:
      - With a directory in O(path), verify only this volume's archives. An archive without a
        readable sidecar counts as this volume's when its file name has the default form
        C(<volume>-<timestamp>.tar...) for it. An archive with another name counts when its
        name starts with the volume's name and no longer volume name matches it.
      - With an archive in O(path), the archive must be a backup of this volume.
      - If no backup of the volume exists, its verdict fails.
    type: str
  select:
    description:
      - Which archives of a directory to verify.
      - V(latest) verifies the newest complete backup of each volume. When newer archives of the
        volume are incomplete or damaged, the latest complete one is verified and a warning names
        the newer ones. A volume with no complete backup at all gets a failed verdict. Files
        whose volume cannot be told (no readable sidecar, and a name that matches no volume) are
        named in a warning.
      - V(all) verifies every archive. Incomplete and damaged archives fail, with their reason.
      - Ignored when O(path) is an archive.
    type: str
    choices: [latest, all]
    default: latest
  allow_special:
    description:
      - Accept device nodes, FIFOs and setuid/setgid bits in the archive, as
        O(persist.docker.volume_restore#module:allow_special) does. Without it such an archive
        fails the safety check.
    type: bool
    default: false
  test_restore:
    description:
      - Restore each archive that passed the read checks into a scratch volume, and compare the
        restored copy's tree digest with the archive's. Then run O(probe) on the copy, if given.
      - Needs the Docker engine, and room on it for a full copy of the largest archive's volume.
      - The scratch volume gets the driver and driver options recorded in the backup, but not
        its labels. Tools that select volumes by label must not take a scratch copy for the
        original. One exception is the local driver with a C(device) option (a bind mount, a
        block device or an NFS export, anything but C(tmpfs)). Those options would mount the
        original's storage, so a plain local volume is used and a warning says so. A scratch
        volume that is not empty when created is never written to, and its verdict fails.
    type: bool
    default: false
  probe:
    description:
      - A command run in a container on the restored copy, after the tree digest matched.
        Exit code 0 passes. Any other exit code, or a timeout, fails the verdict, which carries
        the exit code and the last 64 KiB of output.
      - The container has no network. The restored copy is mounted read-write, so a database
        can start on it and recover its log. It runs with the image's default user unless
        O(probe.user) is set. It is removed when it ends, and killed and removed when it runs
        longer than O(probe.timeout).
      - Needs O(test_restore=true).
    type: dict
    suboptions:
      image:
        description:
          - Image of the probe container. Defaults to O(helper_image). Pulled per O(helper_pull)
            when the engine does not have it.
        type: str
      command:
        description:
          - The command (arguments of the entrypoint) as a list.
        type: list
        elements: str
        required: true
      entrypoint:
        description:
          - Overrides the image's entrypoint, as a list.
        type: list
        elements: str
      path:
        description:
          - Where the restored copy is mounted in the probe container (absolute), for example
            C(/var/lib/postgresql/data).
        type: str
        required: true
      env:
        description:
          - Environment variables of the probe container.
        type: dict
      user:
        description:
          - User (name or C(uid[:gid])) the probe runs as.
        type: str
      timeout:
        description:
          - Seconds the probe may run before it is killed and its verdict fails.
        type: int
        default: 300
notes:
  - Scratch volumes have the labels C(persist.docker.scratch=true) and C(persist.docker.owner)
    (host, process id and start time of the run). A run killed during a test restore leaves its
    scratch volume behind. The next run on the same host with O(test_restore=true) removes
    it, once the run that owns it is gone.
  - Probe containers have the labels of helper containers, so a probe left behind by a killed run
    is removed by the next run of any module of the collection.
  - The probe's output is kept in a small json-file log, two files of at most 64 KiB, while it
    runs. Unlike helpers, probes do not use the log driver C(none), because their output is the
    result.
  - Only the test restore and the probe need the engine. Without O(test_restore), or in check
    mode, the module does not connect to it.
seealso:
  - module: persist.docker.volume_backup
  - module: persist.docker.volume_restore
  - module: persist.docker.backup_info
"""

EXAMPLES = r"""
- name: Verify the newest backup of every volume in the directory (fails if any is bad)
  persist.docker.backup_verify:
    path: /srv/backups

- name: Verify every archive of pgdata, complete or not
  persist.docker.backup_verify:
    path: /srv/backups
    volume: pgdata
    select: all

- name: Restore the latest pgdata backup into a scratch volume and query it with PostgreSQL
  persist.docker.backup_verify:
    path: /srv/backups
    volume: pgdata
    test_restore: true
    probe:
      image: postgres:15
      path: /var/lib/postgresql/data
      env:
        POSTGRES_PASSWORD: unused-by-the-probe
      entrypoint: [bash, -c]
      command:
        - |
          docker-entrypoint.sh postgres -c listen_addresses='' &
          until pg_isready -q -U postgres; do sleep 1; done
          psql -U postgres -tAc 'select count(*) from orders'
      timeout: 120
  register: pgdata_verified

- name: Show what the probe printed
  ansible.builtin.debug:
    msg: "{{ pgdata_verified.verdicts[0].probe.output }}"

- name: Verify one archive that was copied to this host
  persist.docker.backup_verify:
    path: /srv/incoming/pgdata-20261127T053000Z.tar.zst
"""

RETURN = r"""
verdicts:
  description:
    - One verdict per archive verified, newest first within each volume. Also returned when
      the task fails.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path of the archive; O(path) when a volume has no archive at all.
      type: str
      sample: /srv/backups/pgdata-20261127T053000Z.tar.zst
    volume:
      description: Volume the archive is a backup of; null when that cannot be told.
      type: str
      sample: pgdata
    created:
      description: Creation time (UTC) from the sidecar; null without a readable sidecar.
      type: str
      sample: "2026-11-27T05:30:00Z"
    status:
      description: V(passed) or V(failed).
      type: str
      sample: passed
    reason:
      description: Why the archive failed; null when it passed.
      type: str
      sample: "the probe (image postgres:15) exited with code 2 on the restored copy; its output ends: psql: error: ..."
    checks:
      description:
        - The state of each check. V(passed) and V(failed) are results. V(not_run) means an earlier
          failure made the check impossible, for example an archive that cannot be read to its end
          fails C(tree_digest) and leaves C(sha256) not run. V(skipped) means the check was not
          requested or the task ran in check mode (see RV(verdicts[].skipped)).
        - C(sha256) covers the file's size and sha256 against the sidecar. C(tree_digest) covers
          the full read and the recomputed tree digest. C(safety) covers the restore's safety rules
          on every member. C(test_restore) covers the restore into a scratch volume and the digest
          of the restored copy. C(probe) covers the probe's exit code.
      type: dict
      sample: {"sha256": "passed", "tree_digest": "passed", "safety": "passed", "test_restore": "passed", "probe": "passed"}
    skipped:
      description: Why each skipped check was skipped (V(check mode), V(test_restore is false), V(no probe given)).
      type: dict
      sample: {"test_restore": "check mode", "probe": "check mode"}
    warnings:
      description: Warnings about this archive (also reported as task warnings).
      type: list
      elements: str
    compression:
      description: Compression of the archive.
      type: str
      returned: when the archive passed the read checks
    size:
      description: Size of the archive file in bytes (verified).
      type: int
      returned: when the archive passed the read checks
    sha256:
      description: sha256 of the archive file (verified).
      type: str
      returned: when the archive passed the read checks
    tree_digest:
      description: Tree digest recomputed from the archive (equal to the sidecar's).
      type: str
      returned: when the archive passed the read checks
    entries:
      description: Entries in the archive, as its sidecar records them.
      type: int
      returned: when the archive passed the read checks
    bytes:
      description: Logical bytes of its regular files, as its sidecar records them.
      type: int
      returned: when the archive passed the read checks
    read_seconds:
      description: Time spent reading and checking the archive.
      type: float
      returned: when the archive passed the read checks
    member:
      description: The member that broke a safety rule.
      type: str
      returned: when the safety check failed
    rule:
      description: The rule it broke.
      type: str
      returned: when the safety check failed
    test_restore:
      description: The test restore.
      type: dict
      returned: when a test restore ran
      contains:
        scratch_volume:
          description: Name of the scratch volume (removed again).
          type: str
          sample: persist-verify-pgdata-3f9a0c1d2e4b
        driver:
          description: Driver of the scratch volume.
          type: str
        driver_opts:
          description: Driver options of the scratch volume.
          type: dict
        tree_digest:
          description: Tree digest of the restored copy; null when the restore failed.
          type: str
        duration_seconds:
          description: Time spent creating, restoring, measuring, probing and removing.
          type: float
    probe:
      description: The probe's outcome.
      type: dict
      returned: when a probe ran
      contains:
        image:
          description: Image of the probe container.
          type: str
        exit_code:
          description: Exit code; null when it timed out.
          type: int
        timed_out:
          description: Whether it was killed after O(probe.timeout).
          type: bool
        output:
          description: The last 64 KiB of its stdout and stderr, interleaved as written.
          type: str
        output_truncated:
          description: Whether earlier output was dropped.
          type: bool
        duration_seconds:
          description: Time from start to exit or kill.
          type: float
totals:
  description: How many archives were verified, passed and failed (the task fails when C(failed) is not 0).
  returned: always
  type: dict
  sample: {"verified": 3, "passed": 3, "failed": 0}
reaped_scratch_volumes:
  description: Scratch volumes left by killed runs on this host that this task removed.
  returned: always
  type: list
  elements: str
reaped_helpers:
  description: Ids of helper (and probe) containers abandoned by earlier killed runs that this task removed.
  returned: when there were any
  type: list
  elements: str
target:
  description:
    - The off-host target verified, as a URL without credentials. Its verdicts have the check C(remote) (the
      download-free checks, named in C(remote_checks)) besides those above.
  returned: when O(target) is given
  type: str
"""

from ansible_collections.persist.docker.plugins.module_utils._encryption import decryption_argument_spec
from ansible_collections.persist.docker.plugins.module_utils._offsite_remote import offsite_verify
from ansible_collections.persist.docker.plugins.module_utils._offsite_target import target_argument_spec
from ansible_collections.persist.docker.plugins.module_utils._options import VerifyOptions
from ansible_collections.persist.docker.plugins.module_utils._runner import build_module, run
from ansible_collections.persist.docker.plugins.module_utils._verify_ops import verify


def main():
    module = build_module(
        dict(
            path=dict(type="path"),
            volume=dict(type="str"),
            select=dict(type="str", default="latest", choices=["latest", "all"]),
            allow_special=dict(type="bool", default=False),
            test_restore=dict(type="bool", default=False),
            probe=dict(
                type="dict",
                options=dict(
                    image=dict(type="str"),
                    command=dict(type="list", elements="str", required=True),
                    entrypoint=dict(type="list", elements="str"),
                    path=dict(type="str", required=True),
                    env=dict(type="dict"),
                    user=dict(type="str"),
                    timeout=dict(type="int", default=300),
                ),
            ),
            **dict(decryption_argument_spec(), **target_argument_spec())
        ),
        uses_helpers=True,
        supports_check_mode=True,
        required_one_of=[("path", "target")],
        mutually_exclusive=[("path", "target"), ("decrypt_identity", "decrypt_identity_file")],
    )
    options = VerifyOptions.from_params(module.params)
    if options.target:
        run(module, lambda engine: offsite_verify(options, module.check_mode), needs_engine=False)
    # The engine is needed only to test-restore: reading archives works on a host without one.
    needs_engine = options.test_restore and not module.check_mode
    run(module, lambda engine: verify(engine, options, module.check_mode), needs_engine=needs_engine)


if __name__ == "__main__":
    main()
