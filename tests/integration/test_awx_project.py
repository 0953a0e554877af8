# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What extensions/awx ships for an AWX/Tower project: wrapper playbooks, the collections
requirement, survey specifications and a credential type, as AWX's API takes them, each
asking only for what the playbooks use.

The survey rules are those AWX applies when a survey is saved (POST .../survey_spec/) or a
job launched: the keys of a question, its type, a default within min and max or among the
choices, one question per variable. (test_awx_job runs the jobs.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from awx_job import AWX_DIR, BIN, REPO_ROOT, build_collection, install_collection

PLAYBOOKS = ("backup", "restore", "verify", "migrate")
QUESTION_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
# The backup role's entry point each playbook maps persist_backup_* onto.
ENTRY_POINTS = {"backup": "main", "verify": "verify"}


def _survey(name):
    return json.loads((AWX_DIR / "surveys" / ("%s.json" % name)).read_text())


def _role_options(entry_point):
    specs = yaml.safe_load((REPO_ROOT / "roles/backup/meta/argument_specs.yml").read_text())["argument_specs"]
    return set(specs[entry_point]["options"])


def _invalid_question(question):
    """Why AWX would refuse ``question``, or None."""
    for key in ("question_name", "variable", "type", "required"):
        if key not in question:
            return "no %s" % key
    if question["type"] not in QUESTION_TYPES:
        return "type %s" % question["type"]
    if not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", question["variable"]):
        return "variable %r is not a valid variable name" % question["variable"]
    default = question.get("default", "")
    if question["type"] in ("multiplechoice", "multiselect"):
        choices = question.get("choices")
        if not isinstance(choices, list) or not choices:
            return "no choices"
        if default not in ("", None) and default not in choices:
            return "default %r is not a choice" % default
    if question["type"] == "integer":
        if not all(isinstance(question.get(key), int) for key in ("min", "max")):
            return "integer without min and max"
        if default != "" and not (isinstance(default, int) and question["min"] <= default <= question["max"]):
            return "default %r outside %s..%s" % (default, question["min"], question["max"])
    if question["type"] in ("text", "textarea"):
        if default and not question.get("min", 0) <= len(default) <= question.get("max", 1024):
            return "default %r outside the lengths %s..%s" % (default, question.get("min"), question.get("max"))
        if question["required"] is False and question.get("min", 0) > 0:
            return "an optional question with a minimum length cannot be left blank"
    return None


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_survey_is_valid_for_awx_and_asks_only_for_inputs_its_playbook_reads(name):
    survey = _survey(name)
    assert survey["name"] and isinstance(survey["description"], str) and survey["spec"]
    variables = [question["variable"] for question in survey["spec"]]
    assert len(variables) == len(set(variables)), "a variable asked twice"
    for question in survey["spec"]:
        assert _invalid_question(question) is None, (question["variable"], _invalid_question(question))
        # Secrets belong to credentials, never to surveys.
        assert question["type"] != "password"
    playbook = (REPO_ROOT / "playbooks" / ("%s.yml" % name)).read_text()
    for variable in variables:
        assert variable.startswith("persist_"), variable
        if variable.startswith("persist_backup_") and name in ENTRY_POINTS:
            assert variable[len("persist_"):] in _role_options(ENTRY_POINTS[name]), variable
        else:
            assert re.search(r"\b%s\b" % variable, playbook), "%s does not read %s" % (name, variable)


def test_surveys_leave_per_host_settings_to_the_inventory():
    """Extra variables beat inventory variables: a survey answer for the backup directory would
    give every host of every group the same one."""
    for name in PLAYBOOKS:
        assert not {"persist_backup_dir", "persist_docker_host", "persist_backup_textfile_dir"} & {
            question["variable"] for question in _survey(name)["spec"]}


def test_wrapper_playbooks_import_the_collections_playbooks_and_pass_a_syntax_check(tmp_path):
    for name in PLAYBOOKS:
        [play] = yaml.safe_load((AWX_DIR / "project" / ("%s.yml" % name)).read_text())
        assert play["ansible.builtin.import_playbook"] == "persist.docker.%s" % name
        assert (AWX_DIR / "surveys" / ("%s.json" % name)).is_file()
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[docker_hosts]\nfleet-1 ansible_connection=local\n")
    run = subprocess.run(
        [sys.executable, "-m", "ansible.cli.playbook", "--syntax-check", "-i", str(inventory)]
        + [str(AWX_DIR / "project" / ("%s.yml" % name)) for name in PLAYBOOKS],
        capture_output=True, text=True, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert run.returncode == 0, run.stdout + run.stderr


def test_project_requirements_name_this_collection_and_the_built_tarball_satisfies_them(tmp_path):
    from ansible.galaxy.dependency_resolution.versioning import meets_requirements

    path = AWX_DIR / "project" / "collections" / "requirements.yml"
    requirements = yaml.safe_load(path.read_text())
    version = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())["version"]
    [collection] = requirements["collections"]
    assert collection["name"] == "persist.docker" and meets_requirements(version, collection["version"])
    # A project sync finds them satisfied by the tarball built from this checkout (offline: a
    # requirement it had to fetch would fail here).
    collections = install_collection(build_collection(tmp_path / "dist"), tmp_path / "collections")
    run = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-r", str(path), "-p", str(collections)],
                         capture_output=True, text=True, check=False, env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections)))
    assert run.returncode == 0 and "Nothing to do" in run.stdout, run.stdout + run.stderr


def _read_by_playbooks(variable):
    """The playbook files (tasks included) that use ``variable`` outside a comment."""
    found = []
    for path in sorted((REPO_ROOT / "playbooks").rglob("*.yml")):
        code = [line.split("#")[0] for line in path.read_text().splitlines()]
        if any(re.search(r"\b%s\b" % variable, line) for line in code):
            found.append(path.name)
    return found


@pytest.mark.parametrize("name", ["persist_docker_identity", "persist_docker_offsite"])
def test_credential_type_declares_secret_inputs_and_injects_only_what_the_playbooks_read(name):
    credential_type = json.loads((AWX_DIR / "credential_types" / ("%s.json" % name)).read_text())
    assert credential_type["kind"] in ("cloud", "net")
    fields = {field["id"]: field for field in credential_type["inputs"]["fields"]}
    assert set(credential_type["inputs"]["required"]) <= set(fields)
    injectors = credential_type["injectors"]
    assert set(injectors) <= {"env", "extra_vars", "file"}
    used_fields = set()
    for variable, template in injectors.get("extra_vars", {}).items():
        used_fields.update(re.findall(r"{{\s*(\w+)\s*}}", template))
        assert _read_by_playbooks(variable), "no playbook reads %s" % variable
    assert used_fields == set(fields), "inputs no injector uses: %s" % (set(fields) - used_fields)
    for field in fields.values():
        assert field["type"] == "string" and field["label"]
        # Keys are secret: AWX stores them encrypted and never shows them again.
        assert field.get("secret") is True, field["id"]


def test_every_credential_type_shipped_is_tested():
    shipped = sorted(path.stem for path in (AWX_DIR / "credential_types").glob("*.json"))
    assert shipped == ["persist_docker_identity", "persist_docker_offsite"]
