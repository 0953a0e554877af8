# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The one place where the collection's errors become a task failure."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.persist.docker.plugins.module_utils._connection import (
    connect,
    connection_argument_spec,
)
from ansible_collections.persist.docker.plugins.module_utils._consistency import consistency_argument_spec
from ansible_collections.persist.docker.plugins.module_utils._engine import VolumeEngine
from ansible_collections.persist.docker.plugins.module_utils._errors import PersistError
from ansible_collections.persist.docker.plugins.module_utils._helper import (
    HelperRunner,
    helper_argument_spec,
)

try:
    from requests.exceptions import RequestException
except ImportError:  # pragma: no cover - requests comes with the Docker SDK
    RequestException = OSError


def build_module(argument_spec, uses_helpers=False, guards_consistency=False, **kwargs):
    """An AnsibleModule whose spec has the connection (helper, consistency) options merged in."""
    spec = connection_argument_spec()
    if uses_helpers:
        spec.update(helper_argument_spec())
    if guards_consistency:
        spec.update(consistency_argument_spec())
    spec.update(argument_spec)
    return AnsibleModule(argument_spec=spec, **kwargs)


def run(module, operation, needs_engine=True):
    """Connect, call ``operation(engine)`` and exit with its result dict.

    ``engine`` is a VolumeEngine whose helpers follow the module's helper options; with
    ``needs_engine`` false nothing connects and ``engine`` is None (work on the managed node
    that runs where no engine is, such as pruning or verifying a backup directory).
    PersistError becomes ``fail_json`` with its message and details; a connection lost
    mid-operation is reported with the engine's address. A ``warnings`` list in the result
    is handed to ``module.warn``; helpers reaped on the way are reported, also on failure.
    """
    params = module.params
    helpers = None
    try:
        engine = None
        if needs_engine:
            client = connect(params)
            if "helper_image" in params:
                helpers = HelperRunner(client, params["helper_image"], params["helper_pull"], params["helper_transport"])
            engine = VolumeEngine(client, helpers)
        try:
            result = operation(engine)
        finally:
            if helpers is not None:
                helpers.close()
    except PersistError as exc:
        module.fail_json(msg=exc.msg, **dict(exc.details, **_reaped(helpers)))
    except (RequestException, OSError) as exc:
        if not needs_engine:
            raise
        module.fail_json(
            msg="Lost the connection to the Docker engine at %s: %s. Check that the engine still "
            "runs, then run the task again." % (params["docker_host"], exc),
            **_reaped(helpers)
        )
    for warning in result.pop("warnings", []):
        module.warn(warning)
    result.update(_reaped(helpers))
    module.exit_json(**result)


def _reaped(helpers):
    return {"reaped_helpers": helpers.reaped} if helpers is not None and helpers.reaped else {}
