"""The shell wrappers of helper commands, run here with the machine's sh: a bulk writer's
success line, and a held helper that runs its command only when told to."""

import subprocess

from ansible_collections.persist.docker.plugins.module_utils._helper import GO_LINE, held, reporting_success, success_line


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
