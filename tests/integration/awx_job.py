# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An AWX/Tower job run, reproduced with ansible-runner as AWX prepares and starts one.

For each job AWX lays out a private data directory and hands it to ansible-runner:

* ``project/``: the project's checkout (here extensions/awx/project: the wrapper playbooks);
* ``requirements_collections/``: the collections of the project's collections/requirements.yml,
  installed at project sync (here from the tarball built from this checkout), on the
  collections path through ``env/envvars``;
* ``inventory/hosts``: an executable script that prints the inventory as JSON, with every
  host's variables under ``_meta``;
* ``env/extravars``: the job template's variables, the survey's answers (marked ``!unsafe``,
  as AWX marks what is given at launch) and the ``awx_*`` variables of the job;
* ``env/cmdline``: the job's limit and forks, and ``-e @FILE`` for the extra variables that
  credentials inject (also ``!unsafe``);
* ``env/envvars``: environment variables, the credentials' ``env`` injectors among them.

ansible-runner writes ``artifacts/<job id>/`` (``status``, ``rc``, ``job_events/``); the
``playbook_on_stats`` event carries the per-host counts and, as ``artifact_data``, what the
playbook stored with ``set_stats``: what a workflow passes to its next node as extra variables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_runner
import jinja2.sandbox
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
AWX_DIR = REPO_ROOT / "extensions" / "awx"
BIN = Path(sys.executable).parent


class Unsafe(str):
    """A value AWX writes with the !unsafe tag: Ansible never templates it."""


yaml.SafeDumper.add_representer(Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value)))


def build_collection(directory):
    """The collection tarball of this checkout (``ansible-galaxy collection build``)."""
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO_ROOT), "--output-path", str(directory),
                    "--force"], check=True, capture_output=True)
    (tarball,) = Path(directory).glob("persist-docker-*.tar.gz")
    return tarball


def install_collection(tarball, directory):
    """Install ``tarball`` into ``directory`` as a project sync does (Galaxy is not reachable
    here: community.docker, its dependency, comes with the ``ansible`` package)."""
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--force", "-p", str(directory), str(tarball)],
                   check=True, capture_output=True)
    return Path(directory)


# AWX versions differ in what they send for an optional survey question left blank: an empty
# string, null, or nothing at all (OMIT).
OMIT = object()


def survey_answers(name, blank="", **answers):
    """The extra variables AWX makes from the survey ``name`` (extensions/awx/surveys): the
    given answers, else each question's default, typed as AWX types them. An optional
    question without an answer or a default is sent as ``blank``."""
    spec = json.loads((AWX_DIR / "surveys" / ("%s.json" % name)).read_text())["spec"]
    unknown = set(answers) - {question["variable"] for question in spec}
    assert not unknown, "the %s survey has no question for %s" % (name, sorted(unknown))
    values = {}
    for question in spec:
        value = answers.get(question["variable"], question["default"])
        if value == "" and not question["required"]:
            if blank is not OMIT:
                values[question["variable"]] = blank
            continue
        assert value != "", "the %s survey requires %s" % (name, question["variable"])
        if question["type"] == "integer":
            value = int(value)
        values[question["variable"]] = Unsafe(value) if isinstance(value, str) else value
    return values


def inject(credential_type, inputs):
    """What a credential of ``credential_type`` (AWX's JSON) with ``inputs`` gives a job: its
    env and extra_vars injectors rendered in a sandbox, as AWX renders them."""
    declared = {field["id"] for field in credential_type["inputs"]["fields"]}
    assert set(inputs) <= declared, "inputs the credential type does not declare: %s" % sorted(set(inputs) - declared)
    missing = set(credential_type["inputs"].get("required", [])) - set(inputs)
    assert not missing, "required inputs missing: %s" % sorted(missing)
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    namespace = dict({field: "" for field in declared}, **inputs)
    injectors = credential_type.get("injectors", {})
    env = {key: environment.from_string(value).render(**namespace) for key, value in injectors.get("env", {}).items()}
    extra_vars = {key: Unsafe(environment.from_string(value).render(**namespace))
                  for key, value in injectors.get("extra_vars", {}).items()}
    return env, extra_vars


class AwxJob:
    """One job: ``run()`` lays out the private data directory in ``root`` and starts it."""

    def __init__(self, root, job_id, playbook, inventory, collections, limit=None, forks=4,
                 template_vars=None, survey=None, credentials=(), template_name=None):
        self.root = Path(root) / ("job-%d" % job_id)
        self.tmp = self.root / "tmp"
        self.job_id = job_id
        self.playbook = playbook
        self.inventory = inventory
        self.collections = collections
        self.limit = limit
        self.forks = forks
        self.template_vars = template_vars or {}
        self.survey = survey or {}
        self.credentials = credentials
        self.template_name = template_name or "persist.docker %s" % Path(playbook).stem
        self.runner = None

    def _write(self, relative, content, mode=0o600):
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        path.chmod(mode)
        return path

    def prepare(self):
        shutil.copytree(AWX_DIR / "project", self.root / "project")
        self.tmp.mkdir(mode=0o700)
        self._write("inventory/hosts", inventory_script(self.inventory), mode=0o700)
        awx = {"awx_job_id": self.job_id, "tower_job_id": self.job_id, "awx_job_launch_type": "manual",
               "awx_job_template_name": self.template_name, "awx_user_name": "admin", "awx_inventory_name": "fleet"}
        extravars = dict(self.template_vars, **self.survey)
        extravars.update(awx)
        self._write("env/extravars", yaml.safe_dump(extravars, default_flow_style=False))
        env = {
            # Only the collections the project sync installed (and those the ansible package ships).
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "ANSIBLE_FORCE_COLOR": "False",
            "JOB_ID": str(self.job_id),
            # A job's execution environment has a /tmp of its own: what the job leaves there
            # (tmp_files) is this job's, whatever other runs on the machine do meanwhile.
            "TMPDIR": str(self.tmp),
        }
        cmdline = ["--forks", str(self.forks)]
        if self.limit:
            cmdline += ["--limit", self.limit]
        for number, (credential_type, inputs) in enumerate(self.credentials):
            injected_env, injected_vars = inject(credential_type, inputs)
            env.update(injected_env)
            if injected_vars:
                path = self._write("env/credential_%d_extravars" % number, yaml.safe_dump(injected_vars, default_flow_style=False))
                cmdline += ["-e", "@%s" % path]
        self._write("env/envvars", json.dumps(env))
        self._write("env/cmdline", " ".join(cmdline))
        self._write("env/settings", json.dumps({"suppress_ansible_output": True}))
        return self

    def run(self):
        self.prepare()
        # The test session's settings (this checkout as the collection, its interpreter) must not
        # reach the job: AWX's jobs know only what the private data directory says.
        saved = {name: os.environ.pop(name) for name in ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_PYTHON_INTERPRETER") if name in os.environ}
        try:
            self.runner = ansible_runner.run(private_data_dir=str(self.root), playbook=self.playbook,
                                             ident=str(self.job_id), quiet=True)
        finally:
            os.environ.update(saved)
        return self

    @property
    def artifacts(self):
        return self.root / "artifacts" / str(self.job_id)

    @property
    def status(self):
        """What AWX shows as the job's status, from the artifacts (successful, failed ...)."""
        return (self.artifacts / "status").read_text().strip()

    def tmp_files(self, pattern):
        """The names matching ``pattern`` that the job left in its temporary directory."""
        return sorted(path.name for path in self.tmp.glob(pattern))

    def events(self):
        """The job events, as AWX stores them, in order."""
        found = []
        for path in (self.artifacts / "job_events").glob("*.json"):
            found.append(json.loads(path.read_text()))
        return sorted(found, key=lambda event: event["counter"])

    def stats(self):
        """The playbook_on_stats event's data: per-host counts and artifact_data."""
        [event] = [event for event in self.events() if event["event"] == "playbook_on_stats"]
        return event["event_data"]

    def failed_messages(self):
        return [event["event_data"]["res"].get("msg", "") for event in self.events()
                if event["event"] == "runner_on_failed" and not event["event_data"].get("ignore_errors")]

    def stdout(self):
        return (self.artifacts / "stdout").read_text()


def inventory_script(inventory):
    """An executable inventory script printing ``inventory`` (groups with host names, and
    every host's variables under _meta), as AWX writes one for a job."""
    data = {"_meta": {"hostvars": {}}, "all": {"children": sorted(inventory)}}
    for group, hosts in inventory.items():
        data[group] = {"hosts": sorted(hosts), "vars": {}}
        data["_meta"]["hostvars"].update(hosts)
    return "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\nimport json\nimport sys\n\nINVENTORY = %s\n\n" \
           "print(json.dumps({} if '--host' in sys.argv else INVENTORY))\n" % json.dumps(data, indent=1)


def credential_type(name):
    return json.loads((AWX_DIR / "credential_types" / ("%s.json" % name)).read_text())
