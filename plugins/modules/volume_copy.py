#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_copy
short_description: Copy a Docker volume into another, on the same engine or onto another engine
version_added: 0.1.0
description:
  - Copies the contents of volume O(source) into volume O(dest), keeping everything a backup keeps.
    That is owners (numeric), modes with setuid/setgid/sticky bits, nanosecond modification
    times, extended attributes, ACLs and file capabilities, hard links, sparse files, symlinks
    and empty directories.
  - One pipeline with M(persist.docker.volume_backup) and M(persist.docker.volume_restore). GNU tar
    streams O(source) with a backup's options, and the module parses that stream as it passes,
    checking every entry against the restore's safety rules and computing the tree digest. On one
    engine, one helper container mounts O(source) read-only and O(dest), and extracts the same
    stream into a staging directory inside O(dest) while the module checks it. Across engines,
    the module hands a helper on the destination's engine its own re-serialization of the
    checked entries (never the bytes it read), which the helper extracts.
  - Staged and atomic. Only a complete stream is swapped in, by renames inside O(dest) under a
    journal, exactly as a restore does. A failure before the swap leaves the entries of O(dest) as
    they were. A run killed during the swap leaves a journal that the next copy or restore into
    O(dest) finishes.
  - Verified before the swap. The staged tree is read back and its tree digest must equal that of
    the stream the module checked, and the source must not have changed while it was copied. On
    one engine, where the module runs on the engine's host (the fast path), the helper lists the
    source's metadata (type, mode, owner, size, times, inode, links) before and after the copy
    (any write moves an entry's ctime), and the module reads the staged tree back. Through the API
    stream, the staged tree must read back byte for byte as the source reads now (both through GNU
    tar, compared with C(cmp) inside the helper, holes of sparse files as holes). When the listing
    or the bytes differ, the staged tree is compared with the source entry by entry. Across
    engines, the staged tree is read back on the destination's engine. If the staged tree is not
    the source (the source changed during the copy, or the destination's storage does not keep an
    attribute), nothing is swapped in and the task fails naming the entries that differ. With
    O(mode=merge), O(dest) is also read back after the swap; every entry of the source must be in
    O(dest) as it is in the source. Both digests are returned.
  - Safe. A copy never creates what a restore would refuse from an archive. An entry of the
    source that breaks a safety rule (a symlink whose relative target leaves the volume or has
    C(..) after a name, a name reserved for staging, and, unless O(allow_special=true), device
    nodes, FIFOs, setuid/setgid bits and extended attributes that grant privileges such as file
    capabilities) stops the copy before the swap, so it never reaches the entries of O(dest).
    Across engines it does not even reach the staging directory. On one engine the helper lacks
    the privileges to create device nodes, keep setuid/setgid bits or set file capabilities
    (unless O(allow_special=true)). The task fails naming the entry and the rule.
  - Idempotent. With O(copy_when=different), the two trees are compared entry by entry first, and
    nothing is done when O(dest) already matches.
  - Across engines. With O(dest_docker_host), O(dest) lives on another engine (another host). The
    data streams from a helper on the source's engine, through this module, into a helper on the
    destination's engine, with no temporary file, and with the same checks and guarantees.
  - Safe around live containers and serialized, like a backup (for O(source)) and a restore (for
    O(dest)). See O(containers) and O(lock_timeout).
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
      - Reads the source through the safety rules and compares it with O(dest) (in read-only
        helpers), and reports whether the copy would change O(dest); writes nothing.
  diff_mode:
    support: full
    details:
      - Lists the entries that would be added, changed and removed in O(dest) (the first 50 of each,
        with counts).
  idempotent:
    support: full
    details:
      - With O(copy_when=always), every run copies and reports a change.
  action_group:
    support: full
    membership:
      - persist.docker.docker
options:
  source:
    description:
      - The volume to copy from. It is only read (mounted read-only).
    type: str
    required: true
  dest:
    description:
      - The volume to copy into. On the same engine it must not be O(source).
    type: str
    required: true
  mode:
    description:
      - V(replace) makes O(dest) equal to O(source); entries only O(dest) has are removed.
      - V(merge) adds and replaces the entries of O(source) and keeps entries only O(dest) has.
    type: str
    choices: [replace, merge]
    default: replace
  copy_when:
    description:
      - V(different) first compares both trees entry by entry and copies only when O(dest) would
        change. In V(merge) mode, only the entries of O(source) count.
      - V(always) copies without comparing first (one read of each volume fewer); the task always
        reports a change.
    type: str
    choices: [different, always]
    default: different
  create:
    description:
      - Create a missing O(dest) with the driver, driver options and labels of O(source), or with
        O(dest_driver), O(dest_driver_opts) and O(dest_labels) where given.
      - The source's driver options are only taken when the driver stays the same, and only when
        they give O(dest) storage of its own (the C(local) driver, plain or tmpfs). A bind mount, an
        NFS or CIFS share, a block device or a volume plugin's options are refused, since on another engine
        they may name storage that is in use there. Give O(dest_driver_opts) (and O(dest_driver))
        for such a volume.
      - Settings given or taken must not make O(dest) the same storage as another volume, or as a
        host directory a container bind-mounts (on the destination's engine); an existing O(dest)
        is refused on the same grounds.
      - When the copy fails before anything was swapped in, a O(dest) created by the task is removed
        again.
      - When false, a missing O(dest) is an error.
    type: bool
    default: true
  dest_driver:
    description:
      - Driver of O(dest) when the task creates it. Defaults to the source's driver.
      - An existing O(dest) is never changed or recreated; see O(persist.docker.volume#module:recreate).
    type: str
  dest_driver_opts:
    description:
      - Driver options of O(dest) when the task creates it. Defaults to the source's (with the same driver).
    type: dict
  dest_labels:
    description:
      - Labels of O(dest) when the task creates it. Defaults to the source's labels, less those of this
        collection's own temporary volumes (C(persist.docker.*)).
    type: dict
  allow_special:
    description:
      - Copy device nodes, FIFOs, setuid/setgid files and extended attributes that grant privileges
        (C(security.capability), C(trusted.*)). Without it, a source that holds any is not copied.
    type: bool
    default: false
  dest_docker_host:
    description:
      - The engine that holds O(dest), when it is another than the source's (O(docker_host)), as a URL
        like O(docker_host).
      - When it names the same engine as O(docker_host) (same engine id, host name and data root), the
        copy is a copy on one engine.
      - The helper image must be on that engine too, or be pullable there (O(helper_image),
        O(helper_pull) apply to both engines).
      - O(pre_commands) and O(post_commands) run on the source's engine.
    type: str
  dest_tls:
    description:
      - O(tls) for O(dest_docker_host). Defaults to the value of O(tls).
    type: bool
  dest_validate_certs:
    description:
      - O(validate_certs) for O(dest_docker_host). Defaults to the value of O(validate_certs).
    type: bool
  dest_ca_path:
    description:
      - O(ca_path) for O(dest_docker_host). Defaults to the value of O(ca_path).
    type: path
  dest_client_cert:
    description:
      - O(client_cert) for O(dest_docker_host). Defaults to the value of O(client_cert).
    type: path
  dest_client_key:
    description:
      - O(client_key) for O(dest_docker_host). Defaults to the value of O(client_key).
    type: path
  dest_api_version:
    description:
      - O(api_version) for O(dest_docker_host). Defaults to the value of O(api_version).
    type: str
  dest_timeout:
    description:
      - O(timeout) for O(dest_docker_host). Defaults to the value of O(timeout).
    type: int
notes:
  - The data is on disk before the task reports success. While the helper extracts the staging
    tree it syncs the volume's file system every 0.3 seconds (C(sync -f), as the swap does at the
    end), so the disk writes while the data arrives; on a shared host this also writes out other
    programs' pending data on that file system sooner than the kernel would have.
  - The O(containers) policy applies to both volumes. For O(source) it concerns running containers
    that mount it read-write (as for a backup); for O(dest), every running container that mounts it
    (as for a restore). Both volumes are locked (in name order on one engine; on two engines, each on
    its own engine) for the whole copy.
  - On one engine one helper mounts both volumes and reads the staged tree back itself. Where this
    module runs on the engine's host (O(helper_transport=auto)), the helper's tar stream comes to
    the module through a FIFO and goes back, checked, into the extracting tar, and the module stops it
    at the first entry that breaks a safety rule. Through the API stream the data does not cross
    the API twice; the helper extracts the stream it also sends to the module (through C(tee)), so
    the safety rules and the digest see every byte while the staging directory is filled, not
    before. Either way that directory is hidden under a reserved name until the swap, and removed
    when the module refuses an entry. By default (O(containers=fail) or V(stop)) no container that
    uses O(dest) runs during the copy.
  - The helper image needs C(sha256sum), C(tee), C(mkfifo) and C(cmp) besides GNU tar and GNU
    find for copies on one engine, as Debian's images have.
  - The root directory's owner, mode and modification time are copied. Its own extended attributes
    and ACLs are not (the swap renames entries into the existing root), and are left out when the
    trees are compared and verified.
  - Absolute symlink targets are copied as they are. They point into the file system of the
    container that mounts the volume, and the copy never follows them.
seealso:
  - module: persist.docker.volume_backup
  - module: persist.docker.volume_restore
  - module: persist.docker.volume
"""

EXAMPLES = r"""
- name: Copy uploads into a new volume with the same driver, options and labels
  persist.docker.volume_copy:
    source: uploads
    dest: uploads-copy

- name: Clone a database volume, stopping the database for a consistent copy
  persist.docker.volume_copy:
    source: pgdata
    dest: pgdata-staging
    containers: stop
    dest_labels:
      env: staging

- name: Move a volume to another host (host-to-host migration, no temporary file)
  persist.docker.volume_copy:
    source: pgdata
    dest: pgdata
    docker_host: unix:///var/run/docker.sock
    dest_docker_host: tcp://new-host.example.com:2376
    dest_validate_certs: true
    dest_ca_path: /etc/docker/certs/ca.pem
    dest_client_cert: /etc/docker/certs/cert.pem
    dest_client_key: /etc/docker/certs/key.pem
    containers: stop

- name: Add the files of one volume to another, keeping what the other has
  persist.docker.volume_copy:
    source: assets-new
    dest: assets
    mode: merge

- name: What would a copy change?
  persist.docker.volume_copy:
    source: uploads
    dest: uploads-copy
  check_mode: true
  diff: true
  register: preview
"""

RETURN = r"""
source:
  description: Name of the volume copied from.
  returned: always
  type: str
  sample: pgdata
dest:
  description: Name of the volume copied into.
  returned: always
  type: str
  sample: pgdata-staging
dest_docker_host:
  description: The destination's engine, when it is another engine than the source's; null otherwise.
  returned: always
  type: str
created:
  description: Whether the task created O(dest) (false in check mode).
  returned: always
  type: bool
verified:
  description: Whether the copy was read back (the staged tree on one engine, O(dest) across engines or with O(mode=merge)) and matched the source.
  returned: always
  type: bool
tree_digest:
  description:
    - C(source) is the tree digest of the source as read (the digest a backup of it records).
    - C(dest) is that of O(dest) after the copy, or as compared before (null when it was not read).
      After a copy with O(mode=replace) it is the digest of the staged tree, which was verified
      against the source before the swap.
  returned: when the source was read
  type: dict
  sample: {"source": "9f2c...", "dest": "9f2c..."}
entries:
  description: Entries in the source's tree.
  returned: when the source was read
  type: int
bytes:
  description: Logical bytes of the source's regular files.
  returned: when the source was read
  type: int
streamed_bytes:
  description: Bytes of the tar stream the module checked (and, across engines, carried from one helper to the other).
  returned: when a copy was made
  type: int
differences:
  description:
    - How O(dest) differed from the source before the task. In V(merge) mode, entries only in O(dest)
      are counted in C(kept_extra) instead of C(removed).
  returned: when O(dest) existed and was compared
  type: dict
  sample: {"mode": "replace", "added": 1, "changed": 0, "removed": 2, "added_paths": ["data/new"], "changed_paths": [], "removed_paths": ["tmp", "tmp/x"]}
skipped_reason:
  description: Why nothing was copied (O(dest) already matches); null when a copy was made.
  returned: always
  type: str
  sample: volume pgdata-staging already equals volume pgdata
finished_interrupted:
  description: Whether a swap left half done in O(dest) by a killed run was finished first.
  returned: always
  type: bool
actions:
  description: What the task did (or would do in check mode), one sentence each.
  returned: always
  type: list
  elements: str
duration_seconds:
  description: Time spent comparing, copying, swapping and verifying.
  returned: when a copy was made
  type: float
member:
  description: On a refused source, the entry that broke a rule.
  returned: on that failure
  type: str
rule:
  description: On a refused source, the rule it broke.
  returned: on that failure
  type: str
containers:
  description: On failure because running containers mount a volume, each of them.
  returned: on that failure
  type: list
  elements: dict
consistency:
  description:
    - How the data was kept consistent with the containers that mount either volume; each container
      entry names its C(volume). See RV(persist.docker.volume_restore#module:consistency).
  returned: always
  type: dict
lock:
  description: The locks on both volumes, how long this run waited, and stale locks it broke.
  returned: always
  type: dict
  sample: {"names": ["persist-lock-pgdata", "persist-lock-pgdata-staging"], "waited_seconds": 0.0, "broken": []}
hooks:
  description: Reports of the pre- and post-commands that ran, as in M(persist.docker.volume_restore).
  returned: always
  type: list
  elements: dict
transport:
  description:
    - How the source's data travelled between the helper containers and the module (see
      O(helper_transport)), V(fifo) (the co-located fast path) or V(api) (the Docker API stream);
      null when no data moved.
  returned: always
  type: str
  sample: fifo
dest_transport:
  description: The same for the destination's engine, in a copy across engines.
  returned: when O(dest_docker_host) names another engine
  type: str
  sample: api
reaped_helpers:
  description: Ids of helper containers abandoned by earlier killed runs that this task removed (source engine).
  returned: when there were any
  type: list
  elements: str
dest_reaped_helpers:
  description: The same on the destination's engine.
  returned: when there were any
  type: list
  elements: str
"""

from ansible_collections.persist.docker.plugins.module_utils._connection import prefixed_connection_argument_spec
from ansible_collections.persist.docker.plugins.module_utils._copy_ops import CopyOptions, copy
from ansible_collections.persist.docker.plugins.module_utils._runner import build_module, run


def main():
    spec = dict(
        source=dict(type="str", required=True),
        dest=dict(type="str", required=True),
        mode=dict(type="str", default="replace", choices=["replace", "merge"]),
        copy_when=dict(type="str", default="different", choices=["different", "always"]),
        create=dict(type="bool", default=True),
        dest_driver=dict(type="str"),
        dest_driver_opts=dict(type="dict"),
        dest_labels=dict(type="dict"),
        allow_special=dict(type="bool", default=False),
    )
    spec.update(prefixed_connection_argument_spec("dest_"))
    module = build_module(spec, uses_helpers=True, guards_consistency=True, supports_check_mode=True)

    run(module, lambda engine: copy(engine, CopyOptions.from_params(module.params), module.check_mode))


if __name__ == "__main__":
    main()
