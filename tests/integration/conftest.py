# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures of the integration tests: a real Docker engine, modules run by pytest-ansible.

How pytest-ansible is set up (nothing to pass on the command line):

* ``pytest_configure`` points pytest-ansible at ``localhost`` with the ``local`` connection
  and makes it use the ``ANSIBLE_COLLECTIONS_PATH`` it is given (``--ansible-unit-inject-only``)
  instead of building ``./collections`` inside the repository.
* ``run_module`` runs one module through pytest-ansible's ad-hoc machinery
  (``ansible_adhoc`` -> host manager -> module dispatcher). pytest-ansible builds its fake
  ad-hoc command line without ``--check``/``--diff``, so a small dispatcher subclass adds the
  task keywords ``check_mode`` and ``diff`` to the task it plays.

Every test names what it creates with the session prefix ``pt-<8 hex>-`` through the
``engine`` fixture, which removes those containers and volumes when the test ends, passed
or failed. Nothing without that prefix is ever removed, except helper containers that a
failed (or deliberately killed) module run left on one of those volumes (they would keep
the volume in use). Backup directories (``backup_dir``) are temporary directories with the
same prefix, removed likewise.

The backup and restore tests build trees on a volume's host Mountpoint
(``engine.mountpoint``) and read them back there to check the result (see volume_trees);
the modules themselves only ever reach volume data through their helper containers.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path

import ansible.constants
import docker
import pytest
from docker.errors import APIError, NotFound
from pytest_ansible.module_dispatcher.v213 import ModuleDispatcherV213

from adhoc_process import with_transport

REPO_ROOT = Path(__file__).resolve().parents[2]
# The image our own data containers run: Debian minbase with sh, GNU tar, find, coreutils.
TEST_IMAGE = "persist-test/debian:bookworm"
HELPER_LABEL = "persist.docker.helper"
OWNER_LABEL = "persist.docker.owner"
SESSION_ID = secrets.token_hex(4)
PREFIX = "pt-%s-" % SESSION_ID
# A label key no other session or user has: filters on it see only this session's volumes.
SESSION_LABEL = "persist.test.%s" % SESSION_ID
# Where our data containers mount the volume.
DATA = "/data"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # Invoked from a collection root, pytest-ansible would create ./collections/ with a link to
    # every top-level entry of the repository and reset ANSIBLE_COLLECTIONS_PATH to it; the
    # harness already gives a collections path in which persist.docker is this checkout.
    config.option.ansible_unit_inject_only = True
    if config.option.ansible_inventory == ansible.constants.DEFAULT_HOST_LIST:
        config.option.ansible_inventory = "localhost,"
        config.option.ansible_connection = "local"
        config.option.ansible_host_pattern = "localhost"
    # The modules need the Docker SDK, which this interpreter has (the tests import it).
    os.environ.setdefault("ANSIBLE_PYTHON_INTERPRETER", sys.executable)
    for message in (
        "Host management is deprecated",
        "AnsibleCollectionFinder has already been configured",
    ):
        config.addinivalue_line("filterwarnings", "ignore:%s" % message)
    config.addinivalue_line(
        "markers",
        "alone: the test asserts on what any module run on this host or engine may change (helpers "
        "and scratch volumes reaped, helpers created, private directories): scripts/test runs these "
        "tests one at a time after the others, with nothing else running",
    )


# The files that take longest (fleets of engines, real databases, kills, both transports),
# longest first: scripts/test runs the suite on pytest-xdist workers a file at a time
# (``--dist loadfile``: a file's module fixtures are made once), and the files start in
# collection order, so these start first and the short ones fill the workers in the end.
LONGEST_FILES = (
    "test_fleet_backup.py", "test_awx_job.py", "test_restore.py", "test_atomicity.py",
    "test_postgres_consistency.py", "test_fleet_batches.py", "test_fidelity.py",
    "test_backup_role_offsite.py", "test_trust.py", "test_volume_copy.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONGEST_FILES)))


class CheckDiffDispatcher(ModuleDispatcherV213):
    """pytest-ansible's dispatcher, playing the task with ``check_mode`` and ``diff`` set.

    ``check`` and ``diff`` come from the host manager options (``ansible_adhoc(check=True)``);
    pytest-ansible keeps them in its options but does not pass them on to the play.
    """

    def _build_play_ds(self, complex_args):
        play = super()._build_play_ds(complex_args)
        task = play["tasks"][0]
        action = task.pop("action")
        # The string form of ``action``: ansible-core 2.19 deprecates the dict form.
        task["action"] = action["module"]
        task["args"] = action["args"]
        task["check_mode"] = bool(self.options.get("check"))
        task["diff"] = bool(self.options.get("diff"))
        return play


@pytest.fixture(scope="session", autouse=True)
def collection_under_test():
    """Stop at once unless persist.docker resolves to this checkout."""
    from ansible.plugins.loader import module_loader

    found = module_loader.find_plugin_with_context("persist.docker.volume")
    path = Path(found.plugin_resolved_path).resolve() if found.resolved else None
    if path is None or REPO_ROOT not in path.parents:
        pytest.exit(
            "persist.docker.volume resolves to %s, not to this checkout (%s). Set "
            "ANSIBLE_COLLECTIONS_PATH to a directory holding ansible_collections/persist/docker "
            "-> the repository." % (path, REPO_ROOT),
            returncode=4,
        )
    return path


@pytest.fixture(scope="session")
def docker_client():
    """SDK client for setting up state and checking what the modules left in the engine."""
    client = docker.from_env()
    try:
        client.images.get(TEST_IMAGE)
    except NotFound:
        pytest.exit("The test image %s is not on the engine; load or build it first." % TEST_IMAGE, returncode=4)
    yield client
    _sweep_session(client)
    client.close()


def _sweep_session(client):
    """Safety net: remove whatever still carries this session's prefix."""
    for container in client.containers.list(all=True, filters={"name": PREFIX}):
        if container.name.startswith(PREFIX):
            container.remove(force=True)
    for volume in client.volumes.list(filters={"name": PREFIX}):
        if volume.name.startswith(PREFIX):
            _remove_helpers_of(client, volume.name)
            volume.remove(force=True)


def _remove_helpers_of(client, volume_name):
    """Helpers the module under test left on one of our volumes (when a test failed, or a
    run was killed on purpose). Low-level calls: another run may reap one meanwhile."""
    for helper in client.api.containers(all=True, filters={"label": HELPER_LABEL, "volume": volume_name}):
        try:
            client.api.remove_container(helper["Id"], force=True)
        except NotFound:
            pass


@pytest.fixture(params=["auto", "api"])
def data_transport(request, monkeypatch):
    """Runs a test twice: with the transport the modules choose (``auto``: the co-located FIFO
    on this machine) and with every module that moves data forced onto the Docker API stream,
    as remote engines and a module in a container use it (``PERSIST_TEST_TRANSPORT``, read by
    adhoc_process.with_transport). The files whose modules move volume data use it
    (``pytestmark``); the refusals of hostile and corrupt archives happen before any data
    moves, so their files run once."""
    if request.param == "api":
        monkeypatch.setenv("PERSIST_TEST_TRANSPORT", "api")
    else:
        monkeypatch.delenv("PERSIST_TEST_TRANSPORT", raising=False)
    return request.param


@pytest.fixture
def run_module(ansible_adhoc):
    """``run_module("volume", name=..., check=True, diff=True)`` -> the module's result dict.

    The module runs on localhost through pytest-ansible; the result is what Ansible got
    back from the module (``changed``, ``failed``, ``msg``, ``diff`` and return values).
    """

    def run(module, check=False, diff=False, **module_args):
        hosts = ansible_adhoc(check=check, diff=diff)
        dispatcher = CheckDiffDispatcher(**hosts.options)
        result = getattr(dispatcher, "persist.docker.%s" % module)(**with_transport(module, module_args))
        return dict(result["localhost"])

    return run


class Engine:
    """This test's containers and volumes on the real engine, all removed at the end."""

    def __init__(self, client):
        self.client = client
        self._containers = []
        self._volumes = []

    def name(self, suffix):
        """A volume name for this test; the volume is removed at the end if it exists."""
        name = PREFIX + suffix
        self._volumes.append(name)
        return name

    def create_volume(self, suffix, labels=None, driver_opts=None):
        name = self.name(suffix)
        self.client.volumes.create(name=name, driver="local", driver_opts=driver_opts, labels=labels)
        return name

    def inspect(self, name):
        """The engine's inspect of volume ``name``, or None when it does not exist."""
        try:
            return self.client.api.inspect_volume(name)
        except NotFound:
            return None

    def mountpoint(self, name):
        """Where volume ``name`` (of the local driver) keeps its data on this host.

        Tests build trees there and read them back to check what a module did; the
        modules themselves only reach the data through their helper containers.
        """
        return Path(self.client.api.inspect_volume(name)["Mountpoint"])

    def remove_volume(self, name):
        """Remove one of this test's volumes now (and any helper a failed run left on it)."""
        assert name.startswith(PREFIX), name
        if self.inspect(name) is not None:
            _remove_helpers_of(self.client, name)
            self.client.volumes.get(name).remove(force=True)

    def wait_for_helpers(self, volume, timeout=120):
        """Wait until no helper container on ``volume`` is still running (a killed run's
        helper may go on working after its module process died)."""
        # Low-level calls: a helper may be removed between listing and waiting (reaped by
        # the next run, possibly of another test session on this engine).
        for helper in self.client.api.containers(all=True, filters={"label": HELPER_LABEL, "volume": volume}):
            try:
                self.client.api.wait(helper["Id"], timeout=timeout)
            except NotFound:
                pass

    def run(self, volume, script, read_only=False):
        """Run ``sh -c script`` with ``volume`` at /data; return its stdout as text."""
        name = self._container_name("sh")
        mode = "ro" if read_only else "rw"
        output = self.client.containers.run(
            TEST_IMAGE,
            ["sh", "-c", script],
            name=name,
            volumes={volume: {"bind": DATA, "mode": mode}},
            network_mode="none",
            remove=True,
        )
        return output.decode("utf-8")

    def fill(self, volume):
        """Write a small tree into ``volume``: a directory and two files, 1239 bytes in all.

        Returns the usage the modules must report for it.
        """
        self.run(
            volume,
            "mkdir /data/sub && head -c 1234 /dev/urandom > /data/sub/payload.bin && "
            "printf hello > /data/greeting.txt",
        )
        return {"entries": 3, "bytes": 1239}

    def snapshot(self, volume):
        """Every path with its type, size and content hash, to prove data was left intact."""
        return self.run(
            volume,
            "cd /data && find . -mindepth 1 -printf '%p %y %s\\n' | sort && "
            "find . -type f -exec sha256sum {} + | sort",
            read_only=True,
        )

    def container(self, suffix, volume, state, read_only=False, mount_path=DATA, command=None, image=TEST_IMAGE, **create_args):
        """A container of ``image`` mounting ``volume``, left ``running``, ``exited`` or ``created``.

        A running one sleeps, unless ``command`` says otherwise; ``create_args`` go to the
        SDK's ``containers.create`` (labels, network_mode, environment ...).
        """
        name = self._container_name(suffix)
        create_args.setdefault("network_mode", "none")
        container = self.client.containers.create(
            image,
            command or (["sleep", "300"] if state == "running" else ["true"]),
            name=name,
            volumes={volume: {"bind": mount_path, "mode": "ro" if read_only else "rw"}},
            **create_args,
        )
        if state != "created":
            container.start()
        if state == "exited":
            container.wait(timeout=60)
        container.reload()
        assert container.status == state
        return container

    def fake_helper(self, suffix, owner, running):
        """A container labelled as a helper of persist.docker, owned by ``owner``."""
        container = self.client.containers.create(
            TEST_IMAGE,
            ["sleep", "300"] if running else ["true"],
            name=self._container_name(suffix),
            labels={HELPER_LABEL: "true", OWNER_LABEL: owner},
            network_mode="none",
        )
        container.start()
        if not running:
            container.wait(timeout=60)
        return container

    def helpers_on(self, volume):
        """Helper containers (of any run) that mount ``volume``."""
        # sparse: no inspect per container, so one removed meanwhile cannot fail the listing.
        return self.client.containers.list(all=True, sparse=True, filters={"label": HELPER_LABEL, "volume": volume})

    def kill_helpers(self, volume):
        """Kill the helper containers that mount ``volume`` (as a crash would end them); one
        that ended already, or is being removed by its run, is left as it is."""
        for helper in self.helpers_on(volume):
            try:
                helper.kill()
            except (NotFound, APIError):
                pass

    def container_name(self, suffix):
        """A container name for this test (for containers a test creates itself, such as
        database servers); the container is removed at the end if it exists."""
        return self._container_name(suffix)

    def _container_name(self, suffix):
        name = "%s%s-%s" % (PREFIX, suffix, secrets.token_hex(3))
        self._containers.append(name)
        return name

    def adopt_containers(self, *names):
        """Containers that something this test runs (a playbook) creates under these exact
        names, each starting with the session prefix; removed at the end if they exist."""
        assert all(name.startswith(PREFIX) for name in names), names
        self._containers.extend(names)

    def cleanup(self):
        # Lock containers and swap records of our volumes, left by runs that a test killed.
        self._containers.extend("persist-%s-%s" % (kind, name) for name in self._volumes for kind in ("lock", "swap"))
        for name in self._containers:
            try:
                self.client.containers.get(name).remove(force=True)
            except NotFound:
                pass
        for name in self._volumes:
            if self.inspect(name) is not None:
                _remove_helpers_of(self.client, name)
                try:
                    self.client.volumes.get(name).remove(force=True)
                except NotFound:
                    pass


@pytest.fixture
def engine(docker_client):
    state = Engine(docker_client)
    yield state
    state.cleanup()


@pytest.fixture(scope="module")
def module_engine(docker_client):
    """Like ``engine``, for state that several tests of one file share (a reference backup)."""
    state = Engine(docker_client)
    yield state
    state.cleanup()


@pytest.fixture(scope="module")
def module_backup_dir():
    """Like ``backup_dir``, shared by the tests of one file."""
    path = Path(tempfile.mkdtemp(prefix=PREFIX + "shared-backups-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def backup_dir():
    """A fresh directory for archives (``dest``/``src``), removed when the test ends."""
    path = Path(tempfile.mkdtemp(prefix=PREFIX + "backups-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def this_host():
    """The host name the modules see: they run on localhost."""
    return socket.gethostname()


@pytest.fixture(scope="session")
def session_label():
    """A label key that only this session's volumes carry."""
    return SESSION_LABEL


@contextlib.contextmanager
def _terminations_interrupt():
    """SIGTERM and SIGHUP (a CI timeout, a closed terminal) interrupt the session as Ctrl-C
    does, so that pytest runs the finalizers that stop the tests' own engines. A SIGKILL runs
    none: the next session removes what it left (second_engine.reap_orphans)."""
    def interrupt(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {number: signal.signal(number, interrupt) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@pytest.fixture
def second_engine(docker_client):
    """A dockerd of the test's own (see second_engine.SecondEngine) with the helper image,
    loaded from the main engine as an offline site gets it; stopped and removed afterwards.
    Yields (SecondEngine, its SDK client)."""
    from second_engine import HELPER_IMAGE, SecondEngine, load_images, reap_orphans

    reap_orphans()
    engine = SecondEngine()
    with _terminations_interrupt():
        try:
            client = engine.start()
            load_images([engine], HELPER_IMAGE)
            yield engine, client
        finally:
            engine.remove()


@pytest.fixture(scope="session")
def fleet(docker_client):
    """Four simulated Docker hosts (fleet.Fleet: a dockerd each, started in parallel, given the
    helper and data images), shared by the fleet and AWX tests of the session; stopped and
    removed with their directories at the end, also when a test or the start failed or the
    session was terminated."""
    from fleet import Fleet

    hosts = Fleet(4)
    with _terminations_interrupt():
        try:
            yield hosts.start()
        finally:
            hosts.remove()


@pytest.fixture
def fleet_volumes(fleet):
    """This test's volumes, containers and directories on the fleet (fleet.FleetVolumes), all
    removed at the end, on the engines that still answer."""
    from fleet import FleetVolumes

    state = FleetVolumes(fleet, "fleet")
    yield state
    state.remove()
