# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Short-lived helper containers that read volume data and stream it over the API.

Every helper runs with no network, the log driver ``none`` (the default json-file driver
would copy every byte), a read-only root file system, no capabilities beyond reading
files, and the label HELPER_LABEL. Its owner label names the process that started it,
so that a later run can tell a helper abandoned by a killed run from one still in use.
"""

from __future__ import annotations

import binascii
import os
import socket
import threading
import time
from contextlib import closing, contextmanager
from typing import List

from ansible_collections.persist.docker.plugins.module_utils._docker_api import (
    close_socket,
    parse_docker_time,
    raw_socket,
    socket_reader,
)
from ansible_collections.persist.docker.plugins.module_utils._errors import EngineRefused, HelperError
from ansible_collections.persist.docker.plugins.module_utils._fast_path import (
    FAST_MOUNT,
    TOKEN_LENGTH,
    FastPath,
    input_from,
    open_reader,
    open_writer,
    output_to,
    read_fifo,
    reap_directories,
    relaying,
    wait_until_read,
    write_all,
)
from ansible_collections.persist.docker.plugins.module_utils._frames import (
    STDERR,
    STDOUT,
    TruncatedStream,
    demultiplex,
)
from ansible_collections.persist.docker.plugins.module_utils._ownership import owner_is_gone, owner_token
from ansible_collections.persist.docker.plugins.module_utils._prefetch import InBackground, prefetch
from ansible_collections.persist.docker.plugins.module_utils._options import Helper

HELPER_LABEL = "persist.docker.helper"
# The owner token (_ownership) of helpers and probes, and of the scratch and aside volumes of
# test restores and migrations. Lock containers and swap records carry their own owner
# labels (_lock, _swap). Every value is on the engines of existing deployments: never change one.
HELPER_OWNER_LABEL = "persist.docker.owner"
DEFAULT_HELPER_IMAGE = "debian:bookworm-20250908-slim"
# A stopped helper whose owner may still be reading its exit code is left alone this long.
STOPPED_HELPER_GRACE_SECONDS = 600
STDERR_TAIL_BYTES = 4096
READER_CAPABILITIES = ["DAC_READ_SEARCH"]
# Restoring sets owners, modes and xattrs of files owned by anyone.
WRITER_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER"]
# Only when the task allows special files (allow_special): device nodes, setuid/setgid bits
# that survive a change of owner, and file capabilities. Without them the kernel itself
# refuses what the safety rules refuse.
SPECIAL_CAPABILITIES = ["FSETID", "MKNOD", "SETFCAP"]
# A held helper (held_output) runs its command once it reads this line on its stdin.
GO_LINE = b"go\n"


def success_line():
    """A new line for reporting_success, which no command can print unless told it."""
    return ("persist.docker: done %s\n" % binascii.hexlify(os.urandom(16)).decode("ascii")).encode("ascii")


def reporting_success(command, line):
    """``command`` followed, when it exits 0, by ``line`` (see success_line) on stdout.

    When a container that wrote much data ends, the engine cleans it up before it reports the
    exit: unmounting its root file system writes out the file system under it, the volumes'
    new data with it (half a second for 1 GiB on a local disk), and the engine creates and
    starts no other container until that is done. The line says the command succeeded as soon
    as its output ends, so the module goes on (with a helper it held ready, see held_output)
    while the engine writes the data out; the removal waits for it in the background."""
    return ["sh", "-c", '"$@" && printf "%s" "$0"', line.decode("ascii")] + list(command)


def held(command):
    """``command`` run only once GO_LINE comes on stdin; any other input, or its end, makes
    the helper exit 1 without running it."""
    return ["sh", "-c", 'read -r go && [ "$go" = "$0" ] && exec "$@"', GO_LINE.decode("ascii").strip()] + list(command)


def await_stream_end(drainer, running, patience=1.0):
    """Join thread ``drainer``, which reads a helper's attach stream to its end (the end of the
    helper's processes). Should the engine not close the stream, the container's end bounds
    the wait: ``running()`` (an inspect) is asked, but only once ``patience`` seconds passed,
    since the engine, while it handles the end of a container that wrote much data (see
    reporting_success), answers an inspect only once the data is written out."""
    drainer.join(patience)
    while drainer.is_alive() and running():
        drainer.join(patience)
    drainer.join(timeout=30)


def helper_argument_spec():
    """The argument spec of the helper options (documented in the ``helper`` doc fragment)."""
    return dict(
        helper_image=dict(type="str", default=DEFAULT_HELPER_IMAGE),
        helper_pull=dict(type="str", default="missing", choices=["missing", "always", "never"]),
        helper_transport=dict(type="str", default="auto", choices=["auto", "api"]),
    )


class HelperRunner:
    """Runs helper containers from one image on one engine (an EngineAPI)."""

    def __init__(self, api, options=None):
        options = options or Helper(DEFAULT_HELPER_IMAGE)
        self.api = api
        self.image = options.image
        self.pull = options.pull
        self.transport_option = options.transport
        self._image_ready = False
        self._fast = None  # not proved yet; then a FastPath, or False for the API stream
        self.reaped = []
        self._removals = []  # threads removing helpers that wrote bulk data, see _remove_soon
        # How the bulk data of this run's helpers travelled: "fifo" and/or "api".
        self.transports = set()
        self._success = success_line()

    def transport(self):
        """How this run's bulk data travelled: "fifo", "api", "fifo+api", or None when no
        bulk data moved."""
        return "+".join(sorted(self.transports)) or None

    def _fast_path(self):
        """The proved FastPath, or None (API stream): see _fast_path. The first short helper
        of the run carries the proof (see _short_output); when a bulk helper comes first, a
        helper of its own proves it."""
        fast = self._undecided_fast_path()
        if fast is not None:
            try:
                for _chunk in self._short_output(["true"], {}, "checking whether this host is the engine's", fast=fast, alone=True):
                    pass
            except HelperError:
                pass
            if self._fast is None:  # it printed no token
                self._decide(fast, False)
        return self._fast or None

    def transport_known(self):
        """Whether the transport of bulk data is decided (the fast path proved or refused, or
        the API stream asked for): a bulk helper started now needs no helper of its own to
        prove it."""
        return self.transport_option == "api" or self._fast is not None

    def _undecided_fast_path(self):
        """A new FastPath for a helper to carry its proof, while the fast path is allowed and
        not decided yet; else None."""
        if self.transport_option == "api" or self._fast is not None:
            return None
        reap_directories(owner_is_gone)
        try:
            return FastPath(owner_token().replace("/", "_"))
        except OSError:
            self._fast = False
            return None

    def _decide(self, fast, proved):
        if proved:
            self._fast = fast
        else:
            fast.close()
            self._fast = False

    def _short_output(self, command, volumes, what, *, writable=False, read_only=(), special=False, fast=None, alone=False):
        """Run a helper whose output goes through the API stream and yield its stdout. With
        ``fast`` (an undecided FastPath), the helper carries the fast path's proof: it
        bind-mounts the directory read-only and prints the token it reads there before its
        command's output; that decides the fast path. An engine that cannot bind the
        directory (another host's, a rootless engine) runs the command without it, unless
        the helper runs ``alone`` for the proof."""
        run = None
        if fast is not None:
            try:
                run = self._start(fast.carrying_proof(command), volumes, what, writable=writable, read_only=read_only, special=special,
                                  bind=(fast.directory, True))
            except HelperError:
                self._decide(fast, False)
                if alone:
                    return
                fast = None
        if run is None:
            run = self._start(command, volumes, what, writable=writable, read_only=read_only, special=special)
        with self._removing(run, False):
            output = run.output()
            if fast is not None:
                output = self._taking_proof(output, fast)
            yield from output
            run.finish()

    def _taking_proof(self, chunks, fast):
        """``chunks`` without the token a helper carrying the proof printed first, which
        decides the fast path. A helper that ends before printing it decides nothing: it
        failed, and says so when it is finished."""
        head = b""
        try:
            for chunk in chunks:
                if self._fast is None:
                    head += chunk
                    if len(head) < TOKEN_LENGTH:
                        continue
                    self._decide(fast, fast.proved_by(head[:TOKEN_LENGTH]))
                    chunk = head[TOKEN_LENGTH:]
                    if not chunk:
                        continue
                yield chunk
        finally:
            if self._fast is None:
                fast.close()

    def settle(self):
        """Wait until the helpers being removed are gone: the engine has written out what
        they wrote (see reporting_success)."""
        for thread in self._removals:
            thread.join()
        del self._removals[:]

    def close(self):
        """Wait for the helpers being removed, then remove what this run kept on the host (the
        fast path's directory)."""
        self.settle()
        if self._fast:
            self._fast.close()

    def _remove_soon(self, run):
        """Remove ``run``, a helper that wrote bulk data and ended well, in a thread: the engine
        unmounts its root file system, which writes out the file system under it first (the
        data just written, when the volume is there too), and only then reports the exit (see
        reporting_success). A helper held ready (held_output) reads back meanwhile; the swap
        makes the data durable itself (see _tar_commands). close() waits."""
        def remove():
            try:
                run.remove()
            except Exception:  # the next run reaps it by its label
                pass

        thread = threading.Thread(target=remove, name="persist-remove", daemon=True)
        thread.start()
        self._removals.append(thread)

    def prepare(self):
        """Remove abandoned helpers, then make sure the image is there (pulling per policy)."""
        if self._image_ready:
            return
        self.reap_abandoned()
        self._ensure_image()
        self._image_ready = True

    def _ensure_image(self):
        try:
            have = self.api.has_image(self.image)
        except EngineRefused as exc:
            raise HelperError("Cannot inspect helper image %s: %s" % (self.image, exc))
        if have and self.pull != "always":
            return
        if not have and self.pull == "never":
            raise HelperError(
                "The helper image %s is not on the engine and helper_pull is 'never'. Load or "
                "tag an image with GNU tar and GNU find under that name, or set helper_image."
                % self.image,
                helper_image=self.image,
            )
        try:
            self.api.pull(self.image)
        except EngineRefused as exc:
            raise HelperError(
                "Cannot pull the helper image %s: %s. On a site without registry access, load "
                "or tag an image with GNU tar and GNU find under that name (for example "
                "'docker tag my-debian %s') or set helper_image to an image the engine has."
                % (self.image, exc, self.image),
                helper_image=self.image,
            )

    def reap_abandoned(self):
        """Remove helpers left by killed runs; never one that a live run may still use."""
        try:
            helpers = self.api.containers(HELPER_LABEL)
        except EngineRefused as exc:
            raise HelperError("Cannot list helper containers: %s" % exc)
        now = time.time()
        for summary in helpers:
            owner = (summary.get("Labels") or {}).get(HELPER_OWNER_LABEL)
            abandoned = owner_is_gone(owner)
            if not abandoned and summary.get("State") not in ("running", "paused", "restarting"):
                abandoned = now - self._finished_at(summary["Id"], now) > STOPPED_HELPER_GRACE_SECONDS
            if abandoned:
                try:
                    if self.api.remove_container(summary["Id"]):
                        self.reaped.append(summary["Id"][:12])
                except EngineRefused as exc:
                    raise HelperError("Cannot remove abandoned helper container %s: %s" % (summary["Id"][:12], exc))

    def _finished_at(self, container_id, default):
        details = self.api.inspect_container(container_id)
        if details is None:
            return default
        return (
            parse_docker_time(details["State"].get("FinishedAt"))
            or parse_docker_time(details.get("Created"))
            or default
        )

    def stream_output(self, command, volumes, what, writes=None, special=False, bulk=False):
        """Run ``command`` with ``volumes`` ({name: path}) mounted read-only; yield its stdout.

        ``what`` says in error messages what the helper was doing. The container is removed
        when the generator ends or is closed. Raises HelperError when the command exits
        non-zero (with the tail of its stderr and its ``exit_code``) or the stream breaks off.
        With ``writes`` (one of the volumes), that volume is mounted read-write and the helper
        has the rights of run_with_input's (``special`` as there); the others stay read-only.
        ``bulk`` output (a volume's tar stream) goes through a FIFO where the fast path is
        proved (see _fast_path), else through the API stream.
        """
        read_only = [name for name in volumes if name != writes]
        if not bulk:
            yield from self._short_output(command, volumes, what, writable=writes is not None, read_only=read_only, special=special,
                                          fast=self._undecided_fast_path())
            return
        fast = self._fast_path()
        self.transports.add("fifo" if fast else "api")
        if not fast:
            run = self._start(command, volumes, what, writable=writes is not None, read_only=read_only, special=special)
            with self._removing(run, writes is not None):
                yield from run.output()
                run.finish()
            return
        host_fifo, container_fifo = fast.fifo()
        reader = open_reader(host_fifo)
        try:
            run = self._start(output_to(command, container_fifo), volumes, what, writable=writes is not None,
                              read_only=read_only, special=special, bind=(fast.directory, False))
        except BaseException:
            os.close(reader)
            os.unlink(host_fifo)
            raise
        try:
            with self._removing(run, bulk and writes is not None):
                run.drain_in_background()
                yield from prefetch(read_fifo(reader, run.running))
                run.finish()
        finally:
            os.unlink(host_fifo)

    def run_with_input(self, command, volumes, chunks, what, special=False, bulk=False):
        """Run ``command`` with ``volumes`` mounted read-write, write ``chunks`` to its stdin.

        Returns the command's stdout (it should print little: a few lines of report).
        The container may change ownership, modes and xattrs of files, as restoring needs;
        with ``special`` also create device nodes, keep setuid/setgid bits and set file
        capabilities (SPECIAL_CAPABILITIES). It has no network and a read-only root file
        system (with a small tmpfs on /tmp). Raises HelperError when the command exits non-zero.
        ``bulk`` input goes through a FIFO where the fast path is proved, as for stream_output.
        """
        fast = self._fast_path() if bulk else None
        if bulk:
            self.transports.add("fifo" if fast else "api")
            command = reporting_success(command, self._success)
        if not fast:
            run = self._start(command, volumes, what, writable=True, stdin=True, special=special)
            with self._removing(run, bulk):
                # Producing the input (reading, decompressing) overlaps with sending it.
                for chunk in prefetch(chunks):
                    run.send(chunk)
                run.close_input()
                if bulk:
                    run.keep_output()
                    return run.finish_written(self._success)
                output = b"".join(run.output())
                run.finish()
                return output
        host_fifo, container_fifo = fast.fifo()
        writer = open_writer(host_fifo)
        try:
            run = self._start(input_from(command, container_fifo), volumes, what, writable=True, special=special,
                              bind=(fast.directory, False))
        except BaseException:
            os.close(writer)
            os.unlink(host_fifo)
            raise
        try:
            with self._removing(run, bulk):
                run.drain_in_background()
                run.send_through(writer, prefetch(chunks))
                return run.finish_written(self._success)
        finally:
            os.unlink(host_fifo)

    @contextmanager
    def held_output(self, command, volumes, what):
        """Start a read-only helper for ``command`` now and hold it before it runs the command;
        yields ``release``, which lets it run and returns a generator of its stdout (bulk: as
        stream_output's, through a FIFO where the fast path is proved), ending with its exit
        as there. A helper held ready before a bulk write reads what was written at once,
        while the engine writes the data out (see reporting_success). It is started in a
        thread (InBackground), side by side with the caller's next helper, and a failed start
        is raised by ``release``. The helper is removed when the block ends; never released, it
        runs nothing."""
        self.prepare()  # here, not in the thread that starts the helper
        fast = self._fast_path()
        fifo = None  # (path here, reading descriptor) on the fast path
        if fast:
            host_fifo, container_fifo = fast.fifo()
            command = output_to(command, container_fifo)
            fifo = (host_fifo, open_reader(host_fifo))
        released: List[bool] = []

        def closing_fifo():
            if fifo is not None:
                if not released:
                    os.close(fifo[1])
                os.unlink(fifo[0])

        starting = InBackground(lambda: self._start(held(command), volumes, what, writable=False, stdin=True,
                                                    bind=(fast.directory, False) if fast else None), name="persist-start")

        def release():
            run = starting.result()
            self.transports.add("fifo" if fast else "api")
            run.send(GO_LINE)
            run.close_input()
            if fifo is None:
                yield from run.output()
            else:
                run.drain_in_background()
                released.append(True)  # read_fifo closes the reader from here on
                yield from prefetch(read_fifo(fifo[1], run.running))
            run.finish()

        try:
            yield release
        finally:
            try:
                run = starting.settle()
                if run is not None:
                    run.remove()
            finally:
                closing_fifo()

    def relays(self):
        """Whether relay() can run: the fast path is proved (see _fast_path)."""
        return self._fast_path() is not None

    def relay(self, command, volumes, what, through, *, writes, special=False):
        """Run ``command`` with ``volumes`` mounted (``writes`` read-write, the others
        read-only, with the rights of run_with_input's) where relays() is true: its stdout
        comes here through one FIFO, and what ``through(chunks)`` yields from it goes back
        into its stdin through another, until ``through`` ends. Raises HelperError as
        stream_output does, and whatever ``through`` raises (the helper is removed then).
        A bulk writer: success is taken from its line (see reporting_success)."""
        fast = self._fast_path()
        if fast is None:
            raise AssertionError("internal error: relay() without the fast path")
        self.transports.add("fifo")
        output_host, output_container = fast.fifo()
        input_host, input_container = fast.fifo()
        try:
            reader = open_reader(output_host)
            writer = open_writer(input_host)
            try:
                run = self._start(reporting_success(relaying(command, output_container, input_container), self._success),
                                  volumes, what, writable=True,
                                  read_only=[name for name in volumes if name != writes], special=special, bind=(fast.directory, False))
            except BaseException:
                os.close(reader)
                os.close(writer)
                raise
            with self._removing(run, True), closing(prefetch(read_fifo(reader, run.running))) as chunks:
                run.drain_in_background()
                run.send_through(writer, through(chunks))
                run.finish_written(self._success)
        finally:
            os.unlink(output_host)
            os.unlink(input_host)

    @contextmanager
    def _removing(self, run, wrote_bulk):
        """Remove ``run`` when the block ends: at once when it failed, else in a thread for a
        helper that wrote bulk data (see _remove_soon)."""
        try:
            yield
        except BaseException:
            run.remove()
            raise
        if wrote_bulk:
            self._remove_soon(run)
        else:
            run.remove()

    def start_holder(self, name, labels, what):
        """Start a container called ``name`` that lives while this process holds it.

        It runs ``cat`` on a stdin that only this process has attached: when the returned
        run is removed, or this process dies and the engine sees its connection close, the
        container exits. Raises NameTaken when a container of that name exists already.
        """
        return self._start(["cat"], {}, what, writable=False, stdin=True, name=name, labels=labels)

    def create_marker(self, name, labels, what):
        """Create (never start) a container called ``name`` with ``labels``: a record that
        lives on the engine, where containers that only mount a volume cannot reach it.
        Raises NameTaken when a container of that name exists already."""
        self.prepare()
        try:
            self.api.create_container(self.image, labels, name=name, host_options=dict(cap_drop=["ALL"]), command=["true"])
        except EngineRefused as exc:
            raise HelperError("Cannot create the record %s on the engine while %s: %s" % (name, what, exc), helper_image=self.image)

    def marker_labels(self, name):
        """The labels of the container called ``name``, or None when there is none."""
        try:
            details = self.api.inspect_container(name)
        except EngineRefused as exc:
            raise HelperError("Cannot inspect the record %s on the engine: %s" % (name, exc))
        return None if details is None else details["Config"].get("Labels") or {}

    def remove_marker(self, name):
        """Remove the container called ``name`` (nothing when it is gone already)."""
        try:
            self.api.remove_container(name)
        except EngineRefused as exc:
            raise HelperError("Cannot remove the record %s from the engine: %s" % (name, exc))

    def _start(self, command, volumes, what, *, writable, stdin=False, name=None, labels=None, read_only=(), special=False, bind=None):
        self.prepare()
        container_id = self._create(command, volumes, what, writable=writable, stdin=stdin, name=name, labels=labels,
                                    read_only=read_only, special=special, bind=bind)
        run = _HelperRun(self.api, container_id, what)
        try:
            run.attach(stdin)
            self.api.start(container_id)
        except EngineRefused as exc:
            run.remove()
            raise HelperError("The Docker engine refused to start a helper container while %s: %s" % (what, exc))
        except BaseException:
            run.remove()
            raise
        return run

    def _create(self, command, volumes, what, *, writable, stdin, name=None, labels=None, read_only=(), special=False, bind=None):
        mounts = [("volume", name, path, not writable or name in read_only) for name, path in sorted(volumes.items())]
        if bind is not None:  # only ever the fast path's private directory: (host path, read-only)
            mounts.append(("bind", bind[0], FAST_MOUNT, bind[1]))
        capabilities = READER_CAPABILITIES
        if writable:
            capabilities = WRITER_CAPABILITIES + (SPECIAL_CAPABILITIES if special else [])
        try:
            return self.api.create_container(
                self.image,
                labels or {HELPER_LABEL: "true", HELPER_OWNER_LABEL: owner_token()},
                name=name,
                mounts=mounts,
                host_options=dict(
                    read_only=True,
                    tmpfs={"/tmp": "size=16m"} if writable else None,
                    cap_drop=["ALL"],
                    cap_add=capabilities,
                    security_opt=["no-new-privileges"],
                ),
                entrypoint=command[:1],
                command=command[1:],
                user="0:0",
                stdin_open=stdin,
                tty=False,
            )
        except EngineRefused as exc:
            raise HelperError(
                "Cannot create a helper container from %s while %s: %s" % (self.image, what, exc),
                helper_image=self.image,
            )


class _HelperRun:
    """One started helper container and its attached streams."""

    def __init__(self, api, container_id, what):
        self.api = api
        self.container_id = container_id
        self.what = what
        self.sock = None
        self.stderr_tail = b""
        self._drainer = None
        self._drained = []

    def attach(self, stdin):
        self.sock = self.api.attach_socket(self.container_id, stdin)

    def send(self, data):
        try:
            raw_socket(self.sock).sendall(data)
        except OSError as exc:
            raise HelperError(
                "The helper container stopped taking data while %s (%s)%s"
                % (self.what, exc, self._exit_detail())
            )

    def close_input(self):
        raw_socket(self.sock).shutdown(socket.SHUT_WR)

    def _state(self):
        """The container's state, or None when it is gone (or the engine would not say)."""
        try:
            return self.api.container_state(self.container_id)
        except EngineRefused:
            return None

    def running(self):
        """Whether the container still runs (or is still starting)."""
        state = self._state()
        return state is not None and (bool(state.get("Running")) or state.get("Status") == "created")

    def drain_in_background(self):
        """Read the attach stream (stdout, stderr) in a thread, so that a helper whose bulk
        data goes through a FIFO never blocks writing messages nobody reads."""
        self._drained = []
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self):
        try:
            for data in self._stdout():
                self._drained.append(data)
        except (TruncatedStream, OSError):
            pass  # the exit status says what happened

    def send_through(self, writer, chunks):
        """Write ``chunks`` into the FIFO the helper reads as its stdin (``writer``, see
        _fast_path.open_writer), then close it: the helper's input ends."""
        try:
            for chunk in chunks:
                write_all(writer, chunk, self.running)
            wait_until_read(writer, self.running)
        except BrokenPipeError as exc:
            raise HelperError("The helper container stopped taking data while %s (%s)%s" % (self.what, exc, self._exit_detail()))
        finally:
            os.close(writer)

    def output(self):
        """Yield stdout data until the container closes its streams; keep a tail of stderr.
        A thread reads ahead (boundedly), so receiving overlaps with the caller's work."""
        try:
            yield from prefetch(self._stdout())
        except TruncatedStream as exc:
            raise HelperError("The stream from the helper container broke off while %s: %s" % (self.what, exc))

    def _stdout(self):
        for stream_id, data in demultiplex(socket_reader(self.sock)):
            if stream_id == STDOUT:
                yield data
            elif stream_id == STDERR:
                self.stderr_tail = (self.stderr_tail + data)[-STDERR_TAIL_BYTES:]

    def keep_output(self):
        """Read the attach stream to its end (the helper's processes ended), keeping its stdout
        for finish_written."""
        self._drained = []
        self._drain()

    def finish_written(self, line):
        """finish() for a helper run under reporting_success with ``line``, whose output was
        kept (by drain_in_background or keep_output): when it ends with ``line``, the command
        exited 0 and the engine's exit status is not waited for (the removal waits for it, see
        reporting_success); otherwise finish() says why it failed. Returns the command's stdout."""
        if self._drainer is not None:
            await_stream_end(self._drainer, self.running)
        output = b"".join(self._drained)
        if not output.endswith(line):
            return self.finish()
        close_socket(self.sock)
        return output[:-len(line)]

    def finish(self):
        """Wait for the exit; HelperError (with the stderr tail) unless it exited 0. Returns
        what a helper draining in the background printed on stdout."""
        try:
            exit_code = self.api.wait(self.container_id)
        except EngineRefused as exc:
            raise HelperError("Lost the helper container while %s: %s" % (self.what, exc))
        finally:
            if self._drainer is not None:
                self._drainer.join(timeout=30)
            close_socket(self.sock)
        if exit_code != 0:
            stderr = self.stderr_tail.decode("utf-8", "replace").strip()
            raise HelperError(
                "The helper container failed (exit code %s) while %s: %s" % (exit_code, self.what, stderr or "no error output"),
                helper_stderr=stderr, exit_code=exit_code,
            )
        return b"".join(self._drained)

    def _exit_detail(self):
        state = self._state()
        if state is None or state.get("Running"):
            return ""
        return "; it exited with code %s" % state.get("ExitCode")

    def detach(self):
        """Close the attach connection and leave the container: one that reads its stdin ends."""
        if self.sock is not None:
            close_socket(self.sock)

    def remove(self):
        self.detach()
        try:
            self.api.remove_container(self.container_id)
        except EngineRefused:
            pass  # reaped by the next run, which finds it by its label
