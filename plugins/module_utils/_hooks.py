# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Pre- and post-commands: ``exec`` in named containers, exit codes checked, output kept.

A command given as a list runs as it is; a string runs through ``/bin/sh -c`` in the
container. Only the last OUTPUT_TAIL_BYTES of stdout and of stderr are kept, so a chatty
command (a dump written to stdout by mistake) cannot fill the module's memory.
"""

from __future__ import annotations

import select
import socket
import time

from ansible_collections.persist.docker.plugins.module_utils._docker_api import close_socket, raw_socket
from ansible_collections.persist.docker.plugins.module_utils._errors import EngineNotFound, EngineRefused, HookFailed
from ansible_collections.persist.docker.plugins.module_utils._frames import (
    STDERR,
    STDOUT,
    TruncatedStream,
    demultiplex,
)

OUTPUT_TAIL_BYTES = 16384
DEFAULT_TIMEOUT = 600


def hook_argument_spec():
    """The suboptions of one entry of ``pre_commands`` / ``post_commands``."""
    return dict(
        container=dict(type="str", required=True),
        command=dict(type="raw", required=True),
        user=dict(type="str"),
        workdir=dict(type="str"),
        env=dict(type="dict", default={}),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    )


def argv(command):
    """The argument vector of a hook's ``command`` (a list, or a string for /bin/sh -c)."""
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    if isinstance(command, (list, tuple)) and command and all(isinstance(part, str) for part in command):
        return list(command)
    raise ValueError("command must be a non-empty string or a list of strings, not %r" % (command,))


def describe(hook):
    """``pg_dumpall ... in container db`` for messages."""
    shown = hook["command"] if isinstance(hook["command"], str) else " ".join(hook["command"])
    return "'%s' in container %s" % (shown, hook["container"])


class _Tail:
    def __init__(self):
        self.data = b""
        self.truncated = False

    def add(self, data):
        self.data += data
        if len(self.data) > OUTPUT_TAIL_BYTES:
            self.data = self.data[-OUTPUT_TAIL_BYTES:]
            self.truncated = True

    def text(self):
        return self.data.decode("utf-8", "replace")


def run_hook(api, hook, phase):
    """Run one hook; return its report. Never raises for the command's own failure: the
    report's ``rc`` is non-zero, or ``error`` says why it could not run or finish."""
    report = {"phase": phase, "container": hook["container"], "command": hook["command"], "rc": None, "error": None}
    started = time.monotonic()
    stdout, stderr = _Tail(), _Tail()
    try:
        exec_id = api.exec_create(
            hook["container"],
            argv(hook["command"]),
            user=hook.get("user") or "",
            workdir=hook.get("workdir"),
            environment=hook.get("env") or None,
        )
        sock = api.exec_start(exec_id)
    except EngineNotFound:
        report["error"] = "container %s does not exist" % hook["container"]
    except EngineRefused as exc:
        report["error"] = "the engine refused to run it: %s" % exc.explanation
    except ValueError as exc:
        report["error"] = str(exc)
    except Exception as exc:  # the engine is gone: a post-command must not hide the cause
        report["error"] = "the engine could not be reached: %s" % exc
    else:
        report["error"] = _collect(sock, hook["timeout"], stdout, stderr)
        try:
            report["rc"] = api.exec_inspect(exec_id).get("ExitCode") if report["error"] is None else None
        except Exception as exc:
            report["error"] = "its exit code could not be read: %s" % exc
    report.update(
        stdout=stdout.text(),
        stderr=stderr.text(),
        output_truncated=stdout.truncated or stderr.truncated,
        seconds=round(time.monotonic() - started, 3),
    )
    return report


def _collect(sock, timeout, stdout, stderr):
    """Read the exec's output until it ends; an error string on timeout or a broken stream."""
    raw = raw_socket(sock)
    deadline = time.monotonic() + timeout

    def read_until_deadline(size):
        # TLS may hold decrypted bytes that select() cannot see.
        pending = getattr(raw, "pending", None)
        if not (pending and pending()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([raw], [], [], remaining)[0]:
                raise socket.timeout()
        return raw.recv(size)

    try:
        for stream_id, data in demultiplex(read_until_deadline):
            if stream_id == STDOUT:
                stdout.add(data)
            elif stream_id == STDERR:
                stderr.add(data)
    except socket.timeout:
        return "it did not finish within %d s (timeout); it may still run in the container" % timeout
    except (TruncatedStream, OSError) as exc:
        return "its output broke off: %s" % exc
    finally:
        close_socket(sock)
    return None


def failed(report):
    return report["error"] is not None or report["rc"] != 0


def failure_message(report):
    """Why a hook failed, naming the container and command, with the tail of its stderr."""
    what = "%s-command %s" % (report["phase"], describe(report))
    if report["error"] is not None:
        return "%s could not run: %s" % (what, report["error"])
    tail = (report["stderr"] or report["stdout"]).strip()[-500:]
    return "%s exited with code %s%s" % (what, report["rc"], ": " + tail if tail else "")


def run_hooks(api, hooks, phase, stop_at_failure):
    """Run ``hooks`` in order; return their reports. With ``stop_at_failure`` the first
    failure ends the list (pre-commands); otherwise all run (post-commands)."""
    reports = []
    for hook in hooks or []:
        report = run_hook(api, hook, phase)
        reports.append(report)
        if stop_at_failure and failed(report):
            break
    return reports


def raise_for(reports, consequence):
    """HookFailed naming every failed hook, or nothing when all succeeded."""
    failures = [report for report in reports if failed(report)]
    if failures:
        raise HookFailed(
            "%s %s" % ("; ".join(failure_message(report) for report in failures), consequence),
            hooks=reports,
        )
