# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""An SSH server as an off-host target: rsync over ssh from the Docker host, checked there.

A copy is sent with rsync to a hidden temporary name in the target directory (``--partial
--append-verify``: a transfer killed half way leaves its partial file, and the next run
sends only the rest); ``sha256sum`` on the server must then give the sidecar's sha256
before the file is renamed to its final name, and the sidecar goes last. Host keys are
always checked (a known_hosts file, or the key given in the task). The server needs sshd,
rsync, sha256sum and a POSIX shell; nothing of this collection is installed there.
"""

from __future__ import annotations

import calendar
import contextlib
import ctypes
import hashlib
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Dict, Optional

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import SIDECAR_SUFFIX
from ansible_collections.persist.docker.plugins.module_utils._errors import OffsiteError
from ansible_collections.persist.docker.plugins.module_utils._offsite_plan import SIDECAR_LIMIT, RemoteListing, temporary_name
from ansible_collections.persist.docker.plugins.module_utils._offsite_target import (
    _SAFE_REMOTE_PATH,
    TargetBackend,
    explain_ssh_failure,
    target_name,
)

# rsync --list-only: "-rw-------     1234 2026/11/30 02:21:11 name" (times in the TZ it runs with).
_LISTED = re.compile(r"\A([-a-z])\S{9}\s+(\d+)\s+(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\s(.+)\Z")
_TRANSFERRED = re.compile(r"Total bytes sent: ([\d,.]+)")
_SHA256 = re.compile(r"\A([0-9a-f]{64})\b")
# An rsync that sees no data for this long gives up (ssh's keepalives catch a dead link sooner).
RSYNC_IO_TIMEOUT = 300
# One ssh connection serves every command of a run (a handshake costs a quarter to half a
# second); it ends with the run, or this long after a killed run's last command.
CONTROL_PERSIST = 60
# The longest path of a Unix socket (sockaddr_un: 108 bytes with the final NUL), and what ssh
# appends to ControlPath for the socket it makes before renaming it (".XXXXXXXXXXXXXXXX").
_SOCKET_PATH_MAX = 107
_CONTROL_TEMPORARY_SUFFIX = 17
# Renames a checked copy and its sidecar into place, archive first: $1 the temporary archive,
# $2 the expected sha256, $3 the final name, $4 the temporary sidecar, $5 its final name.
# Prints the sha256 it found; renames nothing unless it is the expected one.
_CHECK_AND_RENAME = (
    'set -e; sum=$(sha256sum < "$1"); sum=${sum%% *}; echo "$sum"; '
    'if [ "$sum" = "$2" ]; then mv -f -- "$1" "$3"; mv -f -- "$4" "$5"; fi'
)
PR_SET_PDEATHSIG = 1
# The private directory of a run: /tmp/persist-offsite-<pid>-<random>.
PRIVATE_PREFIX = "persist-offsite-"
_FULL = ("No space left on device", "Disk quota exceeded")


def _reap_private_directories():
    """Remove the private directories (ssh control socket, known_hosts) that killed runs of
    this user left in the temporary directory: their process is gone."""
    base = tempfile.gettempdir()
    for entry in os.listdir(base):
        pid = entry[len(PRIVATE_PREFIX):].split("-", 1)[0]
        path = os.path.join(base, entry)
        if entry.startswith(PRIVATE_PREFIX) and pid.isdigit() and not os.path.exists("/proc/%s" % pid):
            try:
                if os.lstat(path).st_uid == os.getuid() and os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass  # removed meanwhile by another run


def control_path(private):
    """Where the run's ssh connection keeps its control socket: in its private directory, or
    None (each command connects anew) when the temporary directory's path is too long for a
    socket there, as a TMPDIR of more than about 50 characters makes it."""
    path = os.path.join(private, "control")
    return path if len(os.fsencode(path)) + _CONTROL_TEMPORARY_SUFFIX <= _SOCKET_PATH_MAX else None


def _die_with_parent():
    """Children (rsync, ssh) end when the module's process does: a killed run must not leave
    an rsync writing the temporary file that the next run resumes."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class SshTarget(TargetBackend):
    """One SSH target of a task (use as a context manager)."""

    kind = "ssh"
    # sha256sum on the server checks nothing that reading the copy in full does not.
    full_read_covers_remote_check = True

    def __init__(self, options, masker):
        self.options = options
        self.name = target_name(options)
        self.masker = masker
        self.directory = options["path"].rstrip("/") or "/"
        self.sizes = {}
        _reap_private_directories()
        self._private = tempfile.mkdtemp(prefix="%s%d-" % (PRIVATE_PREFIX, os.getpid()))
        self._control = control_path(self._private)
        self._environment = dict(os.environ, LC_ALL="C", TZ="UTC")
        for program in ("ssh", "rsync"):
            if shutil.which(program) is None:
                raise OffsiteError(
                    "%s is not installed on the Docker host, which sends the copies to %s. Install it (Debian and Ubuntu: "
                    "apt-get install openssh-client rsync; RHEL: dnf install openssh-clients rsync)." % (program, self.name),
                    target=self.name)

    def close(self):
        if self._control and os.path.exists(self._control):
            subprocess.run(self._ssh_argv() + ["-O", "exit", self._login()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=self._environment, check=False)
        shutil.rmtree(self._private, ignore_errors=True)

    # -- ssh and rsync command lines ----------------------------------------------------

    def _ssh_argv(self):
        options = self.options
        argv = [
            "ssh", "-p", str(options["port"]),
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=%d" % options["connect_timeout"],
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4",
            "-o", "LogLevel=ERROR",
            "-o", "StrictHostKeyChecking=%s" % ("accept-new" if options["host_key_checking"] == "accept_new" else "yes"),
        ]
        if self._control:
            argv += ["-o", "ControlMaster=auto", "-o", "ControlPath=%s" % self._control, "-o", "ControlPersist=%d" % CONTROL_PERSIST]
        else:
            argv += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        if options.get("private_key"):
            argv += ["-i", options["private_key"], "-o", "IdentitiesOnly=yes"]
        if options.get("host_key"):
            known = os.path.join(self._private, "known_hosts")
            host = options["host"] if options["port"] == 22 else "[%s]:%d" % (options["host"], options["port"])
            with open(known, "w") as handle:
                handle.write("%s %s\n" % (host, " ".join(options["host_key"].split()[:2])))
            argv += ["-o", "UserKnownHostsFile=%s" % known, "-o", "GlobalKnownHostsFile=/dev/null"]
        elif options.get("known_hosts"):
            argv += ["-o", "UserKnownHostsFile=%s" % options["known_hosts"]]
        return argv

    def _login(self):
        user = self.options.get("user")
        return ("%s@%s" % (user, self.options["host"])) if user else self.options["host"]

    def _rsync_host(self):
        host = self.options["host"]
        login = self._login()
        return login.replace(host, "[%s]" % host) if ":" in host else login

    def _remote(self, name):
        return posixpath.join(self.directory, name)

    def _run(self, argv, what, stdin_data=None, ok=(0,)):
        started = subprocess.Popen(
            argv, stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=self._environment, preexec_fn=_die_with_parent,
        )
        stdout, stderr = started.communicate(stdin_data)
        output = stderr.decode("utf-8", "replace")
        if started.returncode not in ok:
            raise OffsiteError(self.masker.mask(explain_ssh_failure(output, started.returncode, self.name, what)), target=self.name,
                               disk_full=any(marker in output for marker in _FULL))
        return started.returncode, stdout, output

    def _shell(self, words, what, ok=(0,)):
        """Run a command (a list of words, quoted here) on the server."""
        command = " ".join(shlex.quote(word) if word not in ("&&", "||", ";") else word for word in words)
        return self._run(self._ssh_argv() + ["--", self._login(), command], what, ok=ok)

    def _rsync(self, source, destination, what, extra=()):
        argv = ["rsync", "-t", "--no-h", "--stats", "--timeout=%d" % RSYNC_IO_TIMEOUT, "-e", " ".join(shlex.quote(word) for word in self._ssh_argv())]
        _code, stdout, _output = self._run(argv + list(extra) + ["--", source, destination], what)
        found = _TRANSFERRED.search(stdout.decode("utf-8", "replace"))
        return int(re.sub(r"[,.]", "", found.group(1))) if found else None

    # -- the target directory -----------------------------------------------------------

    def open(self):
        """Log in; whether the target directory exists."""
        code, _stdout, _output = self._shell(["test", "-d", self.directory], "logging in to check the target directory", ok=(0, 1))
        return code == 0

    def prepare(self):
        self._shell(["mkdir", "-p", "--", self.directory], "creating the target directory")

    def listing(self, now):
        """The RemoteListing of the target directory (one rsync listing, one rsync of the sidecars)."""
        _code, stdout, _output = self._run(
            ["rsync", "--list-only", "--no-h", "-e", " ".join(shlex.quote(word) for word in self._ssh_argv()),
             "--", "%s:%s/" % (self._rsync_host(), self.directory)],
            "listing the target directory")
        files = {}
        for line in stdout.decode("utf-8", "replace").splitlines():
            found = _LISTED.match(line)
            if found and found.group(1) == "-":
                when = calendar.timegm(time.strptime(found.group(3), "%Y/%m/%d %H:%M:%S"))
                files[found.group(4)] = (int(found.group(2)), when)
        self.sizes = dict((name, size) for name, (size, _when) in files.items())
        return RemoteListing(files, self._sidecars(files), self.url, now)

    def _sidecars(self, files):
        wanted = [name for name in files if name.endswith(SIDECAR_SUFFIX) and not name.startswith(".")]
        if not wanted:
            return {}
        local = tempfile.mkdtemp(dir=self._private)
        self._run(
            ["rsync", "-t", "--dirs", "--max-size=%d" % SIDECAR_LIMIT, "-e", " ".join(shlex.quote(word) for word in self._ssh_argv()),
             "--exclude=.*", "--include=*%s" % SIDECAR_SUFFIX, "--exclude=*", "--", "%s:%s/" % (self._rsync_host(), self.directory), local + "/"],
            "reading the sidecars on the target")
        sidecars: Dict[str, Optional[bytes]] = {}
        for name in wanted:
            try:
                with open(os.path.join(local, name), "rb") as handle:
                    sidecars[name[:-len(SIDECAR_SUFFIX)]] = handle.read(SIDECAR_LIMIT + 1)
            except OSError:
                sidecars[name[:-len(SIDECAR_SUFFIX)]] = None
        shutil.rmtree(local, ignore_errors=True)
        return sidecars

    def url(self, name):
        """How results name a file on the target."""
        return "%s/%s" % (self.name, name)

    # -- sending ------------------------------------------------------------------------

    def send(self, candidate, remote_entry, full):
        """Send ``candidate`` (a local listing entry): archive to its temporary name, checked
        there, renamed, then the sidecar. Returns facts for the result."""
        name = os.path.basename(candidate["path"])
        if not _SAFE_REMOTE_PATH.match(name):
            raise OffsiteError("The archive name %s holds characters the remote shell would interpret; rename it (name_template) "
                               "to send it to %s." % (name, self.name), target=self.name, archive=name)
        recorded = candidate["metadata"]["archive"]
        final, temporary = self._remote(name), self._remote(temporary_name(name))
        if remote_entry is not None:
            # A sidecar on the target must never describe an archive that is being replaced.
            self._shell(["rm", "-f", "--", final + SIDECAR_SUFFIX], "removing the sidecar of the damaged copy %s" % name)
            self._shell(["sh", "-c", 'if [ -e "$2" ]; then rm -f -- "$1"; else mv -f -- "$1" "$2"; fi', "sh", final, temporary],
                        "setting the incomplete copy %s aside to resume it" % name)
        resumed_from = self.sizes.get(temporary_name(name), 0) if remote_entry is None else (remote_entry["size"] or 0)
        destination = "%s:%s" % (self._rsync_host(), temporary)
        try:
            transferred = self._rsync(candidate["path"], destination, "sending %s" % name, ["--partial", "--append-verify"])
        except OffsiteError as exc:
            if not exc.details.get("disk_full"):
                raise
            # A partial copy cannot grow on a full disk: it goes, so that smaller copies still fit.
            self._shell(["rm", "-f", "--", temporary], "removing the partial copy of %s from the full target" % name)
            raise OffsiteError("%s Its partial copy was removed to leave the room to others." % exc.msg, target=self.name, archive=name)
        self._rsync(candidate["sidecar"], "%s:%s" % (self._rsync_host(), temporary + SIDECAR_SUFFIX), "sending the sidecar of %s" % name)
        problem = self._check_and_rename(name, recorded["sha256"])
        if problem:
            self._local_archive_must_match(candidate)
            # The partial file was not a prefix of the archive after all: send it whole, once.
            self._shell(["rm", "-f", "--", temporary], "removing the copy of %s that did not match" % name)
            transferred = (transferred or 0) + (self._rsync(candidate["path"], destination, "sending %s again" % name, ["--whole-file"]) or 0)
            resumed_from = 0
            problem = self._check_and_rename(name, recorded["sha256"])
            if problem:
                raise OffsiteError("The copy of %s on %s does not match the archive after two transfers (%s); the server's disk "
                                   "or memory may be failing. Nothing was renamed into place." % (name, self.name, problem),
                                   target=self.name, archive=name)
        return dict(transferred_bytes=transferred, resumed_from=resumed_from, checks=["sha256 of the copy on the target (sha256sum there)"])

    def _check_and_rename(self, name, expected):
        """sha256 of the temporary copy of ``name`` on the server; when it is ``expected``,
        the copy and then its sidecar get their final names. The problem, or None."""
        final, temporary = self._remote(name), self._remote(temporary_name(name))
        _code, stdout, _output = self._shell(
            ["sh", "-c", _CHECK_AND_RENAME, "sh", temporary, expected, final, temporary + SIDECAR_SUFFIX, final + SIDECAR_SUFFIX],
            "checking the copy of %s on the target and renaming it into place" % name)
        found = _SHA256.match(stdout.decode("ascii", "replace"))
        actual = found.group(1) if found else None
        return None if actual == expected else "sha256 on the target is %s, the sidecar says %s" % (actual, expected)

    def _sha256_problem(self, remote_path, expected):
        _code, stdout, _output = self._shell(["sha256sum", "--", remote_path], "computing sha256 of %s on the target" % posixpath.basename(remote_path))
        found = _SHA256.match(stdout.decode("ascii", "replace"))
        actual = found.group(1) if found else None
        if actual != expected:
            return "sha256 on the target is %s, the sidecar says %s" % (actual, expected)
        return None

    def _local_archive_must_match(self, candidate):
        digest = hashlib.sha256()
        with open(candidate["path"], "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != candidate["metadata"]["archive"]["sha256"]:
            raise OffsiteError(
                "The local archive %s does not match its sidecar (sha256 %s): it is damaged, and was not sent to %s. Check it "
                "with persist.docker.backup_verify." % (candidate["path"], digest.hexdigest(), self.name),
                target=self.name, archive=os.path.basename(candidate["path"]))

    # -- checks of copies on the target -------------------------------------------------

    def presence_problem(self, entry):
        """Download-free checks of a copy that looks present, beyond its size and sidecar
        (which the listing compared): none over ssh, its content was checked when it was sent."""
        return None

    def remote_check(self, entry):
        """``(what was checked, problem or None)`` without downloading the copy."""
        return "sha256 on the target (sha256sum there)", self._sha256_problem(self._remote(entry["name"]), entry["metadata"]["archive"]["sha256"])

    def content_problem(self, entry):
        return self.remote_check(entry)[1]

    @contextlib.contextmanager
    def reader(self, entry):
        """The copy's bytes as a stream (``read(n)``), never written to disk here."""
        self.transport_problem = None
        process = subprocess.Popen(
            self._ssh_argv() + ["--", self._login(), "cat -- %s" % shlex.quote(self._remote(entry["name"]))],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._environment, preexec_fn=_die_with_parent,
        )
        out, err = process.stdout, process.stderr
        if out is None or err is None:
            raise AssertionError("internal error: both are pipes")
        try:
            yield out
        finally:
            out.close()
            stderr = err.read().decode("utf-8", "replace")
            err.close()
            if process.wait() not in (0, -signal.SIGPIPE, 128 + signal.SIGPIPE):
                self.transport_problem = self.masker.mask(explain_ssh_failure(stderr, process.returncode, self.name, "reading %s" % entry["name"]))

    def delete(self, names):
        """Delete ``names`` on the target, in this order (sidecars before their archives)."""
        if names:
            self._shell(["rm", "-f", "--"] + [self._remote(name) for name in names], "deleting %d file(s) on the target" % len(names))
