# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one module as a separate ``ansible`` process: to kill it, or outside a test function.

``run_module`` (conftest) plays a task inside the pytest process, which cannot be killed
half way; the atomicity tests need a run that dies by SIGKILL like a real one (an OOM
kill, a reboot, a lost controller), so they start ``ansible`` as a child process and kill
it with every process it started, the module's python among them.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time


def ansible_environment():
    """The environment of a user's ansible ad-hoc run: minimal output, no colours."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_STDOUT_CALLBACK="minimal",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="0",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_PYTHON_INTERPRETER=os.environ.get("ANSIBLE_PYTHON_INTERPRETER", sys.executable),
    )
    return env


# The integration suite runs once as users run it (helper_transport auto: the co-located
# FIFO on this machine) and, for the modules that move data, again with PERSIST_TEST_TRANSPORT=api
# (the Docker API stream every remote engine uses); see conftest.data_transport.
TRANSPORT_MODULES = frozenset(["volume_backup", "volume_restore", "volume_copy", "backup_verify", "volume", "volume_info"])


def with_transport(module, args):
    """``args`` with the transport the run asks for (PERSIST_TEST_TRANSPORT), unless given."""
    transport = os.environ.get("PERSIST_TEST_TRANSPORT")
    if transport and module in TRANSPORT_MODULES and "helper_transport" not in args:
        return dict(args, helper_transport=transport)
    return args


def command(module, args, check=False):
    args = with_transport(module, args)
    line = [
        os.path.join(os.path.dirname(sys.executable), "ansible"),
        "localhost", "-c", "local", "-i", "localhost,",
        "-m", "persist.docker.%s" % module, "-a", json.dumps(args),
    ]
    if check:
        line.append("--check")
    return line


_SCRATCH = []


def ansible_temporary_directories():
    """Environment for Ansible's own temporary directories (the controller's and the
    module's): a scratch directory of this test process, removed when it exits. A run killed
    by SIGKILL cleans up nothing of its own; its module's unpacked copy is removed by kill_tree."""
    if not _SCRATCH:
        _SCRATCH.append(tempfile.mkdtemp(prefix="pz-adhoc-"))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return dict(ANSIBLE_LOCAL_TEMP=os.path.join(_SCRATCH[0], "local"), ANSIBLE_REMOTE_TMP=os.path.join(_SCRATCH[0], "remote"))


def start(module, args):
    """Start the module in the background; returns the Popen (see ``kill_tree``)."""
    process = subprocess.Popen(
        command(module, args), env=dict(ansible_environment(), **ansible_temporary_directories()),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    process.persist_module = module
    process.persist_payload_prefix = "ansible_persist.docker.%s_payload_" % module
    return process


def _children():
    """{parent pid: [child pids]} of every process now."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    return children


def process_tree(pid):
    """``pid`` and all its descendants, deepest last. Ansible's worker calls setsid(), so
    the module does not share the ``ansible`` process group: follow parents instead."""
    children = _children()
    tree = [pid]
    for member in tree:
        tree.extend(children.get(member, []))
    return tree


def kill_tree(process):
    """SIGKILL the ``ansible`` process and everything it started (the module's python
    first), then reap it. Killing only the process group would leave the module running."""
    killed = []
    module_starts = _module_starts(process_tree(process.pid))
    for _pass in range(2):  # a second pass for anything forked meanwhile
        for pid in reversed(process_tree(process.pid)):
            killed.append(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    process.communicate()
    # The orphans are reaped by pid 1, which on this test VM does so only every second or
    # two; until then they are zombies whose /proc entry still looks like a live owner to
    # the next run's helper reaper. Wait until they are gone, as on a host whose init reaps
    # at once.
    wait_until(lambda: not any(os.path.exists("/proc/%d" % pid) for pid in killed), timeout=30, interval=0.05)
    _remove_leftovers(process, module_starts)


def _module_starts(pids, module=None):
    """The start times (seconds since the epoch) of the AnsiballZ module processes among ``pids``
    (of ``module`` only, when given)."""
    marker = ("AnsiballZ_%s.py" % module if module else "AnsiballZ_").encode()
    found = []
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as cmdline:
                if marker not in cmdline.read():
                    continue
            with open("/proc/%d/stat" % pid) as stat:
                found.append(boot + int(stat.read().rsplit(")", 1)[1].split()[19]) / ticks)
        except (OSError, IndexError, ValueError):
            continue
    return found


def _remove_leftovers(process, module_starts):
    """Remove the directories AnsiballZ unpacked the killed run's module into (in the system's
    temporary directory, named at random): those of that module's name made within a second of
    the killed module's start, but not one made as close to the start of a live process of that
    module (another test's run, when tests run side by side: both are then left). Only for
    runs that ``start`` made (a playbook's modules are not known by name here)."""
    if not module_starts or not hasattr(process, "persist_module"):
        return
    base = tempfile.gettempdir()
    live = _module_starts([int(entry) for entry in os.listdir("/proc") if entry.isdigit()], process.persist_module)

    def near(made, starts):
        return any(started - 0.1 <= made <= started + 1.0 for started in starts)

    for name in os.listdir(base):
        if name.startswith(process.persist_payload_prefix):
            try:
                made = os.stat(os.path.join(base, name)).st_ctime
            except OSError:
                continue
            if near(made, module_starts) and not near(made, live):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def run(module, args, timeout=300):
    """Run the module to its end; returns its result dict (``failed`` set on failure)."""
    done = subprocess.run(command(module, args), env=ansible_environment(), capture_output=True, timeout=timeout, check=False)
    return parse(done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))


def parse(stdout, stderr=""):
    """The result dict of ``localhost | STATUS => {...}`` minimal callback output."""
    # The result follows "=> "; anything before it (a warning quoting the task) is not it.
    marker = stdout.find("=> {")
    start_at = marker + 3 if marker >= 0 else stdout.find("{")
    if start_at < 0:
        raise AssertionError("no module result in the output:\n%s\n%s" % (stdout, stderr))
    result = json.loads(stdout[start_at:])
    if "FAILED!" in stdout[:start_at]:
        result["failed"] = True
    return result


def wait_until(predicate, timeout, interval=0.002):
    """Poll ``predicate`` until it is true (returns True) or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class DirectoryWatch:
    """Names created in (or renamed into) a directory, as the kernel reports them (inotify).

    Lets a test kill a run at an exact step, for instance right after a file got its final
    name, instead of hoping a timer lands there.
    """

    IN_MOVED_TO = 0x080
    IN_CREATE = 0x100
    _EVENT = struct.Struct("iIII")

    def __init__(self, directory):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        watch = libc.inotify_add_watch(self._fd, os.fsencode(str(directory)), self.IN_CREATE | self.IN_MOVED_TO)
        if watch < 0:
            os.close(self._fd)
            raise OSError(ctypes.get_errno(), "inotify_add_watch failed on %s" % directory)

    def wait_for(self, wanted, timeout):
        """The first new name (str) for which ``wanted(name)`` is true, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _writable, _errors = select.select([self._fd], [], [], left)
            if not ready:
                return None
            data = os.read(self._fd, 65536)
            position = 0
            while position < len(data):
                _wd, _mask, _cookie, length = self._EVENT.unpack_from(data, position)
                raw = data[position + self._EVENT.size:position + self._EVENT.size + length].rstrip(b"\0")
                position += self._EVENT.size + length
                name = os.fsdecode(raw)
                if wanted(name):
                    return name

    def close(self):
        os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
