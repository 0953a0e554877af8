# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Connection to the Docker engine: the shared argument spec and the client factory.

The options are documented once in plugins/doc_fragments/_docker.py; every module merges
``connection_argument_spec()`` into its own spec; _runner reads them into a
``_options.Connection`` and calls ``connect()`` with it.
"""

from __future__ import annotations

import os
import traceback

from ansible.module_utils.basic import env_fallback

from ansible_collections.persist.docker.plugins.module_utils._docker_api import EngineAPI
from ansible_collections.persist.docker.plugins.module_utils._errors import (
    DependencyError,
    EngineError,
)
from ansible_collections.persist.docker.plugins.module_utils._options import (
    DEFAULT_DOCKER_HOST,
    SECOND_ENGINE_OPTIONS,
    Connection,
)

MINIMUM_SDK_VERSION = (5, 0)

try:
    import docker
    from docker.tls import TLSConfig

    SDK_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised by the sanity import test
    docker = None
    SDK_IMPORT_ERROR = traceback.format_exc()


def connection_argument_spec():
    """The argument spec of the connection options, a fresh dict on every call."""
    return dict(
        docker_host=dict(
            type="str",
            default=DEFAULT_DOCKER_HOST,
            aliases=["docker_url"],
            fallback=(env_fallback, ["DOCKER_HOST"]),
        ),
        tls=dict(type="bool", default=False, fallback=(env_fallback, ["DOCKER_TLS"])),
        validate_certs=dict(
            type="bool",
            default=False,
            aliases=["tls_verify"],
            fallback=(env_fallback, ["DOCKER_TLS_VERIFY"]),
        ),
        ca_path=dict(type="path", aliases=["ca_cert", "tls_ca_cert"]),
        client_cert=dict(type="path", aliases=["tls_client_cert", "cert_path"]),
        client_key=dict(type="path", aliases=["tls_client_key", "key_path"]),
        api_version=dict(
            type="str",
            default="auto",
            aliases=["docker_api_version"],
            fallback=(env_fallback, ["DOCKER_API_VERSION"]),
        ),
        timeout=dict(type="int", default=60, fallback=(env_fallback, ["DOCKER_TIMEOUT"])),
    )


def prefixed_connection_argument_spec(prefix):
    """The argument spec of the options of a second engine: ``PREFIXdocker_host`` and
    ``PREFIX<option>`` for each of SECOND_ENGINE_OPTIONS, with no default, so that an
    unset one can take the value of its unprefixed twin (see ``Connection.from_params``)."""
    base = connection_argument_spec()
    spec = {prefix + "docker_host": dict(type="str")}
    for name in SECOND_ENGINE_OPTIONS:
        spec[prefix + name] = dict(type=base[name]["type"])
    return spec


def sdk_version():
    """The installed Docker SDK version as a tuple of ints, or None when it is missing."""
    if docker is None:
        return None
    parts = []
    for piece in docker.__version__.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _require_sdk():
    version = sdk_version()
    if version is None:
        raise DependencyError(
            "The Docker SDK for Python is not installed on the managed node. Install it with "
            "'pip install docker' (>= 5.0) or the distribution package (python3-docker), for the "
            "Python interpreter Ansible uses there.",
            exception=SDK_IMPORT_ERROR,
        )
    if version < MINIMUM_SDK_VERSION:
        raise DependencyError(
            "The Docker SDK for Python on the managed node is version %s; persist.docker needs "
            ">= %s. Upgrade it with 'pip install --upgrade docker'."
            % (docker.__version__, ".".join(str(v) for v in MINIMUM_SDK_VERSION))
        )


def _tls_config(connection: Connection):
    cert_dir = os.environ.get("DOCKER_CERT_PATH")

    def from_cert_dir(value, file_name):
        if value or not cert_dir:
            return value
        candidate = os.path.join(cert_dir, file_name)
        return candidate if os.path.exists(candidate) else None

    ca_path = from_cert_dir(connection.ca_path, "ca.pem")
    client_cert = from_cert_dir(connection.client_cert, "cert.pem")
    client_key = from_cert_dir(connection.client_key, "key.pem")
    verify = connection.validate_certs
    if not (connection.tls or verify):
        return None
    if bool(client_cert) != bool(client_key):
        raise EngineError(
            "TLS to the Docker engine needs both client_cert and client_key, or neither; "
            "got only %s." % ("client_cert" if client_cert else "client_key")
        )
    if verify and not ca_path:
        raise EngineError(
            "validate_certs is true but no CA certificate was given: set ca_path, or "
            "DOCKER_CERT_PATH to a directory that holds ca.pem."
        )
    return TLSConfig(
        client_cert=(client_cert, client_key) if client_cert else None,
        ca_cert=ca_path if verify else None,
        verify=bool(verify),
    )


def connect(connection: Connection):
    """Return an EngineAPI over a low-level ``docker.APIClient`` for ``connection``.

    Raises DependencyError when the SDK is missing or too old, and EngineError naming the
    address tried when the engine does not answer.
    """
    _require_sdk()
    base_url = connection.docker_host
    tls = _tls_config(connection)
    if tls is not None and base_url.startswith("tcp://"):
        base_url = "https://" + base_url[len("tcp://"):]
    try:
        client = docker.APIClient(
            base_url=base_url,
            version=connection.api_version,
            timeout=connection.timeout,
            tls=tls if tls is not None else False,
        )
        client.ping()
    except Exception as exc:  # DockerException, and requests' connection errors
        raise EngineError(
            "Cannot reach the Docker engine at %s: %s. Check that the engine runs and that this "
            "user may use it (try 'docker -H %s version' on the managed node), or point "
            "docker_host / DOCKER_HOST at the right engine." % (base_url, exc, base_url),
            docker_host=base_url,
        )
    return EngineAPI(client)
