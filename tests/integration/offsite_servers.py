# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real off-host targets for the backup_offsite tests, on 127.0.0.1 only.

* ``SshServer``: Debian's OpenSSH ``sshd`` at a free port, with a host key and a client key
  pair made for the test, logging in as root (the tests' user) through an authorized_keys
  file of its own. rsync and sha256sum on "the server" are this machine's.
* ``MotoServer``: moto in server mode (``moto_server``) at a free port, the S3 API over
  HTTP. It keeps everything in memory, multipart uploads too, so test objects stay small.
  With ``auth=True`` it checks signatures against IAM users it creates first (moto's
  INITIAL_NO_AUTH_ACTION_COUNT), for the wrong-credentials tests.

Both are stopped (by their process id) and their files removed by the fixtures, also when a
test fails. Nothing listens beyond loopback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HOST = "127.0.0.1"
# Names of what the servers leave in /tmp while they run (removed when they stop).
PREFIX = "pt-offsite-%s-" % secrets.token_hex(4)


def free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _wait(predicate, timeout, what, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    details = open(log).read()[-2000:] if log and os.path.exists(log) else ""
    raise RuntimeError("%s did not come up within %d s. %s" % (what, timeout, details))


def _stop(process):
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SshServer:
    """An sshd of the test's own (see the module doc)."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix=PREFIX + "sshd-")
        self.port = free_port()
        self.process = None
        self.host_key = os.path.join(self.root, "host_ed25519")
        self.client_key = os.path.join(self.root, "client_ed25519")
        self.other_key = os.path.join(self.root, "other_ed25519")
        self.log = os.path.join(self.root, "sshd.log")

    def start(self):
        for key in (self.host_key, self.client_key, self.other_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "persist-test", "-f", key], check=True)
        shutil.copyfile(self.client_key + ".pub", os.path.join(self.root, "authorized_keys"))
        config = os.path.join(self.root, "sshd_config")
        with open(config, "w") as handle:
            handle.write("\n".join([
                "Port %d" % self.port,
                "ListenAddress %s" % HOST,
                "HostKey %s" % self.host_key,
                "PidFile %s" % os.path.join(self.root, "sshd.pid"),
                "AuthorizedKeysFile %s" % os.path.join(self.root, "authorized_keys"),
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "MaxStartups 50",
                "",
            ]))
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stdout=log, stderr=subprocess.STDOUT)
        _wait(self._answers, 15, "sshd on port %d" % self.port, self.log)
        return self

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError("sshd exited: %s" % open(self.log).read()[-2000:])
        return subprocess.run(self.ssh_command("true"), capture_output=True, check=False).returncode == 0

    def public_host_key(self):
        with open(self.host_key + ".pub") as handle:
            return " ".join(handle.read().split()[:2])

    def ssh_command(self, command):
        """An ssh command line that runs ``command`` on the server as root (for checks)."""
        known = os.path.join(self.root, "known_hosts")
        with open(known, "w") as handle:
            handle.write("[%s]:%d %s\n" % (HOST, self.port, self.public_host_key()))
        return ["ssh", "-p", str(self.port), "-i", self.client_key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "UserKnownHostsFile=%s" % known, "-o", "StrictHostKeyChecking=yes", "root@%s" % HOST, command]

    def directory(self, suffix):
        """A fresh directory for one test's copies (removed with the server)."""
        return tempfile.mkdtemp(prefix="target-%s-" % suffix, dir=self.root)

    def target(self, path, **overrides):
        target = dict(type="ssh", host=HOST, port=self.port, user="root", path=str(path), private_key=self.client_key,
                      host_key=self.public_host_key())
        target.update(overrides)
        return target

    def stop(self):
        _stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


class MotoServer:
    """moto_server of the test's own (see the module doc)."""

    def __init__(self, auth=False):
        self.port = free_port()
        self.endpoint = "http://%s:%d" % (HOST, self.port)
        self.auth = auth
        self.root = tempfile.mkdtemp(prefix=PREFIX + "moto-")
        self.log = os.path.join(self.root, "moto.log")
        self.process = None
        self.access_key, self.secret_key = "persist-test", "persist-test-secret"

    def start(self):
        environment = dict(os.environ)
        if self.auth:
            # create_user, create_access_key and put_user_policy go unauthenticated; every
            # request after them must be signed with the key they made.
            environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
        program = os.path.join(os.path.dirname(sys.executable), "moto_server")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([program, "-H", HOST, "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT, env=environment)
        _wait(self._answers, 60, "moto_server on port %d" % self.port, self.log)
        if self.auth:
            self._make_user()
        return self

    def _answers(self):
        if self.process.poll() is not None:
            raise RuntimeError("moto_server exited: %s" % open(self.log).read()[-2000:])
        try:
            urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).read()
            return True
        except OSError:
            return False

    def _make_user(self):
        iam = self.client("iam")
        iam.create_user(UserName="persist-test")
        key = iam.create_access_key(UserName="persist-test")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="persist-test", PolicyName="s3", PolicyDocument=json.dumps(policy))

    def client(self, service="s3"):
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            region_name="us-east-1")

    def bucket(self):
        """A new bucket with a random name."""
        name = "pt-%s" % secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def target(self, bucket, **overrides):
        target = dict(type="s3", endpoint_url=self.endpoint, bucket=bucket, region="us-east-1", access_key=self.access_key,
                      secret_key=self.secret_key, addressing_style="path")
        target.update(overrides)
        return target

    def stop(self):
        _stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


# Local backups to send ----------------------------------------------------------------------------

@contextlib.contextmanager
def running(server):
    """``server`` started, and stopped (its files removed) when the block ends."""
    try:
        yield server.start()
    finally:
        server.stop()


_SHARED = {}


def shared_backup(run_module, engine, directory, suffix, megabytes=0):
    """real_backup, made once for each ``suffix`` (tests only read it). Give each test file
    suffixes of its own: the archive lives as long as that file's module_backup_dir."""
    if suffix not in _SHARED:
        _SHARED[suffix] = real_backup(run_module, engine, directory, suffix, megabytes)
    return _SHARED[suffix]


def real_backup(run_module, engine, directory, suffix, megabytes=0):
    """The archive path of a real backup (volume_backup) of a new volume holding ``megabytes``
    of random data (incompressible, so the archive is about that big) besides a small tree."""
    volume = engine.create_volume(suffix)
    engine.fill(volume)
    if megabytes:
        engine.run(volume, "head -c %dM /dev/urandom > /data/random.bin" % megabytes)
    result = run_module("volume_backup", volume=volume, dest=str(directory))
    assert result["changed"] is True, result
    return result["archive"]["path"]


def sha256_of(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def snapshot(directory):
    """{name: sha256} of the files in a local backup directory (to prove nothing changed)."""
    return dict((name, sha256_of(os.path.join(str(directory), name))) for name in sorted(os.listdir(str(directory))))


def names(items, key="archive"):
    return sorted(item[key] for item in items)


def prediction(result):
    """What check mode must predict of a backup_offsite run, per target."""
    return [
        dict(
            target=report["target"],
            sent=sorted((item["archive"], item["reason"]) for item in report["sent"]),
            deleted=report["deleted"],
            kept=report["kept"],
            skipped=report["skipped"],
            present=report["present"],
        )
        for report in result["targets"]
    ]
