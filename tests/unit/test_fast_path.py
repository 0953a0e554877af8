"""The co-located fast path's FIFOs: data through them whole, waits that end when the helper
is gone, and directories of killed runs removed."""

import os
import subprocess
import tempfile
import threading

import pytest

from ansible_collections.persist.docker.plugins.module_utils._fast_path import (
    DIRECTORY_PREFIX,
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


@pytest.fixture
def fast():
    path = FastPath("testhost_1_2")
    yield path
    path.close()


def test_the_directory_is_private_and_the_token_proves_it(fast):
    assert oct(os.stat(fast.directory).st_mode & 0o777) == "0o700"
    with open(os.path.join(fast.directory, "token"), "rb") as handle:
        assert fast.proved_by(handle.read())
    assert not fast.proved_by(b"someone else's")
    fast.close()
    assert not os.path.exists(fast.directory)


def _carrying(command, token_path):
    """carrying_proof's command line with the token at its host path (a helper reads it at
    FAST_MOUNT)."""
    line = FastPath.carrying_proof(command)
    assert line[3] == FAST_MOUNT + "/token"
    return line[:3] + [token_path] + line[4:]


def test_a_helper_carrying_the_proof_prints_the_token_then_its_command_output(fast):
    printed = subprocess.run(_carrying(["sh", "-c", 'printf "%s|" "$@"', "sh", "a b", "c"], os.path.join(fast.directory, "token")),
                             stdout=subprocess.PIPE, check=True).stdout
    assert fast.proved_by(printed[:TOKEN_LENGTH])
    assert printed[TOKEN_LENGTH:] == b"a b|c|"


def test_a_helper_that_cannot_read_the_token_prints_blanks_of_the_same_length(fast, tmp_path):
    (tmp_path / "token").write_bytes(b"x" * (TOKEN_LENGTH + 5))
    for path, expected in ((str(tmp_path / "missing"), b" " * TOKEN_LENGTH), (str(tmp_path / "token"), b"x" * TOKEN_LENGTH)):
        printed = subprocess.run(_carrying(["echo", "out"], path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        assert printed.stdout == expected + b"out\n"
        assert not fast.proved_by(printed.stdout[:TOKEN_LENGTH])


def test_a_command_writing_into_the_fifo_is_read_whole(fast):
    host, _container = fast.fifo()
    data = os.urandom(5 * 1024 * 1024)
    reader = open_reader(host)
    # The shell wrapper as a helper runs it, with the FIFO at its host path.
    writer = subprocess.Popen(output_to(["cat"], host), stdin=subprocess.PIPE)
    feeder = threading.Thread(target=lambda: (writer.stdin.write(data), writer.stdin.close()))
    feeder.start()
    assert b"".join(read_fifo(reader, lambda: writer.poll() is None)) == data
    feeder.join()
    assert writer.wait() == 0


def test_a_command_reading_the_fifo_gets_every_byte(fast, tmp_path):
    host, _container = fast.fifo()
    out = tmp_path / "out"
    descriptor = open_writer(host)
    reader = subprocess.Popen(input_from(["sh", "-c", "cat > %s" % out], host))
    data = os.urandom(3 * 1024 * 1024 + 5)
    write_all(descriptor, data, lambda: reader.poll() is None)
    os.close(descriptor)
    assert reader.wait() == 0
    assert out.read_bytes() == data


def test_a_relayed_command_hands_its_output_here_and_takes_back_what_comes_of_it(fast, tmp_path):
    """As a copy's helper does: its stream ends here while it still runs (it closes its stdout),
    and what this process made of it is its input, ended when this process closes the FIFO."""
    output_host = fast.fifo()[0]
    input_host = fast.fifo()[0]
    received = tmp_path / "received"
    reader, writer = open_reader(output_host), open_writer(input_host)
    helper = subprocess.Popen(relaying(["sh", "-c", 'printf "%s" "$1"; exec >&-; cat > "$2"', "sh", "stream of the helper", str(received)],
                                       output_host, input_host))

    def alive():
        return helper.poll() is None

    relayed = [chunk.upper() for chunk in read_fifo(reader, alive)]
    for chunk in relayed:
        write_all(writer, chunk, alive)
    wait_until_read(writer, alive)
    os.close(writer)

    assert helper.wait(timeout=10) == 0
    assert received.read_bytes() == b"STREAM OF THE HELPER"


def test_waiting_for_a_helper_that_never_opens_its_fifo_ends_when_it_is_gone(fast):
    host, _container = fast.fifo()
    assert list(read_fifo(open_reader(host), lambda: False)) == []


def test_a_helper_that_stops_reading_makes_the_writer_fail_instead_of_hang(fast):
    host, _container = fast.fifo()
    descriptor = open_writer(host)
    reader = subprocess.Popen(input_from(["true"], host))  # opens its input, reads nothing
    reader.wait(timeout=10)
    with pytest.raises(BrokenPipeError):
        write_all(descriptor, bytes(8 << 20), lambda: reader.poll() is None)
    os.close(descriptor)


def test_the_helpers_end_never_waits_and_sees_the_end_when_this_process_closes_or_dies(fast):
    """Both ends are opened before the helper starts: a helper never blocks in open(), so a
    killed module cannot leave it waiting forever."""
    out_host, _container = fast.fifo()
    reader = open_reader(out_host)
    writer = subprocess.run(output_to(["echo", "done"], out_host), timeout=10, check=True)
    assert writer.returncode == 0
    assert b"".join(read_fifo(reader, lambda: False)) == b"done\n"
    in_host, _container = fast.fifo()
    descriptor = open_writer(in_host)
    helper = subprocess.Popen(input_from(["cat"], in_host), stdout=subprocess.PIPE)
    os.close(descriptor)  # as when the module dies
    assert helper.communicate(timeout=10)[0] == b""


def test_what_was_written_before_a_slow_helper_opened_its_end_reaches_it(fast):
    """All of the input fits in the pipe and is written before the helper opens the FIFO:
    the writing end stays open until the helper read it (a FIFO nobody holds open loses
    its content)."""
    host, _container = fast.fifo()
    descriptor = open_writer(host)
    write_all(descriptor, b"small input", lambda: True)
    helper = []
    starter = threading.Timer(0.5, lambda: helper.append(subprocess.Popen(input_from(["cat"], host), stdout=subprocess.PIPE)))
    starter.start()
    wait_until_read(descriptor, lambda: True)
    os.close(descriptor)
    starter.join()
    assert helper[0].communicate(timeout=10)[0] == b"small input"


def test_a_helper_started_after_the_module_died_ends_instead_of_waiting(fast):
    """The module's ends are closed before the helper opens its own: the helper reads an
    empty input, or its writes fail, and it exits at once."""
    in_host, _container = fast.fifo()
    os.close(open_writer(in_host))
    reading = subprocess.run(input_from(["wc", "-c"], in_host), capture_output=True, timeout=10, check=False)
    assert (reading.returncode, reading.stdout.strip()) == (0, b"0")
    out_host, _container = fast.fifo()
    os.close(open_reader(out_host))
    writing = subprocess.run(output_to(["head", "-c", "1000000", "/dev/zero"], out_host), capture_output=True, timeout=10, check=False)
    assert writing.returncode != 0


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
