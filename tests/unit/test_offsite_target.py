"""Off-host copies, pure logic: S3 parts and ETags, target validation, names and masking."""

import hashlib
import io
import os

import pytest

from ansible_collections.persist.docker.plugins.module_utils._errors import OffsiteError
from ansible_collections.persist.docker.plugins.module_utils._offsite_parts import (
    FileHashes,
    FileSlice,
    part_ranges,
    part_size_for,
    plain_etag,
    predicted_etag,
)
from ansible_collections.persist.docker.plugins.module_utils._offsite_target import (
    MASK,
    MIB,
    Masker,
    check_target,
    explain_s3_failure,
    explain_ssh_failure,
    masker_for,
    s3_prefix,
    target_name,
    target_options,
)


def defaults(**given):
    target = dict((option, spec.get("default")) for option, spec in target_options().items())
    target.update(given)
    return target


# S3 parts and ETags --------------------------------------------------------------------------

def test_small_archives_go_in_one_request_and_large_ones_in_parts_that_grow_past_ten_thousand():
    assert part_size_for(64 * MIB, 64, 64) == 0
    assert part_size_for(64 * MIB + 1, 64, 8) == 8 * MIB
    # 1 TiB in 8 MiB parts would be 131072 parts: parts grow to whole MiB so that 10,000 do.
    size = 1 << 40
    part = part_size_for(size, 64, 8)
    assert part % MIB == 0 and -(-size // part) <= 10000 and -(-size // (part - MIB)) > 10000


def test_part_ranges_cover_the_file_exactly_once():
    assert part_ranges(12, 5) == [(1, 0, 5), (2, 5, 5), (3, 10, 2)]
    assert part_ranges(10, 5) == [(1, 0, 5), (2, 5, 5)]
    assert part_ranges(7, 0) == [(1, 0, 7)]
    assert part_ranges(0, 5) == [(1, 0, 0)]


def test_the_predicted_etag_is_the_md5_for_one_request_and_the_md5_of_part_md5s_with_a_count_for_multipart():
    data = os.urandom(11 * 1000)
    hashes = FileHashes(len(data), 5000).hash_all(io.BytesIO(data))
    md5s = [hashlib.md5(data[offset:offset + 5000]).digest() for offset in (0, 5000, 10000)]
    assert hashes.etag() == hashlib.md5(b"".join(md5s)).hexdigest() + "-3"
    assert hashes.sha256 == hashlib.sha256(data).hexdigest()
    assert FileHashes(len(data), 0).hash_all(io.BytesIO(data)).etag() == hashlib.md5(data).hexdigest()
    # A one-part multipart upload still carries its count.
    assert predicted_etag([hashlib.md5(b"x").digest()], True) == hashlib.md5(hashlib.md5(b"x").digest()).hexdigest() + "-1"
    assert plain_etag('"abc-2"') == "abc-2"


def test_a_file_that_shrank_while_it_was_hashed_is_an_error_not_a_short_part():
    with pytest.raises(IOError, match="ended 5 bytes early"):
        FileHashes(15, 10).hash_all(io.BytesIO(b"0123456789"))


def test_a_file_slice_reads_seeks_and_measures_only_its_range():
    backing = io.BytesIO(bytes(range(100)))
    part = FileSlice(backing, 10, 20)
    assert len(part) == 20
    assert part.read(5) == bytes(range(10, 15))
    assert part.read() == bytes(range(15, 30))
    assert part.read() == b""
    part.seek(-3, io.SEEK_END)
    assert part.tell() == 17 and part.read(10) == bytes(range(27, 30))
    part.seek(0)
    buffer = bytearray(8)
    assert part.readinto(buffer) == 8 and bytes(buffer) == bytes(range(10, 18))


# Targets ---------------------------------------------------------------------------------------

def test_an_ssh_target_needs_host_and_path_and_refuses_s3_options_and_unsafe_paths():
    with pytest.raises(OffsiteError) as caught:
        check_target(defaults(type="ssh", bucket="b", path="/srv/x; rm -rf /"), index=2)
    message = caught.value.msg
    assert "targets[2].host is required" in message
    assert "targets[2].bucket is an option of s3 targets" in message
    assert "characters that the remote shell would interpret" in message
    check_target(defaults(type="ssh", host="backup.example.com", user="backup", path="/srv/offsite/web1"))


def test_an_ssh_target_takes_its_host_key_one_way_and_as_a_key_line():
    with pytest.raises(OffsiteError, match="exclude each other"):
        check_target(defaults(type="ssh", host="h", path="p", host_key="ssh-ed25519 AAAA", known_hosts="/k"))
    with pytest.raises(OffsiteError, match="public key line"):
        check_target(defaults(type="ssh", host="h", path="p", host_key="AAAA"))


def test_an_s3_target_needs_a_bucket_both_halves_of_a_key_and_parts_s3_accepts():
    with pytest.raises(OffsiteError) as caught:
        check_target(defaults(type="s3", access_key="AKIA", part_size=1, host="h"))
    message = caught.value.msg
    assert "target.bucket is required" in message
    assert "access_key and target.secret_key go together" in message
    assert "target.part_size must be at least 5" in message
    assert "target.host is an option of ssh targets" in message
    check_target(defaults(type="s3", bucket="b"))


def test_targets_are_named_by_urls_without_credentials():
    assert target_name(defaults(type="ssh", host="backup.example.com", user="backup", path="/srv/offsite")) == "ssh://backup@backup.example.com:22/srv/offsite"
    assert target_name(defaults(type="ssh", host="::1", port=2222, path="offsite")) == "ssh://[::1]:2222/~/offsite"
    name = target_name(defaults(type="s3", bucket="b", prefix="/web1", endpoint_url="https://user:hunter2@minio.example.com", secret_key="s"))
    assert name == "s3://b/web1/ at https://%s@minio.example.com" % MASK
    assert s3_prefix("") == "" and s3_prefix("a/b") == "a/b/" and s3_prefix("/a/") == "a/"


def test_credentials_are_masked_in_any_text_also_inside_longer_words():
    masker = masker_for([defaults(type="s3", access_key="AKIAEXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG", session_token="tok3n")])
    text = masker.mask("key AKIAEXAMPLE secret wJalrXUtnFEMI/K7MDENG token=tok3n url http://u:p@host/x")
    assert "AKIAEXAMPLE" not in text and "wJalrXUtnFEMI" not in text and "tok3n" not in text and "u:p@" not in text
    assert text.count(MASK) == 4
    assert Masker().mask(None) is None


def test_failures_are_explained_with_what_to_do_and_the_tools_own_words():
    message = explain_ssh_failure("rsync: write failed: No space left on device (28)\nrsync error: code 11", 11, "ssh://h/p", "sending a")
    assert message.startswith("sending a on ssh://h/p failed (exit 11): the target's file system is full.")
    assert "No space left on device (28)" in message
    assert "refused the login" in explain_ssh_failure("root@h: Permission denied (publickey).", 255, "t", "x")
    assert "host key" in explain_ssh_failure("Host key verification failed.", 255, "t", "x")
    assert "run the task again" in explain_ssh_failure("", 1, "t", "x")
    assert "Check secret_key" in explain_s3_failure("SignatureDoesNotMatch", "The request signature ...", "s3://b/", "listing")
    assert "Create it first" in explain_s3_failure("NoSuchBucket", "no", "s3://b/", "listing")


def test_an_s3_target_without_boto3_fails_with_the_install_hint(monkeypatch):
    from ansible_collections.persist.docker.plugins.module_utils import _offsite_s3
    from ansible_collections.persist.docker.plugins.module_utils._errors import DependencyError

    monkeypatch.setattr(_offsite_s3, "boto3", None)
    with pytest.raises(DependencyError, match=r"pip install boto3.*python3-boto3"):
        _offsite_s3.S3Target(defaults(type="s3", bucket="b"), Masker())
