"""The shell wrappers of helper commands, run here with the machine's sh: a bulk writer's
success line, and a held helper that runs its command only when told to; and how long the
module waits for a bulk writer's output to end."""

import subprocess
import threading

from ansible_collections.persist.docker.plugins.module_utils._helper import GO_LINE, await_stream_end, held, reporting_success, success_line


def _run(command, stdin=b""):
    return subprocess.run(command, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)


def test_a_command_that_succeeds_prints_its_output_then_the_success_line():
    line = success_line()
    done = _run(reporting_success(["sh", "-c", "printf 'report\\n'; cat >/dev/null", "sh"], line), b"data" * 1000)
    assert done.returncode == 0
    assert done.stdout == b"report\n" + line


def test_a_command_that_fails_prints_no_success_line_and_keeps_its_exit_code():
    failed = _run(reporting_success(["sh", "-c", "printf 'partial'; echo broken >&2; exit 2", "sh"], success_line()))
    assert failed.returncode == 2
    assert failed.stdout == b"partial"
    assert failed.stderr == b"broken\n"


def test_every_runner_has_a_line_of_its_own():
    lines = {success_line() for _count in range(100)}
    assert len(lines) == 100
    # A command that prints another run's line and fails does not end with this run's.
    line = success_line()
    failed = _run(reporting_success(["sh", "-c", 'printf "%s" "$0"; exit 1', success_line().decode("ascii")], line))
    assert failed.returncode == 1
    assert not failed.stdout.endswith(line)


def test_a_held_command_runs_when_told_to_go():
    ran = _run(held(["sh", "-c", "echo ran; cat", "sh"]), GO_LINE)
    assert ran.returncode == 0
    assert ran.stdout == b"ran\n"


def test_a_held_command_never_runs_on_other_input_or_its_end():
    for stdin in (b"", b"stop\n", b"go on\n", b"gone\n", b"\n"):
        refused = _run(held(["sh", "-c", "echo ran", "sh"]), stdin)
        assert refused.returncode == 1, stdin
        assert refused.stdout == b"", stdin


def _drainer(ended):
    thread = threading.Thread(target=ended.wait, daemon=True)
    thread.start()
    return thread


def test_the_engine_is_not_asked_while_the_output_ends_in_time():
    # While the engine writes out what a helper wrote, an inspect waits for it: a stream that
    # ended (the success line came) must not cost that wait.
    ended = threading.Event()
    asked = []
    threading.Timer(0.05, ended.set).start()
    await_stream_end(_drainer(ended), lambda: asked.append(True) or True, patience=2.0)
    assert ended.is_set()
    assert not asked


def test_a_stream_that_does_not_end_is_waited_for_until_the_container_ended():
    ended = threading.Event()
    answers = [True, True, False]

    def running():
        still = answers.pop(0)
        if not still:
            ended.set()  # the engine closes the stream once the container ended
        return still

    drainer = _drainer(ended)
    await_stream_end(drainer, running, patience=0.02)
    assert not answers
    assert not drainer.is_alive()
