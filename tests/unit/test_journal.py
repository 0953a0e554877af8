"""Reserved entries at a volume's root are acted on only with the engine's record of the
run that wrote them: a planted, forged or orphaned journal is never followed."""

import subprocess

import pytest

from ansible_collections.persist.docker.plugins.module_utils._journal import ReservedState, journal_mac, plan_recovery
from ansible_collections.persist.docker.plugins.module_utils._tar_commands import _SWAP_SCRIPT

TOKEN = "0123456789ab"
SECRET = "5" * 64
RECORD = {"token": TOKEN, "mode": "replace", "secret": SECRET, "special": False}


def journal(phase="in", token=TOKEN, mode="replace", stamp="1700000000.123456789", secret=SECRET):
    line = "%s %s %s %s" % (phase, token, mode, stamp)
    return ("%s %s\n" % (line, journal_mac(secret, line))).encode("ascii")


def state(*names, content=None, journal_kind="f"):
    entries = dict((name, "directory") for name in names)
    if content is not None:
        entries[".persist-journal"] = {"f": "file", "l": "symlink"}[journal_kind]
    return ReservedState(entries, content if journal_kind == "f" else None)


def test_the_swap_script_and_the_module_compute_the_same_journal_checksum(tmp_path):
    """The MAC is computed by the helper's shell (printf | sha256sum) and checked in Python."""
    assert "printf '%s\\n%s\\n' \"$secret\" \"$line\" | sha256sum" in _SWAP_SCRIPT
    line = "aside %s merge 1700000000.000000001" % TOKEN
    shell = subprocess.run(["sh", "-c", "printf '%s\\n%s\\n' \"$1\" \"$2\" | sha256sum | cut -c1-64", "sh", SECRET, line],
                           check=True, stdout=subprocess.PIPE).stdout.decode().strip()
    assert shell == journal_mac(SECRET, line)


def test_our_journal_with_its_record_is_finished_and_its_trees_are_ours():
    plan = plan_recovery(state(".persist-staging-" + TOKEN, ".persist-old-" + TOKEN, content=journal()), RECORD)
    assert plan.finish == ("in", "1700000000.123456789")
    assert plan.foreign == [] and plan.foreign_journal is None and plan.forget_record


@pytest.mark.parametrize(
    "content, record, words",
    [
        (journal(), None, "engine holds no record"),
        (journal(secret="6" * 64), RECORD, "checksum does not match"),
        (journal(phase="aside"), RECORD, None),
        (journal().replace(b"in ", b"aside ", 1), RECORD, "checksum does not match"),
        (journal(token="ba9876543210"), RECORD, "names another run"),
        (journal(mode="merge"), RECORD, "names another run"),
        (b"aside ../../etc replace 1 x\n", RECORD, "not a journal line"),
        (b"in " + TOKEN.encode() + b" replace $(reboot) " + b"0" * 64 + b"\n", RECORD, "not a journal line"),
        (journal() + b"extra\n", RECORD, "not a journal line"),
    ],
)
def test_a_journal_the_record_does_not_vouch_for_is_foreign_and_never_finished(content, record, words):
    plan = plan_recovery(state(".persist-staging-" + TOKEN, content=content), record)
    if words is None:
        assert plan.finish == ("aside", "1700000000.123456789")
        return
    assert plan.finish is None
    assert words in plan.foreign_journal
    assert plan.foreign == [".persist-journal", ".persist-staging-" + TOKEN]


def test_a_journal_that_is_a_symlink_is_foreign_even_with_a_record():
    plan = plan_recovery(state(content=b"", journal_kind="l"), RECORD)
    assert plan.finish is None and "not a regular file" in plan.foreign_journal


def test_without_journal_the_records_staging_tree_is_ours_to_remove_and_others_are_foreign():
    plan = plan_recovery(state(".persist-staging-" + TOKEN, ".persist-staging-feedfacecafe", ".persist-notes"), RECORD)
    assert plan.own == TOKEN and plan.forget_record
    assert plan.foreign == [".persist-notes", ".persist-staging-feedfacecafe"]
    assert plan.foreign_journal is None


def test_without_a_record_nothing_is_ours():
    plan = plan_recovery(state(".persist-staging-" + TOKEN), None)
    assert (plan.finish, plan.own, plan.forget_record) == (None, None, False)
    assert plan.foreign == [".persist-staging-" + TOKEN]
    assert not plan_recovery(state(), None).needed


def test_a_record_left_after_a_complete_swap_is_forgotten():
    plan = plan_recovery(state(), RECORD)
    assert plan.forget_record and plan.own is None and plan.needed


def test_the_reserved_state_listing_is_parsed_with_the_journal_only_when_it_is_a_regular_file():
    parsed = ReservedState.parse(b"Vd .persist-staging-x\0f .persist-journal\0\0in x y z\n")
    assert parsed.entries == {".persist-staging-x": "directory", ".persist-journal": "file"}
    assert parsed.journal == b"in x y z\n" and parsed.visible
    linked = ReservedState.parse(b"El .persist-journal\0\0")
    assert linked.entries == {".persist-journal": "symlink"} and linked.journal is None and not linked.visible
    empty = ReservedState.parse(b"E\0")
    assert empty.entries == {} and empty.journal is None and not empty.visible and empty.root is None
    bare = ReservedState.parse(b"E\0" + b"./\0tar of the root")
    assert bare.entries == {} and bare.journal is None and bare.root == b"./\0tar of the root"
    # Only a root with no entry at all comes with its tar stream: never a journal taken for one.
    assert ReservedState.parse(b"Ef .persist-journal\0\0in x\n").root is None
    assert ReservedState.parse(b"V\0whatever").root is None
    for cut in (b"Vd .persist-x\0", b"d .persist-x\0\0", b""):
        with pytest.raises(ValueError):
            ReservedState.parse(cut)
