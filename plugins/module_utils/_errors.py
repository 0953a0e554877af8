# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Typed errors raised by the collection's layers.

Every layer raises a subclass of PersistError; the module runner turns it into one
``fail_json`` with ``msg`` and any structured ``details``. Messages say what failed,
which volume, container or image is at fault, and what the user can do next.
"""

from __future__ import annotations


class PersistError(Exception):
    """Base of all errors the modules report as a task failure."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


class DependencyError(PersistError):
    """A Python library the module needs is missing or too old."""


class EngineError(PersistError):
    """The Docker engine could not be reached or refused a request."""


class EngineRefused(EngineError):
    """The engine answered a request with an error: the Docker SDK's APIError, translated in
    _docker_api alone. The message is the SDK's; ``explanation`` is the engine's own words,
    ``status`` the HTTP status of its answer."""

    def __init__(self, msg, explanation=None, status=None):
        super().__init__(msg)
        self.explanation = explanation
        self.status = status


class EngineNotFound(EngineRefused):
    """The engine has no container, exec, image or volume of that name or id (its 404)."""


class HelperError(PersistError):
    """A helper container could not be had, or its command failed."""


class VolumeConflict(PersistError):
    """An existing volume differs from the request and cannot be changed safely."""


class VolumeInUse(PersistError):
    """Containers reference a volume that the request would remove."""


class VolumeNotEmpty(PersistError):
    """A volume holds data that the request would destroy."""


class VolumeMissing(PersistError):
    """The volume an operation needs does not exist."""


class BackupError(PersistError):
    """A backup could not be written; nothing was left under a final name."""


class RestoreError(PersistError):
    """A restore was refused or failed; the message says what state the target is in."""


class BackupDirectoryError(PersistError):
    """A backup directory is missing or cannot be read."""


class PruneError(PersistError):
    """A retention policy was refused, or pruning a backup directory failed."""


class ReservedEntries(PersistError):
    """A volume holds reserved entries (a swap journal, staging trees) that stop the
    operation: a half-done swap to finish, or entries this collection did not write."""


class OffsiteError(PersistError):
    """An off-host target could not be used, or a copy to it failed; the message names the
    target (and the archive) and says what to do."""


class VolumeLocked(PersistError):
    """Another run holds the volume's lock and did not release it within lock_timeout."""


class ContainersInTheWay(PersistError):
    """Containers that mount the volume stop the operation, or could not be stopped, paused
    or started again; the message names them and what state they are in."""


class HookFailed(PersistError):
    """A pre- or post-command failed; the message names the container, command and exit code."""


class VerifyError(PersistError):
    """A verification found an archive that is not restorable, or had nothing to verify."""


class CopyError(PersistError):
    """A volume copy (or a migration) was refused or failed; the message says where the data is."""
