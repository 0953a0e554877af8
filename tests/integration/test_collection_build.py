# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection builds into a tarball that installs offline, and the installed modules run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(*command, **kwargs):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def test_built_tarball_installs_into_a_fresh_path_and_its_modules_run(tmp_path, engine):
    bindir = Path(sys.executable).parent
    run(str(bindir / "ansible-galaxy"), "collection", "build", str(REPO_ROOT), "--output-path", str(tmp_path / "dist"))
    (tarball,) = (tmp_path / "dist").glob("persist-docker-*.tar.gz")
    with tarfile.open(tarball) as built:
        names = set(built.getnames())
    assert "plugins/modules/volume_backup.py" in names and "MANIFEST.json" in names
    assert not any(name.startswith((".ci", "tests/output")) or "__pycache__" in name for name in names)

    installed = tmp_path / "collections"
    run(str(bindir / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force", str(tarball), "-p", str(installed))
    assert (installed / "ansible_collections/persist/docker/plugins/modules/volume.py").is_file()

    name = engine.name("built")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    result = run(
        str(bindir / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
        "-e", "ansible_python_interpreter=%s" % sys.executable,
        "-m", "persist.docker.volume", "-a", json.dumps({"name": name}),
        env=env, cwd=str(tmp_path),
    )
    outcome = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert outcome["changed"] is True and outcome["volume"]["name"] == name
    assert engine.inspect(name) is not None
