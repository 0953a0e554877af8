# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The layers of docs/architecture.md, checked against the imports of plugins/module_utils.

Each file belongs to one layer and imports only from the layers its row allows; no operation
imports another; the imports form no cycle; pure logic imports neither Ansible nor the
Docker SDK. A new file must be given its layer here (and in the table)."""

from __future__ import annotations

import ast
import pathlib

import pytest

MODULE_UTILS = pathlib.Path(__file__).resolve().parents[2] / "plugins" / "module_utils"
PREFIX = "ansible_collections.persist.docker.plugins.module_utils."

LAYERS = {
    "runners": {"_local_runner", "_runner"},
    "operations": {"_backup_ops", "_restore_ops", "_copy_ops", "_verify_ops", "_prune_ops", "_volume_ops",
                   "_volume_info_ops", "_offsite_ops", "_offsite_remote"},
    "shared data paths": {"_archive_check", "_archive_restore", "_copy_pipeline", "_migrate", "_swap", "_consistency",
                          "_quiesce", "_offsite_backend"},
    "engine and host access": {"_docker_api", "_engine", "_helper", "_ownership", "_fast_path", "_lock", "_hooks", "_probe",
                               "_connection", "_archive_read", "_encryption", "_offsite_ssh", "_offsite_s3"},
    "pure logic": {"_errors", "_options", "_tar_stream", "_tar_write", "_tree_digest", "_tree_compare", "_member_safety",
                   "_journal", "_storage", "_retention", "_archive_meta", "_copy_rules", "_container_policy", "_volume_spec",
                   "_text", "_usage", "_frames", "_verify_select", "_tar_commands", "_prefetch", "_offsite_target",
                   "_offsite_plan", "_offsite_parts", "_atomic", "_compression"},
}
# What each layer may import besides itself (operations: not even itself).
BELOW = {
    "runners": {"operations", "shared data paths", "engine and host access", "pure logic"},
    "operations": {"shared data paths", "engine and host access", "pure logic"},
    "shared data paths": {"engine and host access", "pure logic"},
    "engine and host access": {"pure logic"},
    "pure logic": set(),
}
LAYER_OF = dict((name, layer) for layer, names in LAYERS.items() for name in names)


def _imports():
    """{file: (names of module_utils it imports, top-level packages it imports)} of every file."""
    found = {}
    for path in sorted(MODULE_UTILS.glob("*.py")):
        ours, packages = set(), set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith(PREFIX):
                    ours.add(node.module[len(PREFIX):])
                else:
                    packages.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                packages.update(alias.name.split(".")[0] for alias in node.names)
        found[path.stem] = (ours, packages)
    return found


IMPORTS = _imports()


def test_every_file_has_a_layer():
    assert sorted(set(IMPORTS) - set(LAYER_OF) - {"__init__"}) == []
    assert sorted(set(LAYER_OF) - set(IMPORTS)) == [], "the table names files that do not exist"


@pytest.mark.parametrize("name", sorted(LAYER_OF))
def test_imports_go_down_the_layers(name):
    layer = LAYER_OF[name]
    allowed = BELOW[layer] | ({layer} if layer != "operations" else set())
    wrong = sorted("%s (%s)" % (other, LAYER_OF.get(other)) for other in IMPORTS[name][0] if LAYER_OF.get(other) not in allowed)
    assert wrong == [], "%s (%s) may not import %s" % (name, layer, ", ".join(wrong))


@pytest.mark.parametrize("name", sorted(LAYERS["pure logic"]))
def test_pure_logic_imports_neither_ansible_nor_docker(name):
    assert IMPORTS[name][1] & {"ansible", "docker", "requests", "boto3"} == set()


def test_the_imports_form_no_cycle():
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import cycle: %s" % " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        path.append(name)
        for other in sorted(IMPORTS.get(name, ((), ()))[0]):
            visit(other)
        path.pop()
        done.add(name)

    for name in sorted(IMPORTS):
        visit(name)
