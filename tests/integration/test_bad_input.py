# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wrong options, an unreachable engine and a missing helper image: one clear message, no change."""

from __future__ import annotations

import secrets

import pytest


@pytest.mark.parametrize("module", ["volume", "volume_info"])
def test_unknown_option_is_rejected_by_name(run_module, engine, module):
    name = engine.name("unknown-option")

    result = run_module(module, name=name, no_such_option="x")

    assert result.get("failed") is True, result
    assert "Unsupported parameters" in result["msg"]
    assert "no_such_option" in result["msg"]
    assert engine.inspect(name) is None


@pytest.mark.parametrize(
    "option, value, allowed",
    [
        ("state", "gone", "present, absent"),
        ("recreate", "always", "never, if_empty, migrate"),
        ("helper_pull", "sometimes", "missing, always, never"),
    ],
)
def test_invalid_choice_is_rejected_naming_the_allowed_values(run_module, engine, option, value, allowed):
    name = engine.name("bad-choice")

    result = run_module("volume", name=name, **{option: value})

    assert result.get("failed") is True, result
    assert "value of %s must be one of: %s, got: %s" % (option, allowed, value) in result["msg"]
    assert engine.inspect(name) is None


@pytest.mark.parametrize(
    "module, args",
    [
        ("volume", {}),
        ("volume", {"state": "absent"}),
        ("volume_info", {"size": True}),
    ],
)
def test_unreachable_engine_is_reported_with_its_address(run_module, engine, module, args):
    name = engine.name("no-engine")
    address = "unix:///nonexistent-%s.sock" % secrets.token_hex(4)

    result = run_module(module, name=name, docker_host=address, **args)

    assert result.get("failed") is True, result
    assert result["changed"] is False
    assert result["msg"].startswith("Cannot reach the Docker engine at %s:" % address)
    assert result["docker_host"] == address
    assert engine.inspect(name) is None


@pytest.mark.parametrize(
    "module, args",
    [
        ("volume", {"state": "absent"}),
        ("volume", {"labels": {"tier": "new"}, "recreate": "if_empty"}),
        ("volume_info", {"size": True}),
    ],
    ids=["absent", "recreate", "info-size"],
)
def test_missing_helper_image_with_pull_never_fails_naming_the_image_and_changes_nothing(
    run_module, engine, module, args
):
    name = engine.create_volume("no-helper-image", labels={"tier": "old"})
    before = engine.inspect(name)
    image = "persist-test/no-such-image:%s" % secrets.token_hex(4)

    result = run_module(module, name=name, helper_image=image, helper_pull="never", **args)

    assert result.get("failed") is True, result
    assert result["changed"] is False
    assert "The helper image %s is not on the engine and helper_pull is 'never'" % image in result["msg"]
    assert result["helper_image"] == image
    assert engine.inspect(name) == before


def test_invalid_volume_name_fails_in_check_mode_as_it_does_for_real(run_module, engine):
    # Docker allows [a-zA-Z0-9][a-zA-Z0-9_.-]+ for local volume names.
    name = engine.name("bad/name")

    real = run_module("volume", name=name)
    check = run_module("volume", check=True, name=name)

    assert real.get("failed") is True, real
    assert name in real["msg"] and "is not valid for the local driver" in real["msg"]
    assert check.get("failed") is True, "check mode predicted success for a name Docker refuses: %r" % check
    assert check["msg"] == real["msg"]
    assert check["changed"] is False
    assert engine.inspect(name) is None
