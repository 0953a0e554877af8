#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume
short_description: Create or remove Docker named volumes without ever losing their data
version_added: 0.1.0
description:
  - Creates a named volume with the given driver, driver options and labels, or confirms that
    an existing one matches.
  - Docker cannot change a volume's driver, options or labels in place. When an existing volume
    differs from the request, the task fails and lists each difference, unless
    O(recreate=if_empty) allows recreating it and it holds no data, or O(recreate=migrate) allows
    recreating it with its data carried over.
  - Removes a volume only when no container (running or stopped) references it, and only when it
    is empty unless O(force=true).
author:
  - persist.docker maintainers (@persist-docker)
extends_documentation_fragment:
  - persist.docker._docker.attributes
  - persist.docker._docker
  - persist.docker._docker.helper
attributes:
  check_mode:
    support: full
    details:
      - Emptiness checks run in a read-only helper container in check mode too, so the
        prediction of V(changed) and of failures is exact.
      - With O(recreate=migrate), check mode predicts the migration (and refuses what the real run
        refuses before copying) but cannot know whether the engine accepts the new settings, or
        whether every entry passes the copy's safety rules.
  diff_mode:
    support: full
    details:
      - The diff shows the volume's name, driver, driver options and labels before and after.
  idempotent:
    support: full
  action_group:
    support: full
    membership:
      - persist.docker.docker
options:
  name:
    description:
      - Name of the volume.
    type: str
    required: true
    aliases: [volume_name]
  state:
    description:
      - V(present) creates the volume if it is missing and checks that an existing one matches.
      - V(absent) removes it, within the limits described for O(force).
    type: str
    choices: [present, absent]
    default: present
  driver:
    description:
      - Volume driver.
    type: str
    default: local
  driver_opts:
    description:
      - Driver options, for example C(type), C(device) and C(o) of the C(local) driver.
      - When set, the existing volume's options must match exactly. When not set, they are not
        compared.
      - Values are compared as strings, the way Docker stores them.
    type: dict
    aliases: [options]
  labels:
    description:
      - Labels of the volume, for example the backup policy C(persist.backup=true).
      - When set, each label given must be on the existing volume with the same value; labels
        the volume has beyond these (such as those Docker Compose adds) are not a difference.
    type: dict
  recreate:
    description:
      - What to do when an existing volume differs from O(driver), O(driver_opts) or O(labels).
      - V(never) fails and lists the differences; nothing is changed.
      - V(if_empty) removes and recreates the volume when no container references it and it holds
        no entries; otherwise it fails and says how much data it holds. Labels the volume had
        beyond O(labels) are kept; unset O(driver_opts) are kept when the driver stays the same.
      - V(migrate) does what V(if_empty) does, and recreates a volume that holds data too, without
        losing it. The data is copied aside into a temporary volume of the C(local) driver, named
        C(<name>-persist-migrate-<random hex>) and labelled C(persist.docker.migrate=<name>) and with
        its owner, through the same staged and verified pipeline as M(persist.docker.volume_copy).
        The copy is verified against the volume's tree digest. Then the volume is removed and
        created with the new settings, the data is copied back and verified against the original
        tree digest, and only then is the temporary volume removed. The engine's local disk needs
        room for one more copy of the data.
      - If the engine refuses the new settings, the volume is created again with its previous
        settings, its data copied back and verified, and the task fails with the engine's reason.
      - A failure after the data was copied aside leaves the data, verified, in the temporary
        volume; the error names it and says how to copy it back. While such a temporary volume
        exists, this module refuses to create, confirm or recreate the volume (a run killed during
        a migration is noticed this way).
      - A migration refuses volumes whose entries break the safety rules of
        M(persist.docker.volume_restore) other than those that C(allow_special) lifts (device
        nodes, FIFOs and setuid/setgid files are carried over), for example a
        symlink whose relative target leaves the volume. The root directory's own extended
        attributes and ACLs are not carried over.
      - It takes the engine-side lock of the volume (and of the temporary volume) for the whole
        migration, like a backup or restore would, waiting up to 300 seconds for another run.
    type: str
    choices: [never, if_empty, migrate]
    default: never
  force:
    description:
      - With O(state=absent), remove the volume even when it holds data.
      - A volume referenced by a container is never removed, with or without O(force).
    type: bool
    default: false
seealso:
  - module: persist.docker.volume_info
  - module: community.docker.docker_volume
"""

EXAMPLES = r"""
- name: Create the volume a database keeps its data in, marked for backups
  persist.docker.volume:
    name: pgdata
    labels:
      persist.backup: "true"

- name: A volume on an NFS export
  persist.docker.volume:
    name: shared-uploads
    driver_opts:
      type: nfs
      o: addr=nfs.example.com,rw,nfsvers=4
      device: ":/exports/uploads"

- name: Change the labels of a volume that may be recreated while it is still empty
  persist.docker.volume:
    name: cache
    labels:
      tier: scratch
    recreate: if_empty

- name: Change the labels of a volume that holds data, carrying the data over
  persist.docker.volume:
    name: pgdata
    labels:
      persist.backup: "true"
      tier: gold
    recreate: migrate

- name: Remove a volume only if nothing uses it and it is empty
  persist.docker.volume:
    name: old-cache
    state: absent

- name: Remove a volume and the data in it (after taking a backup)
  persist.docker.volume:
    name: old-uploads
    state: absent
    force: true

- name: Talk to a remote engine over TLS for every module of the collection
  module_defaults:
    group/persist.docker.docker:
      docker_host: tcp://engine.example.com:2376
      validate_certs: true
      ca_path: /etc/docker/certs/ca.pem
      client_cert: /etc/docker/certs/cert.pem
      client_key: /etc/docker/certs/key.pem
  block:
    - name: Create a volume on it
      persist.docker.volume:
        name: appdata
"""

RETURN = r"""
volume:
  description:
    - The volume after the task. In check mode, the predicted volume.
    - After removal, or when O(state=absent) and the volume was missing, only RV(volume.name)
      and RV(volume.exists=false).
  returned: always
  type: dict
  contains:
    name:
      description: Name of the volume.
      type: str
      sample: pgdata
    exists:
      description: Whether the volume exists.
      type: bool
      sample: true
    driver:
      description: Volume driver.
      type: str
      sample: local
    driver_opts:
      description: Driver options, as strings.
      type: dict
      sample: {}
    labels:
      description: Labels of the volume.
      type: dict
      sample: {"persist.backup": "true"}
    mountpoint:
      description: Where the engine keeps the volume's data on its host. Not set in check mode.
      type: str
      sample: /var/lib/docker/volumes/pgdata/_data
    scope:
      description: C(local) or C(global). Not set in check mode.
      type: str
      sample: local
    created:
      description: Creation time as the engine reports it. Not set in check mode.
      type: str
      sample: "2026-11-27T05:12:44Z"
actions:
  description: What the task did (or would do in check mode), one sentence each.
  returned: always
  type: list
  elements: str
  sample: ["create volume pgdata with driver local"]
differences:
  description:
    - The differences between the existing volume and the request, one dict each with
      C(option), C(key), C(current) and C(wanted).
    - Also returned when the task fails because of them.
  returned: when O(state=present)
  type: list
  elements: dict
  sample: [{"option": "labels", "key": "tier", "current": null, "wanted": "scratch"}]
usage:
  description:
    - Entries and bytes the volume held, measured before recreating or removing it.
  returned: when the volume's contents were measured
  type: dict
  contains:
    entries:
      description: Files, directories, links and other entries below the volume's root.
      type: int
      sample: 0
    bytes:
      description: Apparent size of its regular files; a hard-linked file counts once.
      type: int
      sample: 0
    disk_bytes:
      description: Space allocated on disk to its files and directories.
      type: int
      sample: 0
    empty:
      description: Whether the volume has no entries at all.
      type: bool
      sample: true
containers:
  description:
    - On failure because containers reference the volume, each of them with C(name), C(id),
      C(state), C(running), C(read_only) and C(mount_path).
  returned: on that failure
  type: list
  elements: dict
migration:
  description: What O(recreate=migrate) did with a volume that held data.
  returned: when a volume with data was migrated (not in check mode)
  type: dict
  contains:
    aside_volume:
      description: The temporary volume the data was copied into (removed at the end).
      type: str
      sample: pgdata-persist-migrate-1a2b3c4d
    tree_digest:
      description: Tree digest of the data before the migration; the migrated volume was verified against it.
      type: str
    entries:
      description: Entries carried over.
      type: int
    bytes:
      description: Logical bytes of the regular files carried over.
      type: int
    duration_seconds:
      description: Time the migration took.
      type: float
aside_volume:
  description: On a failed migration, the temporary volume that holds the data.
  returned: on that failure
  type: str
reaped_helpers:
  description: Ids of helper containers abandoned by earlier killed runs that this task removed.
  returned: when there were any
  type: list
  elements: str
"""

from ansible_collections.persist.docker.plugins.module_utils._runner import build_module, run
from ansible_collections.persist.docker.plugins.module_utils._volume_ops import (
    ensure_absent,
    ensure_present,
)


def main():
    module = build_module(
        dict(
            name=dict(type="str", required=True, aliases=["volume_name"]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            driver=dict(type="str", default="local"),
            driver_opts=dict(type="dict", aliases=["options"]),
            labels=dict(type="dict"),
            recreate=dict(type="str", default="never", choices=["never", "if_empty", "migrate"]),
            force=dict(type="bool", default=False),
        ),
        uses_helpers=True,
        supports_check_mode=True,
    )
    params = module.params

    def operation(engine):
        if params["state"] == "absent":
            return ensure_absent(engine, params["name"], params["force"], module.check_mode)
        return ensure_present(
            engine,
            params["name"],
            params["driver"],
            params["driver_opts"],
            params["labels"],
            params["recreate"],
            module.check_mode,
        )

    run(module, operation)


if __name__ == "__main__":
    main()
