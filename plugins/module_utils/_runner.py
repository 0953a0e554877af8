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


def build_module(argument_spec, uses_helpers=False, **kwargs):
    """An AnsibleModule whose spec has the connection (and helper) options merged in."""
    spec = connection_argument_spec()
    if uses_helpers:
        spec.update(helper_argument_spec())
    spec.update(argument_spec)
    return AnsibleModule(argument_spec=spec, **kwargs)


def run(module, operation):
    """Connect, call ``operation(engine)`` and exit with its result dict.

    ``engine`` is a VolumeEngine whose helpers follow the module's helper options.
    PersistError becomes ``fail_json`` with its message and details; a connection lost
    mid-operation is reported with the engine's address.
    """
    params = module.params
    try:
        client = connect(params)
        helpers = None
        if "helper_image" in params:
            helpers = HelperRunner(client, params["helper_image"], params["helper_pull"])
        result = operation(VolumeEngine(client, helpers))
        if helpers is not None and helpers.reaped:
            result["reaped_helpers"] = helpers.reaped
    except PersistError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except (RequestException, OSError) as exc:
        module.fail_json(
            msg="Lost the connection to the Docker engine at %s: %s. Check that the engine still "
            "runs, then run the task again." % (params["docker_host"], exc),
        )
    module.exit_json(**result)
