# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Runs a module against a Docker engine: builds its AnsibleModule with the connection (helper,
consistency) options, connects, and hands the result or the error to _local_runner."""

from __future__ import annotations

from ansible_collections.persist.docker.plugins.module_utils._connection import (
    connect,
    connection_argument_spec,
)
from ansible_collections.persist.docker.plugins.module_utils._consistency import consistency_argument_spec
from ansible_collections.persist.docker.plugins.module_utils._engine import VolumeEngine
from ansible_collections.persist.docker.plugins.module_utils._errors import EngineError
from ansible_collections.persist.docker.plugins.module_utils._helper import (
    HelperRunner,
    helper_argument_spec,
)
from ansible_collections.persist.docker.plugins.module_utils._local_runner import build_local_module, run_local
from ansible_collections.persist.docker.plugins.module_utils._options import Connection, Helper

try:
    from requests.exceptions import RequestException
except ImportError:  # pragma: no cover - requests comes with the Docker SDK
    RequestException = OSError  # type: ignore[misc,assignment]


def module_argument_spec(argument_spec, uses_helpers=False, guards_consistency=False):
    """``argument_spec`` with the connection (helper, consistency) options merged in."""
    spec = connection_argument_spec()
    if uses_helpers:
        spec.update(helper_argument_spec())
    if guards_consistency:
        spec.update(consistency_argument_spec())
    spec.update(argument_spec)
    return spec


def build_module(argument_spec, uses_helpers=False, guards_consistency=False, **kwargs):
    """An AnsibleModule whose spec has the connection (helper, consistency) options merged in."""
    return build_local_module(module_argument_spec(argument_spec, uses_helpers, guards_consistency), **kwargs)


def run(module, operation, needs_engine=True):
    """Connect, call ``operation(engine)`` and exit with its result dict (see run_local).

    ``engine`` is a VolumeEngine whose helpers follow the module's helper options; with
    ``needs_engine`` false nothing connects and ``engine`` is None (verifying a backup
    directory on a host without an engine). A connection lost mid-operation is reported with
    the engine's address; helpers reaped on the way are reported, also on failure.
    """
    connection = Connection.from_params(module.params)
    helper = Helper.from_params(module.params) if "helper_image" in module.params else None
    helpers = []

    def work():
        if not needs_engine:
            return operation(None)
        try:
            api = connect(connection)
            if helper is not None:
                helpers.append(HelperRunner(api, helper))
            engine = VolumeEngine(api, helpers[0] if helpers else None)
            try:
                return operation(engine)
            finally:
                if helpers:
                    helpers[0].close()
        except (RequestException, OSError) as exc:
            raise EngineError(
                "Lost the connection to the Docker engine at %s: %s. Check that the engine still "
                "runs, then run the task again." % (connection.docker_host, exc)
            )

    def reaped():
        return {"reaped_helpers": helpers[0].reaped} if helpers and helpers[0].reaped else {}

    run_local(module, work, reaped)
