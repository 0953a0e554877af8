# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encryption at rest: a backup encrypted as it is written (age), readable by nobody without
a matching key, restored and verified with it, and opened by hand with Debian's age."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from pyrage import x25519

from volume_trees import capture, differences, seed_target, snapshot, write_file

MARKER = b"plaintext-marker-6c1f0a9e" * 40


@pytest.fixture(scope="module")
def age_key(tmp_path_factory):
    """An age identity file and its public key, as age-keygen writes them."""
    identity = x25519.Identity.generate()
    path = tmp_path_factory.mktemp("age") / "key.txt"
    path.write_text("# created for the test\n# public key: %s\n%s\n" % (identity.to_public(), identity))
    path.chmod(0o600)
    return str(path), str(identity.to_public())


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    """An OpenSSH ed25519 key pair (private key text, public key line)."""
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "backup test", "-f", str(path)], check=True)
    return path.read_text(), (path.parent / "id_ed25519.pub").read_text().strip()


def _source(engine, suffix):
    name = engine.create_volume(suffix)
    root = engine.mountpoint(name)
    seed_target(root)
    write_file(root / "secret.txt", MARKER)
    write_file(root / "random.bin", os.urandom(300000))
    return name, root


def test_an_encrypted_backup_holds_no_plaintext_and_restores_with_its_key(run_module, engine, backup_dir, age_key):
    key_file, recipient = age_key
    name, root = _source(engine, "encrypted")

    backup = run_module("volume_backup", volume=name, dest=str(backup_dir), encrypt_recipients=[recipient])

    assert backup["changed"] is True, backup
    path = backup["archive"]["path"]
    assert path.endswith(".tar.zst.age") and backup["archive"]["encrypted"] is True
    assert backup["archive"]["recipients"] == [recipient]
    with open(path, "rb") as handle:
        content = handle.read()
    assert content.startswith(b"age-encryption.org/v1\n")
    assert MARKER[:25] not in content
    with open(path + ".json") as handle:
        sidecar = json.load(handle)
    assert sidecar["encryption"] == {"format": "age", "recipients": [recipient]}
    assert MARKER[:25].decode() not in json.dumps(sidecar)
    target = engine.name("encrypted-restored")

    predicted = run_module("volume_restore", check=True, volume=target, src=path, decrypt_identity_file=key_file)
    restored = run_module("volume_restore", volume=target, src=path, decrypt_identity_file=key_file)
    again = run_module("volume_restore", volume=target, src=path, decrypt_identity_file=key_file)

    assert predicted["changed"] is True and predicted["verified"] is True, predicted
    assert restored["changed"] is True, restored
    assert differences(snapshot(root), snapshot(engine.mountpoint(target))) == []
    assert again["changed"] is False, again
    unchanged = run_module("volume_backup", volume=name, dest=str(backup_dir), encrypt_recipients=[recipient])
    assert unchanged["changed"] is False, unchanged


def test_without_or_with_a_wrong_identity_the_restore_fails_before_anything_is_stopped_or_written(run_module, engine, backup_dir, age_key, tmp_path):
    _key_file, recipient = age_key
    name, _root = _source(engine, "locked")
    path = run_module("volume_backup", volume=name, dest=str(backup_dir), encrypt_recipients=[recipient])["archive"]["path"]
    target = engine.create_volume("locked-target")
    seed_target(engine.mountpoint(target))
    before = capture(engine.mountpoint(target))
    app = engine.container("app", target, state="running")
    app.reload()
    started_at = app.attrs["State"]["StartedAt"]
    wrong = tmp_path / "other.txt"
    wrong.write_text("%s\n" % x25519.Identity.generate())

    missing = run_module("volume_restore", volume=target, src=path, containers="stop")
    mismatched = run_module("volume_restore", volume=target, src=path, containers="stop", decrypt_identity_file=str(wrong))
    garbage = run_module("volume_restore", volume=target, src=path, containers="stop", decrypt_identity="not a key")

    assert missing.get("failed") is True and missing["check"] == "decrypt", missing
    assert "is encrypted (age, to %s); give decrypt_identity_file" % recipient in missing["msg"]
    assert mismatched.get("failed") is True and mismatched["check"] == "decrypt", mismatched
    assert "cannot be decrypted with the identity given" in mismatched["msg"]
    assert "The target volume was not touched" in mismatched["msg"]
    assert garbage.get("failed") is True and "not an age secret key" in garbage["msg"], garbage
    assert "not a key" not in json.dumps(garbage), "a given identity is never echoed"
    after = capture(engine.mountpoint(target))
    assert differences(before["tree"], after["tree"]) == [] and after["root"] == before["root"]
    app.reload()
    assert (app.status, app.attrs["State"]["StartedAt"]) == ("running", started_at)


def test_an_ssh_key_is_a_recipient_and_its_private_key_opens_the_archive(run_module, engine, backup_dir, ssh_key):
    private, public = ssh_key
    name, root = _source(engine, "ssh-encrypted")
    path = run_module("volume_backup", volume=name, dest=str(backup_dir), encrypt_recipients=[public])["archive"]["path"]
    target = engine.name("ssh-restored")

    restored = run_module("volume_restore", volume=target, src=path, decrypt_identity=private)

    assert restored["changed"] is True, restored
    assert differences(snapshot(root), snapshot(engine.mountpoint(target))) == []
    assert "PRIVATE KEY" not in json.dumps(restored)


def test_a_recipient_that_is_not_a_key_fails_before_anything_is_written(run_module, engine, backup_dir):
    name, _root = _source(engine, "bad-recipient")

    refused = run_module("volume_backup", volume=name, dest=str(backup_dir / "b"), encrypt_recipients=["age1notakey"])

    assert refused.get("failed") is True, refused
    assert "encrypt_recipients holds 'age1notakey', which is neither an age public key" in refused["msg"]
    assert not (backup_dir / "b").exists()


def test_an_encrypted_archive_opens_by_hand_with_debians_age(engine, backup_dir, age_key, tmp_path, run_module):
    """The user's escape hatch, exactly as the docs write it."""
    key_file, recipient = age_key
    name, root = _source(engine, "by-hand")
    path = run_module("volume_backup", volume=name, dest=str(backup_dir), encrypt_recipients=[recipient])["archive"]["path"]
    out = tmp_path / "out"
    out.mkdir()

    subprocess.run(
        "age -d -i %s %s | zstd -d | tar -x -C %s --numeric-owner --xattrs --xattrs-include='*' --acls -p" % (key_file, path, out),
        shell=True, check=True,
    )

    assert differences(snapshot(root), snapshot(out)) == []


def test_verify_reads_an_encrypted_archive_in_full_only_with_its_identity(run_module, engine, backup_dir, age_key):
    key_file, recipient = age_key
    name, _root = _source(engine, "verified")
    path = run_module("volume_backup", volume=name, dest=str(backup_dir), encrypt_recipients=[recipient])["archive"]["path"]

    blind = run_module("backup_verify", path=path)
    full = run_module("backup_verify", path=path, decrypt_identity_file=key_file, test_restore=True)

    assert not blind.get("failed"), blind
    [verdict] = blind["verdicts"]
    assert verdict["checks"]["sha256"] == "passed"
    assert verdict["checks"]["tree_digest"] == verdict["checks"]["safety"] == "skipped"
    assert "encrypted and no decrypt_identity" in verdict["skipped"]["tree_digest"]
    assert not full.get("failed"), full
    assert set(full["verdicts"][0]["checks"].values()) <= {"passed", "skipped"}
    assert full["verdicts"][0]["checks"]["test_restore"] == "passed"
    listed = run_module("backup_info", path=str(backup_dir))
    assert [(item["encrypted"], item["recipients"]) for item in listed["backups"]] == [(True, [recipient])]

    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        handle.write(b"\0" * 8)
    spoiled = run_module("backup_verify", path=path)
    assert spoiled.get("failed") is True and spoiled["verdicts"][0]["checks"]["sha256"] == "failed", spoiled


def test_rotating_the_keys_makes_the_next_backup_even_of_an_unchanged_volume(run_module, engine, backup_dir, age_key):
    _key_file, recipient = age_key
    name, _root = _source(engine, "rotated")
    first = run_module("volume_backup", volume=name, dest=str(backup_dir), encrypt_recipients=[recipient])
    new_recipient = str(x25519.Identity.generate().to_public())

    rotated = run_module("volume_backup", volume=name, dest=str(backup_dir), encrypt_recipients=[new_recipient, recipient])
    plain = run_module("volume_backup", volume=name, dest=str(backup_dir))

    assert first["changed"] is True and rotated["changed"] is True, rotated
    assert sorted(rotated["archive"]["recipients"]) == sorted([new_recipient, recipient])
    assert plain["changed"] is True and plain["archive"]["path"].endswith(".tar.zst"), plain
