"""The co-located fast path's FIFOs: data through them whole, waits that end when the helper
is gone, and directories of killed runs removed."""

import os
import subprocess
import tempfile
import threading

import pytest

from ansible_collections.persist.docker.plugins.module_utils._fast_path import (
    DIRECTORY_PREFIX,
    FastPath,
    input_from,
    open_for_writing,
    output_to,
    read_fifo,
    reap_directories,
    write_all,
)


@pytest.fixture
def fast():
    path = FastPath("testhost_1_2")
    yield path
    path.close()


def test_the_directory_is_private_and_the_token_proves_it(fast):
    assert oct(os.stat(fast.directory).st_mode & 0o777) == "0o700"
    with open(os.path.join(fast.directory, "token"), "rb") as handle:
        assert fast.proved_by(handle.read() + b"\n")
    assert not fast.proved_by(b"someone else's")
    fast.close()
    assert not os.path.exists(fast.directory)


def test_a_command_writing_into_the_fifo_is_read_whole(fast):
    host, _container = fast.fifo()
    data = os.urandom(5 * 1024 * 1024)
    # The shell wrapper as a helper runs it, with the FIFO at its host path.
    writer = subprocess.Popen(output_to(["cat"], host), stdin=subprocess.PIPE)
    feeder = threading.Thread(target=lambda: (writer.stdin.write(data), writer.stdin.close()))
    feeder.start()
    assert b"".join(read_fifo(host, lambda: writer.poll() is None)) == data
    feeder.join()
    assert writer.wait() == 0


def test_a_command_reading_the_fifo_gets_every_byte(fast, tmp_path):
    host, _container = fast.fifo()
    out = tmp_path / "out"
    reader = subprocess.Popen(input_from(["sh", "-c", "cat > %s" % out], host))
    descriptor = open_for_writing(host, lambda: reader.poll() is None)
    data = os.urandom(3 * 1024 * 1024 + 5)
    write_all(descriptor, data)
    os.close(descriptor)
    assert reader.wait() == 0
    assert out.read_bytes() == data


def test_waiting_for_a_helper_that_never_opens_its_fifo_ends_when_it_is_gone(fast):
    host, _container = fast.fifo()
    assert list(read_fifo(host, lambda: False)) == []
    assert open_for_writing(host, lambda: False) is None


def test_directories_of_runs_that_are_gone_are_removed_and_others_kept():
    gone = tempfile.mkdtemp(prefix=DIRECTORY_PREFIX + "host_1_gone-")
    alive = tempfile.mkdtemp(prefix=DIRECTORY_PREFIX + "host_2_alive-")
    other = tempfile.mkdtemp(prefix="not-ours-")
    try:
        reap_directories(lambda owner: owner.endswith("/gone"))
        assert not os.path.exists(gone)
        assert os.path.exists(alive) and os.path.exists(other)
    finally:
        for path in (gone, alive, other):
            if os.path.exists(path):
                os.rmdir(path)
