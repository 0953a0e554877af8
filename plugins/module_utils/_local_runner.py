# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The one place where the collection's errors become a task failure.

Modules that work on the managed node without a Docker engine (backup_info, backup_prune,
backup_offsite) run through this file alone, which loads neither the Docker SDK nor the
engine's code: each task of a fleet pays less start-up. Modules that talk to an engine run
through _runner, which connects and then ends here too.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.persist.docker.plugins.module_utils._errors import PersistError


def build_local_module(argument_spec, **kwargs):
    """The AnsibleModule of a module that needs no engine (no connection options)."""
    return AnsibleModule(argument_spec=argument_spec, **kwargs)


def run_local(module, work, extras=dict):
    """Call ``work()`` and exit with its result dict.

    PersistError becomes ``fail_json`` with its message and details. Warnings travel one way:
    a ``warnings`` list in the result, or in the error's details, is handed to
    ``module.warn``. ``extras()`` gives fields added to the result, also on failure (the
    helpers _runner reaped on the way)."""
    try:
        result = work()
    except PersistError as exc:
        details = dict(exc.details)
        _warn(module, details)
        module.fail_json(msg=exc.msg, **dict(details, **extras()))
    _warn(module, result)
    result.update(extras())
    module.exit_json(**result)


def _warn(module, result):
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
