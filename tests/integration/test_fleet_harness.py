# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test fleet leaves nothing behind: the engines of a test process that was killed (so
that no finalizer ran) are stopped and removed by the next session."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from second_engine import SecondEngine, _processes_of, reap_orphans

HERE = os.path.dirname(os.path.abspath(__file__))


def _running(engine):
    """Whether a process of ``engine`` runs (its dockerd, its containerd)."""
    return bool(_processes_of(engine.root))


def test_engines_of_a_killed_test_process_are_stopped_and_removed_by_the_next_session():
    # A test process that starts an engine, says which, and is then killed with SIGKILL.
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time
        sys.path.insert(0, %r)
        from second_engine import SecondEngine
        engine = SecondEngine()
        engine.start()
        print(engine.root.rsplit("-", 1)[1], flush=True)
        time.sleep(600)
    """ % HERE)], stdout=subprocess.PIPE, text=True)
    token = child.stdout.readline().strip()
    engine = SecondEngine(token=token)
    try:
        assert _running(engine) and os.path.exists(engine.owner_file)
        child.kill()
        child.wait()
        assert _running(engine), "the engine died with its test process: nothing to reap"

        reaped = [root for root in reap_orphans() if root == engine.root]

        assert reaped == [engine.root]
        assert not _running(engine)
        assert not os.path.exists(engine.root)
    finally:
        if os.path.exists(engine.root):  # the test failed: clean up as the reaper should have
            child.kill()
            reap_orphans()
