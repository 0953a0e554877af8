# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""The volume_info operation: read only, so it loads nothing of the operations that write."""

from __future__ import annotations

from ansible_collections.persist.docker.plugins.module_utils._volume_spec import missing_volume


def volume_info(engine, name, label_filters, measure):
    """Describe one volume (``name``) or all volumes matching ``label_filters``."""
    table = engine.mount_table()
    if name:
        found = engine.volume(name)
        volumes = [found] if found else []
    else:
        volumes = engine.volumes(label_filters)
    for volume in volumes:
        volume["containers"] = table.get(volume["name"], [])
        if measure:
            volume["usage"] = engine.usage(volume["name"])
    result = dict(changed=False, volumes=volumes)
    if name:
        result["volume"] = volumes[0] if volumes else missing_volume(name)
        result["exists"] = bool(volumes)
    return result
