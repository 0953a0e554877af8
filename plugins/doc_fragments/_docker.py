# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Shared documentation of persist.docker modules.

    This is a private part of the collection: only its modules may rely on it.
    """

    # Connection options; the argument spec lives in module_utils/_connection.py.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker engine to talk to, as a URL such as C(unix:///var/run/docker.sock),
        C(tcp://engine.example.com:2376) or C(ssh://user@engine.example.com).
      - Falls back to the E(DOCKER_HOST) environment variable, then to the local socket.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls:
    description:
      - Talk to the engine over TLS.
      - Implied when O(validate_certs=true).
      - Falls back to the E(DOCKER_TLS) environment variable.
    type: bool
    default: false
  validate_certs:
    description:
      - Verify the engine's certificate against O(ca_path) when using TLS.
      - Falls back to the E(DOCKER_TLS_VERIFY) environment variable.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate that signed the engine's certificate.
      - Defaults to C(ca.pem) in the directory named by E(DOCKER_CERT_PATH) when that variable is set.
    type: path
    aliases: [ca_cert, tls_ca_cert]
  client_cert:
    description:
      - Client certificate presented to the engine.
      - Defaults to C(cert.pem) in the directory named by E(DOCKER_CERT_PATH) when that variable is set.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Private key of O(client_cert).
      - Defaults to C(key.pem) in the directory named by E(DOCKER_CERT_PATH) when that variable is set.
    type: path
    aliases: [tls_client_key, key_path]
  api_version:
    description:
      - Docker API version to speak, for example C(1.41). V(auto) asks the engine.
      - Falls back to the E(DOCKER_API_VERSION) environment variable.
    type: str
    default: auto
    aliases: [docker_api_version]
  timeout:
    description:
      - Seconds to wait for an answer to one API call. Data streams are not limited by it.
      - Falls back to the E(DOCKER_TIMEOUT) environment variable.
    type: int
    default: 60
requirements:
  - Docker SDK for Python >= 5.0 (C(pip install docker), or the distribution's C(python3-docker))
  - The managed node must reach the Docker engine (its socket or TCP address).
notes:
  - Connection options can be set once for all modules of the collection with
    C(module_defaults) and the action group C(group/persist.docker.docker).
attributes:
  action_group:
    description: Takes its defaults from C(module_defaults) for C(group/persist.docker.docker).
"""

    # Descriptions of the attributes every module declares.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Runs in check mode, predicting V(changed) without changing anything.
  diff_mode:
    description: Shows what changes (or would change, in check mode) with C(--diff).
  idempotent:
    description: A second run with the same arguments on an unchanged system reports no change.
"""

    # Options of the short-lived helper containers that read or write volume data.
    HELPER = r"""
options:
  helper_image:
    description:
      - Image of the short-lived helper containers that read volume contents.
      - Any image with GNU tar and GNU find works. On an air-gapped site, load or tag a local
        image under this name (for example C(docker tag my-debian debian:bookworm-20250908-slim)).
    type: str
    default: debian:bookworm-20250908-slim
  helper_pull:
    description:
      - When to pull O(helper_image).
      - V(missing) pulls only when the engine does not have it, V(always) pulls every run,
        V(never) fails when the image is missing.
    type: str
    choices: [missing, always, never]
    default: missing
  helper_transport:
    description:
      - How a volume's data travels between the helper container and this module.
      - V(auto) uses a FIFO when this module provably runs on the engine's own host. It makes a
        fresh private (0700) directory with a random token, and a helper that bind-mounts that
        directory must read the token back. The directory is bound only into this task's helpers,
        holds FIFOs and never data at rest, and is removed when the task ends (or by the next task,
        after a kill). Otherwise (a remote or rootless engine, this module in a container with the
        engine's socket) the data goes through the Docker API stream.
      - V(api) always uses the Docker API stream.
      - The results of M(persist.docker.volume_backup), M(persist.docker.volume_restore) and
        M(persist.docker.volume_copy), and a backup's sidecar, say which ran (C(transport)).
    type: str
    choices: [auto, api]
    default: auto
notes:
  - Helper containers run with no network, the log driver C(none), a read-only root file system,
    the volume mounted read-only, and the label C(persist.docker.helper). They are removed when
    the task ends; helpers left behind by a killed run are removed by the next run.
"""

    # Reading encrypted archives (volume_restore, backup_verify); the argument spec lives in module_utils/_encryption.py.
    DECRYPTION = r"""
options:
  decrypt_identity_file:
    description:
      - A file on the managed node with the private key that opens encrypted archives (C(.tar.zst.age)
        and the like). It is an age identity file (C(AGE-SECRET-KEY-1...) lines, as C(age-keygen) writes
        it) or an OpenSSH private key (ed25519 or RSA, not passphrase-protected) whose public key was a
        recipient of the backup.
      - Archives that are not encrypted are read as usual.
    type: path
  decrypt_identity:
    description:
      - The same as O(decrypt_identity_file), given as its content (for example from a vault or an AWX
        credential). It is never logged or returned.
    type: str
notes:
  - Encrypted archives are decrypted with pyrage (the Python bindings of rage, an implementation of age),
    which must be installed on the managed node (C(pip install pyrage)).
  - A wrong or missing identity fails the task before anything is extracted or any container stopped.
"""

    # Live containers, hooks and the lock; the argument spec lives in module_utils/_consistency.py.
    CONSISTENCY = r"""
options:
  containers:
    description:
      - What to do with running containers that mount the volume, so that the data is not read or
        written while they change it. A backup cares about containers that mount the volume
        read-write; a restore about every running container that mounts it.
      - V(fail) refuses and lists them.
      - V(stop) stops them (dependents first, waiting O(stop_timeout) seconds each), does the work,
        and starts exactly those again, dependencies first, also when the work fails. The result
        says for how long each was down. A restore stops them only once the archive is extracted
        into its staging tree, for reading that tree back and the swap.
      - V(pause) freezes them for the duration of a backup (not allowed for a restore). The copy is
        only crash-consistent, and the result and the sidecar say so.
      - V(ignore) copies the live data anyway, which is crash-consistent at best; the result and
        the sidecar say so. A backup keeps entries that change while they are read as they were
        read, with a warning, and the sidecar records GNU tar's report (C(changed_while_read)).
        Without V(ignore), a volume that changes while it is read (a writer outside Docker's
        view) fails the backup and keeps no archive.
      - When not set, each container's label C(persist.docker.containers) (V(fail), V(stop),
        V(pause) or V(ignore)) decides for that container, so a fleet-wide run needs no per-host
        lists; containers without the label get V(fail). When set, it applies to every container
        and labels are ignored.
      - A label's V(ignore) counts as V(fail) where the volume is written (a restore, a copy's
        destination). An image can carry labels into every container made from it, so only this
        option can leave a container running while its volume is written.
      - Stopping and starting containers does not count as a change; see RV(consistency).
    type: str
    choices: [fail, stop, pause, ignore]
  stop_timeout:
    description:
      - Seconds each container gets to stop gracefully before the engine kills it.
      - The result marks a container that had to be killed.
    type: int
    default: 60
  pre_commands:
    description:
      - Commands run with C(exec) in running containers, in order, before the containers are
        stopped or paused; for example a logical dump into the volume, or a CHECKPOINT.
      - The first that fails (non-zero exit code, timeout, container missing) aborts the task
        before any data is read or written; O(post_commands) still run.
      - They run after the lock is taken; check mode does not run them.
    type: list
    elements: dict
    default: []
    suboptions: &hook
      container:
        description: Name or id of the container to run the command in.
        type: str
        required: true
      command:
        description:
          - The command. A list runs as it is; a string runs through C(/bin/sh -c) in the container.
        type: raw
        required: true
      user:
        description: User to run the command as (the container's user when not set).
        type: str
      workdir:
        description: Working directory of the command.
        type: str
      env:
        description: Environment variables for the command.
        type: dict
        default: {}
      timeout:
        description:
          - Seconds to wait for the command. A command that takes longer counts as failed; it may
            still run in the container.
        type: int
        default: 600
  post_commands:
    description:
      - Commands run with C(exec) after the work, once the containers run again; for example
        removing a dump. They run whenever the pre-commands started, also when the work failed,
        and all of them run even when one fails (the task then fails and says which).
      - The output of every command is returned in RV(hooks), the last 16 KiB of stdout and of stderr.
    type: list
    elements: dict
    default: []
    suboptions: *hook
  lock_timeout:
    description:
      - Seconds to wait for another run that works on the same volume (another fork, controller or
        AWX job talking to the same engine) before failing with a message that names it.
      - The lock is a container named C(persist-lock-<volume>) on the engine, so it holds across
        controllers.
    type: int
    default: 300
  lock_expiry:
    description:
      - Seconds after which a lock is broken even though its holder seems alive. A lock whose holder
        was killed is broken at once (its lock container exits when the holder's connection
        closes). A run whose lock was broken commits nothing.
      - Containers that a killed run had stopped or paused are started or unpaused by the run that
        breaks its lock, at the end of its own work; the result lists them.
    type: int
    default: 21600
  recovery:
    description:
      - What to do with reserved entries at the volume's root (names starting with C(.persist-)),
        that is the swap journal and staging trees of restores and copies.
      - They are acted on only when the engine holds this collection's record of that very run (a
        container named C(persist-swap-<volume>) that is never started, holding the run's token and
        a secret that never enters the volume). Anything that mounts the volume can write those names,
        so nothing found there alone is ever executed or trusted.
      - V(finish) finishes a swap that a killed run left half done (a restore or copy target), and
        removes staging trees of runs killed before their swap. Reserved entries this collection did
        not write are left alone with a warning. A journal it did not write (planted by a container,
        or one whose record was removed, for example by C(docker container prune)) stops the task
        with a message that says so; nothing is done and no container is started on the volume.
        A host that prunes containers on a schedule keeps the records with
        C(docker container prune --filter label!=persist.docker.swap) (C(docker system prune) takes
        the same filter).
      - V(discard) does the same, and gives every reserved entry that this collection did not write,
        journal included, a visible name (C(persist-discarded-<UTC time>-persist-...)), so that
        nothing is deleted and the task can go on. Look at those entries afterwards, and restore the
        volume if they show it holds a mix of two trees.
    type: str
    choices: [finish, discard]
    default: finish
"""
