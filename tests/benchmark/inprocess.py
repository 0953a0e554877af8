# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one operation of the modules in this python process, without Ansible, for profiling.

    python tests/benchmark/inprocess.py backup '{"volume": "VOL", "dest": "/var/tmp/dir"}'
    python tests/benchmark/inprocess.py restore '{"volume": "NEW", "src": "/var/tmp/dir/VOL-...tar.zst"}'
    python tests/benchmark/inprocess.py copy '{"source": "VOL", "dest": "NEW"}'
    py-spy record --threads -o profile.svg -- python tests/benchmark/inprocess.py backup '...'

The options are the module's, with its defaults; the engine is the local one (DOCKER_HOST is
honoured). Prints the wall time and the result (without the long lists) to stderr. The
collection is imported from ANSIBLE_COLLECTIONS_PATH, as scripts/lib.sh sets it
(``source scripts/lib.sh && ensure_all`` in a shell first).
"""

from __future__ import annotations

import json
import os
import sys
import time

OPERATIONS = {
    "backup": ("volume_backup", "_backup_ops", "backup", "BackupOptions"),
    "restore": ("volume_restore", "_restore_ops", "restore", "RestoreOptions"),
    "copy": ("volume_copy", "_copy_ops", "copy", "CopyOptions"),
}


def module_defaults(module_name):
    """The module's parameters with their defaults, read from its argument spec (the modules
    build it in main(); the spec is taken from build_module's call)."""
    from ansible_collections.persist.docker.plugins.module_utils import _runner  # pylint: disable=import-outside-toplevel

    captured = {}

    def capture(argument_spec, uses_helpers=False, guards_consistency=False, **_kwargs):
        spec = _runner.module_argument_spec(argument_spec, uses_helpers, guards_consistency)
        captured.update((name, option.get("default")) for name, option in spec.items())
        raise SystemExit(0)

    module = __import__("ansible_collections.persist.docker.plugins.modules.%s" % module_name, fromlist=["main"])
    module.build_module = capture
    try:
        module.main()
    except SystemExit:
        pass
    return captured


def main():
    operation, given = sys.argv[1], json.loads(sys.argv[2])
    sys.path.insert(0, os.environ["ANSIBLE_COLLECTIONS_PATH"])
    import docker  # pylint: disable=import-outside-toplevel
    from ansible_collections.persist.docker.plugins.module_utils._docker_api import EngineAPI  # pylint: disable=import-outside-toplevel
    from ansible_collections.persist.docker.plugins.module_utils._engine import VolumeEngine  # pylint: disable=import-outside-toplevel
    from ansible_collections.persist.docker.plugins.module_utils._helper import HelperRunner  # pylint: disable=import-outside-toplevel
    from ansible_collections.persist.docker.plugins.module_utils._options import Helper  # pylint: disable=import-outside-toplevel

    module_name, ops_name, function_name, options_name = OPERATIONS[operation]
    params = module_defaults(module_name)
    params.update(given)
    ops = __import__("ansible_collections.persist.docker.plugins.module_utils.%s" % ops_name, fromlist=[function_name, options_name])
    api = EngineAPI(docker.APIClient(version="auto", timeout=params.get("timeout") or 600))
    engine = VolumeEngine(api, HelperRunner(api, Helper.from_params(params)))
    options = getattr(ops, options_name).from_params(params)
    started = time.monotonic()
    try:
        result = getattr(ops, function_name)(engine, options, False)
    finally:
        engine.helpers.close()
    shown = {key: value for key, value in result.items() if key not in ("diff", "differences", "actions")}
    print("%s: %.2f s\n%s" % (operation, time.monotonic() - started, json.dumps(shown, indent=1, default=str)[:3000]), file=sys.stderr)


if __name__ == "__main__":
    main()
