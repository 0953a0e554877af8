# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""A probe: a user's command run in a container on the restored copy of a backup.

The container has no network and carries the helper labels (with this run's owner), so a
probe left behind by a killed run is removed by the next run like any helper. Its output
goes to a small, rotated json-file log (unlike a helper's, a probe's output is its result)
of which the last PROBE_OUTPUT_BYTES are kept. It is removed when it ends, is killed after
its timeout, or the run fails.
"""

from __future__ import annotations

import time

from ansible_collections.persist.docker.plugins.module_utils._errors import EngineRefused, HelperError
from ansible_collections.persist.docker.plugins.module_utils._options import Helper
from ansible_collections.persist.docker.plugins.module_utils._helper import (
    HELPER_LABEL,
    HELPER_OWNER_LABEL,
    HelperRunner,
)
from ansible_collections.persist.docker.plugins.module_utils._ownership import owner_token
from ansible_collections.persist.docker.plugins.module_utils._verify_select import tail

PROBE_LABEL = "persist.docker.probe"
PROBE_OUTPUT_BYTES = 64 * 1024
# The engine keeps at most two files of this size: the kept tail always fits in them.
_LOG_OPTIONS = {"max-size": "64k", "max-file": "2"}


def run_probe(api, probe, image, pull, volume):
    """Run ``probe`` (the module's suboptions) from ``image`` with ``volume`` mounted
    read-write at ``probe['path']``; wait at most ``probe['timeout']`` seconds.

    Returns ``exit_code`` (None when it timed out), ``timed_out``, ``output`` (the tail of
    stdout and stderr, interleaved), ``output_truncated``, ``image`` and
    ``duration_seconds``. Raises HelperError when the image cannot be had or the engine
    refuses the container.
    """
    HelperRunner(api, Helper(image, pull)).prepare()
    try:
        container_id = api.create_container(
            image,
            {HELPER_LABEL: "true", HELPER_OWNER_LABEL: owner_token(), PROBE_LABEL: volume},
            # A volume is mounted with no_copy: an empty restored copy must stay empty, not receive the image's files.
            mounts=[("volume", volume, probe["path"], False)],
            log_driver="json-file",
            log_options=_LOG_OPTIONS,
            command=probe["command"],
            entrypoint=probe.get("entrypoint"),
            environment=dict((key, str(value)) for key, value in (probe.get("env") or {}).items()),
            user=probe.get("user") or None,
        )
    except EngineRefused as exc:
        raise HelperError("Cannot create the probe container from %s on volume %s: %s" % (image, volume, exc), probe_image=image)
    started = time.time()
    try:
        try:
            api.start(container_id)
        except EngineRefused as exc:
            raise HelperError(
                "The Docker engine refused to start the probe container from %s on volume %s: %s. Check the "
                "probe's image, entrypoint, command and user." % (image, volume, exc),
                probe_image=image,
            )
        exit_code, timed_out = _wait(api, container_id, probe["timeout"])
        output, truncated = tail(_logs(api, container_id), PROBE_OUTPUT_BYTES)
    finally:
        try:
            api.remove_container(container_id)
        except EngineRefused:
            pass  # labelled as a helper: the next run reaps it
    return {
        "image": image,
        "exit_code": exit_code,
        "timed_out": timed_out,
        "output": output,
        "output_truncated": truncated,
        "duration_seconds": round(time.time() - started, 3),
    }


def _wait(api, container_id, timeout):
    """``(exit_code, timed_out)``; a probe still running after ``timeout`` seconds is killed."""
    exit_code = api.wait(container_id, timeout=timeout)
    if exit_code is not None:
        return exit_code, False
    try:
        api.kill(container_id)
    except EngineRefused:
        pass  # it ended just now, or is gone; it is removed either way
    return None, True


def _logs(api, container_id):
    """The probe's stdout and stderr in the order written, only the last PROBE_OUTPUT_BYTES kept."""
    kept = b""
    try:
        for chunk in api.logs(container_id):
            kept = (kept + chunk)[-(PROBE_OUTPUT_BYTES + 1):]
    except EngineRefused as exc:
        return ("(the probe's output could not be read: %s)" % exc).encode("utf-8")
    return kept
