# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The floor rows: what moving bytes through the engine's API costs, with no work on them.

``python floor.py out BYTES [api|fifo]`` runs a helper container (the modules' own
HelperRunner: no network, log driver none) that writes BYTES zero bytes to its stdout with
``dd``, and reads them thrown away: through the attach stream, demultiplexed (api), or
through the co-located fast path's FIFO (fifo): what every backup pays before it parses,
hashes or compresses a byte. ``python floor.py in BYTES [api|fifo]`` writes BYTES zero bytes
to a helper's stdin, which ``cat`` throws away: what every restore pays. The collection is
imported from ANSIBLE_COLLECTIONS_PATH (set by scripts/lib.sh).
"""

from __future__ import annotations

import os
import sys

MIB = 1 << 20


def main():
    direction, size = sys.argv[1], int(sys.argv[2])
    transport = sys.argv[3] if len(sys.argv) > 3 else "api"
    sys.path.insert(0, os.environ["ANSIBLE_COLLECTIONS_PATH"])
    import docker  # pylint: disable=import-outside-toplevel
    from ansible_collections.persist.docker.plugins.module_utils._docker_api import EngineAPI  # pylint: disable=import-outside-toplevel
    from ansible_collections.persist.docker.plugins.module_utils._helper import DEFAULT_HELPER_IMAGE, HelperRunner  # pylint: disable=import-outside-toplevel
    from ansible_collections.persist.docker.plugins.module_utils._options import Helper  # pylint: disable=import-outside-toplevel

    options = Helper(DEFAULT_HELPER_IMAGE, transport="auto" if transport == "fifo" else "api")
    helpers = HelperRunner(EngineAPI(docker.APIClient(version="auto", timeout=600)), options)
    blocks = max(1, size // MIB)
    moved = 0
    if direction == "out":
        command = ["dd", "if=/dev/zero", "bs=1M", "count=%d" % blocks, "status=none"]
        for chunk in helpers.stream_output(command, {}, "streaming zeros out", bulk=True):
            moved += len(chunk)
    else:
        zeros = bytes(MIB)

        def chunks():
            for _block in range(blocks):
                yield zeros

        helpers.run_with_input(["sh", "-c", "cat >/dev/null"], {}, chunks(), "streaming zeros in", bulk=True)
        moved = blocks * MIB
    helpers.close()
    if helpers.transport() != transport:
        sys.exit("the %s floor ran through %s (the fast path could not be proved)" % (transport, helpers.transport()))
    if moved != blocks * MIB:
        sys.exit("moved %d bytes, expected %d" % (moved, blocks * MIB))
    print(moved)


if __name__ == "__main__":
    main()
