# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Documentation of the off-host targets of persist.docker modules.

    This is a private part of the collection: only its modules may rely on it.
    """

    # The suboptions of an off-host target, written once. TARGETS (a list, backup_offsite) and
    # TARGET (one, backup_info and backup_verify) are built from them after the class: ansible-test's
    # yamllint reads only literal class attributes (this one), validate-modules and ansible-doc
    # check what the modules get. The argument spec lives in module_utils/_offsite_target.py.
    SUBOPTIONS = r"""
type:
  description:
    - V(ssh) for an SSH server (rsync over ssh), V(s3) for S3-compatible object storage.
  type: str
  required: true
  choices: [ssh, s3]
verify:
  description:
    - How hard copies on the target are checked.
    - V(quick) checks what needs no download. Over SSH this is the size and C(sha256sum) run on
      the server against the sidecar's sha256. On S3 it is the size, the sha256 stored with the
      object, and its ETag against the one recorded when it was sent.
    - V(full) also reads the copies. M(persist.docker.backup_offsite) then checks the content of
      copies already on the target again (SSH C(sha256sum) on the server, S3 a streamed download
      hashed on the way) and sends again any that fail, and on S3 reads every new copy back after
      the upload. M(persist.docker.backup_verify) streams each copy, never to disk, through the
      restore's own verification (size, sha256, safety rules, tree digest).
  type: str
  choices: [quick, full]
  default: quick
connect_timeout:
  description:
    - Seconds to wait for a connection to the server or the endpoint.
  type: int
  default: 30
host:
  description:
    - SSH only, required. The server's host name or address.
  type: str
port:
  description:
    - SSH only. The server's port.
  type: int
  default: 22
user:
  description:
    - SSH only. The user to log in as. Defaults to the user the module runs as (or the ssh
      configuration of the Docker host).
  type: str
path:
  description:
    - SSH only, required. The directory on the server that holds the copies, absolute or
      relative to the user's home. It is created when missing.
    - Give each Docker host a directory of its own (for example
      C(/srv/offsite/{{ inventory_hostname }})). Retention on the target is per volume name, and two
      hosts with a volume of the same name would share it.
    - Letters, digits and C(._/@%+=:,~-) only. The remote shell sees it.
  type: str
private_key:
  description:
    - SSH only. The private key file on the Docker host to log in with, without a passphrase
      (a key with a passphrase works through ssh-agent, with E(SSH_AUTH_SOCK) set).
    - By default ssh uses the keys and agent of the user the module runs as.
  type: path
known_hosts:
  description:
    - SSH only. A known_hosts file that lists the server's host key. By default the known_hosts
      files of the user the module runs as are used.
    - Excludes O(OPTION.host_key).
  type: path
host_key:
  description:
    - SSH only. The server's public host key, as in its C(/etc/ssh/ssh_host_ed25519_key.pub)
      (C(ssh-ed25519 AAAAC3Nza...)). Then only this key is accepted.
  type: str
host_key_checking:
  description:
    - SSH only. V(strict) accepts only a host key that is already known (O(OPTION.host_key), O(OPTION.known_hosts)
      or the user's known_hosts). V(accept_new) also accepts the key of a server met for the
      first time and records it in the known_hosts file (trust on first use). A changed key is
      refused either way.
    - Checking cannot be turned off.
  type: str
  choices: [strict, accept_new]
  default: strict
endpoint_url:
  description:
    - S3 only. The endpoint of an S3-compatible store, such as C(https://minio.example.com:9000).
      By default the AWS endpoint of O(OPTION.region).
  type: str
bucket:
  description:
    - S3 only, required. The bucket. It must exist; the module does not create it.
  type: str
prefix:
  description:
    - S3 only. The key prefix under which the copies are stored; a V(/) is added when missing.
      Give each Docker host a prefix of its own (for example C({{ inventory_hostname }}/)).
  type: str
  default: ""
region:
  description:
    - S3 only. The region of the bucket.
  type: str
access_key:
  description:
    - S3 only. The access key id. With O(OPTION.secret_key). By default boto3 finds credentials on
      the Docker host (environment variables, C(~/.aws), an instance role).
    - Never shown in results, messages or logs.
  type: str
secret_key:
  description:
    - S3 only. The secret access key. Never shown in results, messages or logs.
  type: str
session_token:
  description:
    - S3 only. A session token for temporary credentials. Never shown.
  type: str
storage_class:
  description:
    - S3 only. The storage class of the copies, such as V(STANDARD), V(STANDARD_IA) or V(GLACIER_IR).
      Objects in V(GLACIER) or V(DEEP_ARCHIVE) cannot be read back without a restore, so
      O(OPTION.verify=full) fails on them.
  type: str
  default: STANDARD
multipart_threshold:
  description:
    - S3 only. Archives larger than this many MiB are uploaded in parts (and resumed part by part
      after an interruption). At least 5.
  type: int
  default: 64
part_size:
  description:
    - S3 only. The size of a part in MiB, at least 5. It grows by itself for archives that
      would need more than 10,000 parts. Each part is streamed from the file.
  type: int
  default: 64
addressing_style:
  description:
    - S3 only. V(path) puts the bucket in the URL's path (most self-hosted stores need it),
      V(virtual) in the host name, V(auto) lets boto3 choose.
  type: str
  choices: [auto, path, virtual]
  default: auto
validate_certs:
  description:
    - S3 only. Verify the endpoint's TLS certificate.
  type: bool
  default: true
ca_bundle:
  description:
    - S3 only. A CA bundle to verify the endpoint's certificate with.
  type: path
etag_check:
  description:
    - S3 only. Compare the ETags the store reports with the ones predicted from the parts
      sent (the MD5 of the bytes, or of the parts' MD5s).
    - Turn it off only for stores whose ETags are not MD5s (AWS S3 with SSE-KMS or SSE-C
      encryption). The size and the stored sha256 are still checked, and O(OPTION.verify=full)
      still reads the copies.
  type: bool
  default: true
"""


def _option(name, header):
    """``header`` (the lines of option ``name`` itself) with the suboptions indented below
    it, their references to each other (O(OPTION.x)) made references to ``name``'s."""
    suboptions = ModuleDocFragment.SUBOPTIONS.replace("O(OPTION.", "O(%s." % name)
    indented = "".join("      " + line if line.strip() else line for line in suboptions.lstrip("\n").splitlines(True))
    return "options:\n" + header + "    suboptions:\n" + indented


ModuleDocFragment.TARGETS = _option("targets[]", r"""  targets:
    description:
      - The off-host targets to copy the backups to, each an SSH server or an S3 bucket. They are
        handled one after the other; a failure on one does not stop the others.
    type: list
    elements: dict
    required: true
""")

ModuleDocFragment.TARGET = _option("target", r"""  target:
    description:
      - An off-host target (an SSH server or an S3 bucket, the dict of
        O(persist.docker.backup_offsite#module:targets)) to read instead of a local directory.
    type: dict
""")
