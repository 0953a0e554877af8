"""The staged data is on disk before the swap lets the old tree go, whatever file system
holds the volume: the helper scripts run here in a directory standing in for /volume, with a
``sync`` first on PATH that logs each call and the journal as it was at that moment, then
runs the real one.

Nothing here can cut the power; what it shows is the order of the calls, which is what
makes a power cut harmless."""

import io
import os
import subprocess
import tarfile

import pytest

from ansible_collections.persist.docker.plugins.module_utils._tar_commands import (
    VOLUME_MOUNT,
    _STAGED_TREE_SCRIPT,
    _SWAP_SCRIPT,
)

TOKEN = "0123456789ab"
SECRET = "5" * 64
STAGING = ".persist-staging-" + TOKEN

_SYNC_SHIM = """#!/bin/sh
if [ -f "$VOLUME/.persist-journal" ]; then journal=$(cut -d' ' -f1 "$VOLUME/.persist-journal"); else journal=none; fi
printf '%s | journal %s\\n' "$*" "$journal" >>"$SYNC_LOG"
exec "$REAL_SYNC" "$@"
"""


@pytest.fixture
def volume(tmp_path):
    """A volume root with old entries and a staged tree; returns (root, run) where run(script,
    *arguments) runs a helper script there and returns (stdout, the sync calls)."""
    root = tmp_path / "volume"
    (root / STAGING / "data").mkdir(parents=True)
    (root / STAGING / "data" / "new").write_bytes(b"restored")
    (root / STAGING / "data" / "kept").write_bytes(b"restored too")
    (root / "data").mkdir()
    (root / "data" / "new").write_bytes(b"old")
    (root / "only-old").write_bytes(b"old")
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "sync").write_text(_SYNC_SHIM)
    (shims / "sync").chmod(0o755)
    log = tmp_path / "sync.log"
    real_sync = subprocess.run(["sh", "-c", "command -v sync"], check=True, stdout=subprocess.PIPE).stdout.decode().strip()
    environment = dict(os.environ, PATH="%s:%s" % (shims, os.environ["PATH"]), SYNC_LOG=str(log), VOLUME=str(root),
                       REAL_SYNC=real_sync)

    def run(script, *arguments):
        here = script.replace(VOLUME_MOUNT, str(root))
        done = subprocess.run(["sh", "-c", here, "sh"] + list(arguments), env=environment, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, check=False)
        assert done.returncode == 0, done.stderr.decode()
        calls = log.read_text().splitlines() if log.exists() else []
        return done.stdout, calls

    return root, run


def test_replace_syncs_the_staged_files_before_the_journal_lets_the_old_tree_go(volume):
    root, run = volume
    _output, calls = run(_SWAP_SCRIPT, TOKEN, "replace", SECRET)
    assert calls[0] == "-f %s | journal none" % STAGING, calls
    assert (root / "data" / "new").read_bytes() == b"restored"
    assert not (root / "only-old").exists() and not (root / STAGING).exists()


def test_merge_syncs_the_whole_file_system_after_linking_before_it_records_the_end(volume):
    root, run = volume
    _output, calls = run(_SWAP_SCRIPT, TOKEN, "merge", SECRET)
    assert calls[0] == "-f %s | journal none" % STAGING, calls
    assert "-f . | journal aside" in calls, calls
    assert calls.index("-f . | journal aside") < calls.index(". | journal clean"), calls
    assert (root / "data" / "new").read_bytes() == b"restored" and (root / "only-old").read_bytes() == b"old"


def test_reading_a_staged_tree_back_syncs_it_meanwhile_and_streams_it(volume):
    root, run = volume
    output, calls = run(_STAGED_TREE_SCRIPT, TOKEN)
    assert calls == ["-f %s/%s | journal none" % (root, STAGING)]
    with tarfile.open(fileobj=io.BytesIO(output)) as archive:
        names = sorted(member.name for member in archive.getmembers())
        assert archive.extractfile("./data/new").read() == b"restored"
    assert names == [".", "./data", "./data/kept", "./data/new"]
