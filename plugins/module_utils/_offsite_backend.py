# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""An off-host target's backend (SSH or S3, loaded only when used) and its listing: what
backup_offsite (which sends) and backup_info / backup_verify with ``target`` (which read)
share."""

from __future__ import annotations

from ansible_collections.persist.docker.plugins.module_utils._offsite_plan import RemoteListing


def open_target(target, masker):
    """The backend of ``target`` (a target dict; a context manager)."""
    if target["type"] == "ssh":
        from ansible_collections.persist.docker.plugins.module_utils._offsite_ssh import SshTarget

        return SshTarget(target, masker)
    from ansible_collections.persist.docker.plugins.module_utils._offsite_s3 import S3Target

    return S3Target(target, masker)


def read_listing(backend, now, create=False):
    """The RemoteListing of ``backend`` (empty when its directory does not exist yet, which
    is then created when ``create``); and whether the directory was missing."""
    if backend.open():
        return backend.listing(now), False
    if create:
        backend.prepare()
    return RemoteListing({}, {}, backend.url, now), True
