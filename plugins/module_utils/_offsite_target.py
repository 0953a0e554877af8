# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The off-host target dict: its argument spec, its validation, its name, and the masking of
its credentials (pure logic: no Ansible, no boto3, no subprocess).

One spec serves backup_offsite (a list of targets) and backup_info / backup_verify (one
target); doc_fragments/_offsite.py documents it once.
"""

from __future__ import annotations

import re

from ansible_collections.persist.docker.plugins.module_utils._errors import OffsiteError

MIB = 1 << 20
# S3 refuses parts below 5 MiB (but the last) and uploads of more than 10,000 parts.
S3_MIN_PART_MIB = 5
S3_MAX_PARTS = 10000
MASK = "********"

SSH_OPTIONS = ("host", "port", "user", "path", "private_key", "known_hosts", "host_key", "host_key_checking")
S3_OPTIONS = (
    "endpoint_url", "bucket", "prefix", "region", "access_key", "secret_key", "session_token", "storage_class",
    "multipart_threshold", "part_size", "addressing_style", "validate_certs", "ca_bundle", "etag_check",
)
# Options of one kind that have no default: given with the other kind, they are a mistake.
_ONLY_SSH = ("host", "user", "path", "private_key", "known_hosts", "host_key")
_ONLY_S3 = ("endpoint_url", "bucket", "region", "access_key", "secret_key", "session_token", "ca_bundle")
# Characters a remote path may hold: rsync and the remote shell see it, so nothing they interpret.
_SAFE_REMOTE_PATH = re.compile(r"\A[A-Za-z0-9._/@%+=:,~-]+\Z")


def target_options():
    """The suboptions of a target dict (an Ansible argument spec)."""
    return dict(
        type=dict(type="str", required=True, choices=["ssh", "s3"]),
        verify=dict(type="str", default="quick", choices=["quick", "full"]),
        connect_timeout=dict(type="int", default=30),
        host=dict(type="str"),
        port=dict(type="int", default=22),
        user=dict(type="str"),
        path=dict(type="str"),
        private_key=dict(type="path", no_log=False),
        known_hosts=dict(type="path"),
        host_key=dict(type="str", no_log=False),
        host_key_checking=dict(type="str", default="strict", choices=["strict", "accept_new"], no_log=False),
        endpoint_url=dict(type="str"),
        bucket=dict(type="str"),
        prefix=dict(type="str", default=""),
        region=dict(type="str"),
        access_key=dict(type="str", no_log=True),
        secret_key=dict(type="str", no_log=True),
        session_token=dict(type="str", no_log=True),
        storage_class=dict(type="str", default="STANDARD"),
        multipart_threshold=dict(type="int", default=64),
        part_size=dict(type="int", default=64),
        addressing_style=dict(type="str", default="auto", choices=["auto", "path", "virtual"]),
        validate_certs=dict(type="bool", default=True),
        ca_bundle=dict(type="path"),
        etag_check=dict(type="bool", default=True),
    )


def target_argument_spec():
    """``target``: one target dict (backup_info, backup_verify)."""
    return dict(target=dict(type="dict", options=target_options()))


def targets_argument_spec():
    """``targets``: a list of target dicts (backup_offsite)."""
    return dict(targets=dict(type="list", elements="dict", required=True, options=target_options()))


class TargetBackend:
    """What the backends of both kinds share: use as a context manager, and
    ``transport_problem`` says why the last download stream broke (None when it did not)."""

    transport_problem = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Release what the backend holds (connections, temporary files)."""


class Masker:
    """Replaces the credentials of the targets in any text shown to the user."""

    def __init__(self, secrets=()):
        self._secrets = sorted(set(secret for secret in secrets if secret), key=len, reverse=True)

    def add(self, *secrets):
        self._secrets = sorted(set(self._secrets).union(secret for secret in secrets if secret), key=len, reverse=True)

    def mask(self, text):
        if text is None:
            return None
        text = str(text)
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _URL_USERINFO.sub(r"\1%s@" % MASK, text)


# user:password@ in a URL (an endpoint given with credentials in it).
_URL_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def masker_for(targets):
    """One Masker for the credentials of every target dict in ``targets``."""
    masker = Masker()
    for target in targets:
        masker.add(target.get("access_key"), target.get("secret_key"), target.get("session_token"))
    return masker


def s3_prefix(prefix):
    """The key prefix of an S3 target: no leading '/', ending in '/' unless empty."""
    prefix = (prefix or "").lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def target_name(target):
    """How results and messages name a target: a URL without any credential."""
    if target["type"] == "ssh":
        host = target.get("host") or "?"
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        user = "%s@" % target["user"] if target.get("user") else ""
        path = target.get("path") or ""
        return "ssh://%s%s:%d%s%s" % (user, host, target.get("port") or 22, "" if path.startswith("/") else "/~/", path)
    name = "s3://%s/%s" % (target.get("bucket") or "?", s3_prefix(target.get("prefix")))
    if target.get("endpoint_url"):
        name += " at %s" % Masker().mask(target["endpoint_url"])
    return name


# What ssh and rsync print when they fail, and what the user should do about it, first match wins.
_SSH_FAILURES = (
    ("No space left on device", "the target's file system is full. Free room on it (retention on the target with keep_* "
     "options deletes old copies before sending), then run the task again"),
    ("Disk quota exceeded", "the target user's disk quota is exhausted. Raise the quota or free room, then run the task again"),
    ("Host key verification failed", "the server's host key is not the one expected (or not known). Give its public key as "
     "host_key or a known_hosts file that lists it; checking is never turned off"),
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "the server's host key changed. If that is expected, update known_hosts or "
     "host_key; checking is never turned off"),
    ("Permission denied (publickey", "the server refused the login. Check user and private_key, and that the key's public "
     "half is in the user's ~/.ssh/authorized_keys on the server"),
    ("Permission denied", "the server user may not write there. Check the rights on the target path"),
    ("Load key", "the private key file cannot be used (a passphrase-protected key needs ssh-agent). Check private_key"),
    ("Connection refused", "nothing listens on that port. Check host and port, and that sshd runs"),
    ("Connection timed out", "the server did not answer in time. Check host, port and firewalls, or raise connect_timeout"),
    ("No route to host", "the host cannot be reached. Check host and the network"),
    ("Could not resolve hostname", "the host name does not resolve. Check host"),
    ("command not found", "a program is missing on the server. The server needs rsync, sha256sum (coreutils) and a POSIX shell"),
    ("rsync: not found", "rsync is missing on the server. Install it there"),
    ("No such file or directory", "a file or directory is missing on the target. Check the target path"),
)


def explain_ssh_failure(output, returncode, target, what):
    """The message for a failed ssh or rsync run doing ``what`` with ``target`` (its name):
    what went wrong in words, what to do, and the tool's own last lines."""
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    advice = next((advice for marker, advice in _SSH_FAILURES if marker in (output or "")), None)
    said = " | ".join(lines[-4:]) or "no output"
    if advice is None:
        advice = "run the task again; if it fails again, check the server's logs"
    return "%s on %s failed (exit %s): %s. It said: %s" % (what, target, returncode, advice, said)


_S3_FAILURES = {
    "SignatureDoesNotMatch": "the store refused the secret key. Check secret_key (and that it belongs to access_key)",
    "InvalidAccessKeyId": "the store does not know the access key. Check access_key",
    "InvalidToken": "the store refused the session token. Check session_token",
    "ExpiredToken": "the session token has expired. Give fresh credentials",
    "AccessDenied": "the credentials may not do this. They need s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject, "
                    "s3:ListBucketMultipartUploads, s3:ListMultipartUploadParts and s3:AbortMultipartUpload on the bucket and prefix",
    "403": "the store refused the request (wrong credentials, or a policy that does not allow it). Check access_key, secret_key "
           "and the bucket's policy",
    "NoSuchBucket": "the bucket does not exist. Create it first (docs/offsite.md), or check bucket and endpoint_url",
    "RequestTimeTooSkewed": "the Docker host's clock is too far from the store's. Fix the clock (NTP)",
    "InvalidStorageClass": "the store does not offer that storage class. Check storage_class",
    "EntityTooSmall": "a part was smaller than the store accepts. Raise part_size",
    "SlowDown": "the store asks to slow down. Run the task again later",
    "InvalidObjectState": "the object is archived (GLACIER or DEEP_ARCHIVE) and must be restored before it can be read",
}


def explain_s3_failure(code, text, target, what):
    """The message for a failed S3 request doing ``what`` with ``target`` (its name)."""
    advice = _S3_FAILURES.get(str(code), "run the task again; if it fails again, check the store and the endpoint")
    return "%s on %s failed (%s): %s. The store said: %s" % (what, target, code, advice, text)


def check_target(target, index=None):
    """Refuse a target dict that cannot work, naming the option (OffsiteError)."""
    where = "targets[%d]" % index if index is not None else "target"
    kind = target["type"]
    problems = []
    if kind == "ssh":
        problems += ["%s.%s is required for an ssh target" % (where, option) for option in ("host", "path") if not target.get(option)]
        problems += ["%s.%s is an option of s3 targets" % (where, option) for option in _ONLY_S3 if target.get(option)]
        if target.get("path") and not _SAFE_REMOTE_PATH.match(target["path"]):
            problems.append(
                "%s.path %r holds characters that the remote shell would interpret (use letters, digits and ._/@%%+=:,~-)" % (where, target["path"]))
        if target.get("host") and (target["host"].startswith("-") or re.search(r"[\s@/]", target["host"])):
            problems.append("%s.host %r is not a host name or address (give the user in %s.user)" % (where, target["host"], where))
        if target.get("user") and (target["user"].startswith("-") or re.search(r"[\s@:/]", target["user"])):
            problems.append("%s.user %r is not a user name" % (where, target["user"]))
        if not 0 < (target.get("port") or 0) < 65536:
            problems.append("%s.port %r is not a TCP port" % (where, target.get("port")))
        if target.get("host_key") and target.get("known_hosts"):
            problems.append("%s.host_key and %s.known_hosts exclude each other: give the server's key one way" % (where, where))
        if target.get("host_key") and len(target["host_key"].split()) < 2:
            problems.append("%s.host_key must be a public key line such as 'ssh-ed25519 AAAAC3Nza...' (the server's "
                            "/etc/ssh/ssh_host_ed25519_key.pub)" % where)
    else:
        if not target.get("bucket"):
            problems.append("%s.bucket is required for an s3 target" % where)
        problems += ["%s.%s is an option of ssh targets" % (where, option) for option in _ONLY_SSH if target.get(option)]
        if bool(target.get("access_key")) != bool(target.get("secret_key")):
            problems.append("%s.access_key and %s.secret_key go together (or give neither, to use the managed node's "
                            "AWS credentials: environment, ~/.aws, instance role)" % (where, where))
        for option in ("multipart_threshold", "part_size"):
            if (target.get(option) or 0) < S3_MIN_PART_MIB:
                problems.append("%s.%s must be at least %d (MiB): S3 refuses smaller parts" % (where, option, S3_MIN_PART_MIB))
    if (target.get("connect_timeout") or 0) <= 0:
        problems.append("%s.connect_timeout must be a positive number of seconds" % where)
    if problems:
        raise OffsiteError("The off-host target %s cannot be used: %s." % (target_name(target), "; ".join(problems)), target=target_name(target))
