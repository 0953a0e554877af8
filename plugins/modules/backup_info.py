#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_info
short_description: List the volume backups in a directory and pick the latest complete one
version_added: 0.1.0
description:
  - Lists the archives in a backup directory on the managed node, newest first, with what their
    metadata sidecars say.
  - Marks each archive V(complete), V(incomplete) (no sidecar, so the backup did not finish or is
    still being written) or V(damaged) (sidecar unreadable, of an unknown format, or the archive's
    size differs from what it records), with the reason.
  - Returns the latest complete backup of each volume.
  - Reads only the directory listing and the sidecars; it does not read the archives (use
    persist.docker.backup_verify for that).
  - With O(target), lists the copies on an off-host target (an SSH server or an S3 bucket, see
    M(persist.docker.backup_offsite)) instead, from the managed node. A copy without its sidecar is
    incomplete (its transfer did not finish).
author:
  - persist.docker maintainers (@persist-docker)
extends_documentation_fragment:
  - persist.docker._docker.attributes
  - persist.docker._offsite.target
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description:
      - The backup directory (the O(persist.docker.volume_backup#module:dest) of the backups).
      - Required unless O(target) is given.
    type: path
  volume:
    description:
      - List only the backups of this volume.
      - Incomplete or damaged archives whose sidecar does not say which volume they hold are
        listed when their file name starts with the volume's name (as the default name does).
    type: str
seealso:
  - module: persist.docker.volume_backup
"""

EXAMPLES = r"""
- name: What backups of pgdata are there?
  persist.docker.backup_info:
    path: /srv/backups/pgdata
    volume: pgdata
  register: pgdata_backups

- name: Fail loudly when no complete backup exists
  ansible.builtin.assert:
    that: pgdata_backups.latest.pgdata is defined
    fail_msg: "No complete backup of pgdata in /srv/backups/pgdata"

- name: Show the newest one
  ansible.builtin.debug:
    msg: "{{ pgdata_backups.latest.pgdata.path }} from {{ pgdata_backups.latest.pgdata.created }}"

- name: Backups that need attention
  ansible.builtin.debug:
    msg: "{{ pgdata_backups.backups | rejectattr('status', 'equalto', 'complete') | list }}"
"""

RETURN = r"""
backups:
  description: The archives in O(path), newest first (by the creation time in their sidecars).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path of the archive.
      type: str
      sample: /srv/backups/pgdata/pgdata-20261127T053000Z.tar.zst
    sidecar:
      description: Path of its metadata sidecar (which may be missing).
      type: str
    status:
      description: V(complete), V(incomplete) or V(damaged).
      type: str
      sample: complete
    reason:
      description: Why the archive is not complete; null when it is.
      type: str
      sample: "no metadata sidecar: the backup did not finish"
    volume:
      description: Name of the volume backed up; null when no readable sidecar says.
      type: str
      sample: pgdata
    created:
      description: Creation time (UTC) from the sidecar.
      type: str
      sample: "2026-11-27T05:30:00Z"
    size:
      description: Size of the archive file in bytes.
      type: int
    sha256:
      description: sha256 of the archive as recorded in the sidecar.
      type: str
    tree_digest:
      description: Tree digest of the volume as recorded.
      type: str
    entries:
      description: Entries in the archive as recorded.
      type: int
    bytes:
      description: Logical bytes of its regular files as recorded.
      type: int
    compression:
      description: Compression of the archive.
      type: str
    encrypted:
      description: Whether the archive is encrypted (age), as its sidecar says.
      type: bool
    recipients:
      description: The public keys it is encrypted to.
      type: list
      elements: str
    metadata:
      description:
        - The whole sidecar, when it is readable. Driver option values that may hold credentials
          (a C(password=) in a CIFS C(o)) are masked.
      type: dict
latest:
  description: The latest complete backup of each volume, keyed by volume name (items of RV(backups)).
  returned: always
  type: dict
  sample: {"pgdata": {"path": "/srv/backups/pgdata/pgdata-20261127T053000Z.tar.zst", "status": "complete"}}
target:
  description: The off-host target listed, as a URL without credentials.
  returned: when O(target) is given
  type: str
  sample: s3://acme-volume-backups/web1/
temporaries:
  description: Files of transfers to the target that did not finish (resumed by the next M(persist.docker.backup_offsite) of the same archive).
  returned: when O(target) is given
  type: list
  elements: str
orphan_sidecars:
  description: Sidecars on the target without their archive.
  returned: when O(target) is given
  type: list
  elements: str
"""

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import directory_info
from ansible_collections.persist.docker.plugins.module_utils._local_runner import build_local_module, run_local
from ansible_collections.persist.docker.plugins.module_utils._offsite_remote import offsite_info
from ansible_collections.persist.docker.plugins.module_utils._offsite_target import target_argument_spec


def main():
    module = build_local_module(
        dict(path=dict(type="path"), volume=dict(type="str"), **target_argument_spec()),
        required_one_of=[("path", "target")],
        mutually_exclusive=[("path", "target")],
        supports_check_mode=True,
    )
    params = module.params
    if params["target"]:
        run_local(module, lambda: offsite_info(params["target"], params["volume"]))
    run_local(module, lambda: directory_info(params["path"], params["volume"]))


if __name__ == "__main__":
    main()
