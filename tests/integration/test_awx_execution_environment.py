# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment: what ansible-builder reads from the collection, and the build
context of extensions/awx/execution-environment.yml, all offline.

``ansible-builder build`` needs a container registry (for the base image) and a package index,
neither of which this machine has; the steps before it are checked here: introspect on the
installed tarball, ``create``, and the build's own introspection step (the context's
scripts/introspect.py over the collections its galaxy stage installs), whose output is what
the image gets. Which of the system packages an EL 9 image (the base of AWX's execution
environments) and a Debian one would install is read with bindep, as the build reads it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from bindep.depends import Depends

from awx_job import AWX_DIR, BIN, REPO_ROOT, build_collection, install_collection

PYTHON = {"docker>=5.0.0", "zstandard>=0.19.0", "pyrage>=1.2.0", "boto3>=1.26.0"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ee")
    return install_collection(build_collection(directory / "dist"), directory / "collections")


def _requirements(lines):
    """The requirement of each line, without its '# from collection ...' comment."""
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def test_introspect_of_the_installed_tarball_lists_every_python_and_system_dependency(installed):
    run = subprocess.run([str(BIN / "ansible-builder"), "introspect", str(installed)], capture_output=True, text=True, check=True)
    found = yaml.safe_load(run.stdout)

    assert _requirements(found["python"]) == PYTHON
    assert _requirements(found["system"]) == {
        "openssh-client [platform:dpkg]", "openssh-clients [platform:rpm]", "rsync [platform:dpkg platform:rpm]",
        "zstd [platform:dpkg platform:rpm]", "age [platform:dpkg]",
    }
    assert all(line.endswith("# from collection persist.docker") for line in found["python"] + found["system"])


def test_create_makes_a_build_context_that_installs_the_collection_and_every_dependency_offline(installed, tmp_path):
    context = tmp_path / "context"
    subprocess.run([str(BIN / "ansible-builder"), "create", "-f", str(AWX_DIR / "execution-environment.yml"), "-c", str(context),
                    "--output-filename", "Containerfile"],
                   capture_output=True, text=True, check=True, cwd=str(tmp_path))

    containerfile = (context / "Containerfile").read_text()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    version = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"]
    [collection] = galaxy["collections"]
    assert collection["name"] == "persist.docker"
    from ansible.galaxy.dependency_resolution.versioning import meets_requirements

    assert meets_requirements(version, collection["version"]), "the EE asks for %s, this is %s" % (collection["version"], version)
    # The stages that turn the collection into the image: galaxy installs it, the builder stage
    # introspects it and the final stage installs what it found.
    for step in ("ARG EE_BASE_IMAGE=", "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml",
                 "introspect.py introspect --write-bindep=/tmp/src/bindep.txt --write-pip=/tmp/src/requirements.txt",
                 "/output/scripts/install-from-bindep", 'ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"'):
        assert step in containerfile, step

    # The build's introspection step, run here on the tarball its galaxy stage would install.
    pip, bindep = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect", str(installed),
                    "--write-pip", str(pip), "--write-bindep", str(bindep)], capture_output=True, text=True, check=True)
    assert _requirements(pip.read_text().splitlines()) == PYTHON
    rules = Depends(bindep.read_text())

    def packages(*profiles):
        return {rule[0] for rule in rules.active_rules(list(profiles))}

    # An EL 9 image gets the OpenSSH client, rsync and zstd; age only where the distribution has
    # it (Debian; on EL 9 it is in EPEL, which docs/awx.md says how to add).
    assert packages("platform:rpm", "platform:redhat", "platform:centos") == {"openssh-clients", "rsync", "zstd"}
    assert packages("platform:dpkg", "platform:debian") == {"openssh-client", "rsync", "zstd", "age"}
