#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_info
short_description: Inspect Docker volumes, who mounts them and how much they hold
version_added: 0.1.0
description:
  - Describes one named volume, or every volume (optionally only those with given labels), with its
    driver, options, labels, mountpoint, creation time, and each container that mounts it,
    running or not, read-only or read-write, and where.
  - On request, counts the entries and bytes each volume holds, inside a short-lived read-only
    helper container.
  - Never changes anything.
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
      - The module only reads; it runs the same way in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
  action_group:
    support: full
    membership:
      - persist.docker.docker
options:
  name:
    description:
      - Name of one volume to describe. When not set, all volumes are described.
    type: str
    aliases: [volume_name]
  labels:
    description:
      - Describe only the volumes that carry every one of these labels.
      - Each item is C(key) (the label is set, whatever its value) or C(key=value).
    type: list
    elements: str
  size:
    description:
      - Count the entries and bytes of each volume, in a read-only helper container with no
        network. This reads every directory of the volume, so it takes time on large volumes.
    type: bool
    default: false
notes:
  - O(name) and O(labels) are mutually exclusive.
seealso:
  - module: persist.docker.volume
"""

EXAMPLES = r"""
- name: Does the database volume exist, and who uses it?
  persist.docker.volume_info:
    name: pgdata
  register: pgdata

- name: Stop before touching a volume that a running container writes to
  ansible.builtin.assert:
    that:
      - pgdata.exists
      - pgdata.volume.containers | selectattr('running') | rejectattr('read_only') | list | length == 0
    fail_msg: "pgdata is mounted read-write by a running container"

- name: All volumes marked for backup, with their sizes
  persist.docker.volume_info:
    labels:
      - persist.backup=true
    size: true
  register: marked

- name: Show what would be backed up
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.usage.bytes }} bytes in {{ item.usage.entries }} entries"
  loop: "{{ marked.volumes }}"

- name: Volumes that no container references
  persist.docker.volume_info:
  register: all_volumes

- name: List them
  ansible.builtin.debug:
    msg: "{{ all_volumes.volumes | rejectattr('containers') | map(attribute='name') | list }}"
"""

RETURN = r"""
exists:
  description: Whether the volume named by O(name) exists.
  returned: when O(name) is set
  type: bool
  sample: true
volume:
  description:
    - The volume named by O(name), as one item of RV(volumes).
    - When it does not exist, only C(name) and C(exists=false).
  returned: when O(name) is set
  type: dict
  sample: {"name": "pgdata", "exists": false}
volumes:
  description: The volumes described, sorted by name. Empty when O(name) does not exist.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the volume.
      type: str
      sample: pgdata
    exists:
      description: Always true for an item of this list.
      type: bool
      sample: true
    driver:
      description: Volume driver.
      type: str
      sample: local
    driver_opts:
      description: Driver options.
      type: dict
      sample: {}
    labels:
      description: Labels of the volume.
      type: dict
      sample: {"persist.backup": "true"}
    mountpoint:
      description: Where the engine keeps the volume's data on its host.
      type: str
      sample: /var/lib/docker/volumes/pgdata/_data
    scope:
      description: C(local) or C(global).
      type: str
      sample: local
    created:
      description: Creation time as the engine reports it.
      type: str
      sample: "2026-11-27T05:12:44Z"
    containers:
      description: The containers that mount the volume, running or not, sorted by name.
      type: list
      elements: dict
      contains:
        name:
          description: Container name.
          type: str
          sample: postgres
        id:
          description: Container id.
          type: str
        state:
          description: Container state, such as C(running), C(exited), C(paused), C(created).
          type: str
          sample: running
        running:
          description: Whether it may be using the volume's files now (running, paused or restarting).
          type: bool
          sample: true
        read_only:
          description: Whether the volume is mounted read-only in it.
          type: bool
          sample: false
        labels:
          description:
            - The container's labels, for example C(persist.docker.containers) (the backup policy) or those
              the database role sets (C(persist.docker.database.engine)).
          type: dict
        mount_path:
          description: Where the volume is mounted inside the container.
          type: str
          sample: /var/lib/postgresql/data
    usage:
      description: What the volume holds.
      returned: when O(size=true)
      type: dict
      contains:
        entries:
          description: Files, directories, links and other entries below the volume's root.
          type: int
          sample: 1523
        bytes:
          description: Apparent size of its regular files; a hard-linked file counts once.
          type: int
          sample: 48234496
        disk_bytes:
          description: Space allocated on disk to its files and directories (less for sparse files).
          type: int
          sample: 48300032
        empty:
          description: Whether the volume has no entries at all.
          type: bool
          sample: false
reaped_helpers:
  description: Ids of helper containers abandoned by earlier killed runs that this task removed.
  returned: when there were any
  type: list
  elements: str
"""

from ansible_collections.persist.docker.plugins.module_utils._runner import build_module, run
from ansible_collections.persist.docker.plugins.module_utils._volume_info_ops import volume_info


def main():
    module = build_module(
        dict(
            name=dict(type="str", aliases=["volume_name"]),
            labels=dict(type="list", elements="str"),
            size=dict(type="bool", default=False),
        ),
        uses_helpers=True,
        supports_check_mode=True,
        mutually_exclusive=[("name", "labels")],
    )
    params = module.params

    run(module, lambda engine: volume_info(engine, params["name"], params["labels"], params["size"]))


if __name__ == "__main__":
    main()
