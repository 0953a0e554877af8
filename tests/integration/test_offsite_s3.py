# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""persist.docker.backup_offsite (and backup_info / backup_verify with target) against moto in
server mode on 127.0.0.1 (offsite_servers.MotoServer), the S3 API through boto3.

The tests check the bucket with their own boto3 client: objects, sizes, stored metadata and
the ETags S3 computed, against the local files.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os

import pytest

import adhoc_process
from offsite_servers import MotoServer, names, prediction, real_backup, running, sha256_of, shared_backup, snapshot
from test_backup_prune import make_backup

MIB = 1 << 20


@pytest.fixture(scope="module")
def moto():
    with running(MotoServer()) as server:
        yield server


@pytest.fixture
def small_archive(run_module, module_engine, module_backup_dir):
    """A real archive of a few KiB."""
    return shared_backup(run_module, module_engine, module_backup_dir, "s3-small")


@pytest.fixture
def multipart_archive(run_module, module_engine, module_backup_dir):
    """A real archive of about 22 MB: five parts of 5 MiB."""
    return shared_backup(run_module, module_engine, module_backup_dir, "s3-parts", megabytes=22)


def day(month, number, hour=3):
    return datetime.datetime(2026, month, number, hour, tzinfo=datetime.timezone.utc)


def expected_etag(path, part_size):
    """The ETag S3 must give a file uploaded in parts of ``part_size`` (0: one request)."""
    with open(path, "rb") as handle:
        data = handle.read()
    if not part_size:
        return hashlib.md5(data).hexdigest()
    digests = [hashlib.md5(data[offset:offset + part_size]).digest() for offset in range(0, len(data), part_size)]
    return "%s-%d" % (hashlib.md5(b"".join(digests)).hexdigest(), len(digests))


def objects(moto, bucket, prefix=""):
    listed = moto.client().list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return dict((item["Key"][len(prefix):], item) for item in listed)


def test_check_mode_predicts_the_uploads_a_real_run_makes_checked_by_size_sha256_and_etag_and_a_second_run_uploads_nothing(
        run_module, engine, backup_dir, moto, small_archive, multipart_archive):
    volume = engine.name("web")
    made = [make_backup(small_archive, backup_dir, volume, day(10, n)) for n in (1, 2)]
    big = make_backup(multipart_archive, backup_dir, engine.name("db"), day(10, 3))
    local = snapshot(backup_dir)
    bucket = moto.bucket()
    target = moto.target(bucket, prefix="web1", multipart_threshold=5, part_size=5, storage_class="STANDARD_IA")
    args = dict(path=str(backup_dir), select="missing", targets=[target])

    check = run_module("backup_offsite", check=True, diff=True, **args)

    assert not check.get("failed"), check
    assert check["changed"] is True and names(check["targets"][0]["sent"]) == sorted(made + [big])
    assert objects(moto, bucket) == {}, "check mode uploaded something"

    real = run_module("backup_offsite", diff=True, **args)

    assert not real.get("failed"), real
    assert prediction(real) == prediction(check) and real["diff"] == check["diff"]
    assert real["targets"][0]["target"] == "s3://%s/web1/ at %s" % (bucket, moto.endpoint)
    there = objects(moto, bucket, "web1/")
    assert sorted(there) == sorted(made + [big] + [name + ".json" for name in made + [big]])
    client = moto.client()
    for name in made + [big]:
        head = client.head_object(Bucket=bucket, Key="web1/" + name)
        part_size = 5 * MIB if name == big else 0
        assert head["ETag"].strip('"') == expected_etag(os.path.join(str(backup_dir), name), part_size)
        assert head["ContentLength"] == os.path.getsize(os.path.join(str(backup_dir), name))
        assert head["Metadata"]["persist-sha256"] == local[name] and head["StorageClass"] == "STANDARD_IA"
        sidecar = client.get_object(Bucket=bucket, Key="web1/%s.json" % name)
        assert sidecar["Body"].read() == open(os.path.join(str(backup_dir), name + ".json"), "rb").read()
        assert sidecar["Metadata"]["persist-archive-etag"] == head["ETag"].strip('"')
    sent = dict((item["archive"], item) for item in real["targets"][0]["sent"])
    assert sent[big]["checks"] == ["size", "sha256 stored with the object", "ETag predicted from the parts sent"]
    assert expected_etag(os.path.join(str(backup_dir), big), 5 * MIB).endswith("-5")
    assert all(item["verified"] and item["transferred_bytes"] == item["size"] for item in sent.values())
    assert snapshot(backup_dir) == local

    again_check = run_module("backup_offsite", check=True, **args)
    again = run_module("backup_offsite", **args)

    for result in (again_check, again):
        assert not result.get("failed") and result["changed"] is False, result
        assert names(result["targets"][0]["present"]) == sorted(made + [big])


def test_retention_in_the_bucket_keeps_what_the_rules_keep_per_volume_and_deletes_sidecars_with_their_archives(
        run_module, engine, backup_dir, moto, small_archive):
    first, second = engine.name("one"), engine.name("two")
    ones = [make_backup(small_archive, backup_dir, first, when) for when in (day(9, 1), day(9, 20), day(10, 1), day(10, 15), day(10, 16))]
    twos = [make_backup(small_archive, backup_dir, second, when) for when in (day(8, 1), day(10, 10))]
    bucket = moto.bucket()
    args = dict(path=str(backup_dir), select="missing", targets=[moto.target(bucket)])
    assert run_module("backup_offsite", **args)["totals"]["sent"] == 7
    policy = dict(keep_last=1, keep_monthly=2)

    check = run_module("backup_offsite", check=True, **dict(args, **policy))
    real = run_module("backup_offsite", **dict(args, **policy))

    assert not real.get("failed"), real
    assert prediction(real) == prediction(check)
    kept = dict((item["archive"], item["reasons"]) for item in real["targets"][0]["kept"])
    assert kept == {
        ones[4]: ["newest", "last 1", "monthly 2026-10"],
        ones[1]: ["monthly 2026-09"],
        twos[1]: ["newest", "last 1", "monthly 2026-10"],
        twos[0]: ["monthly 2026-08"],
    }
    assert names(real["targets"][0]["deleted"]) == sorted([ones[0], ones[2], ones[3]])
    assert sorted(objects(moto, bucket)) == sorted(list(kept) + [name + ".json" for name in kept])


def test_info_and_verify_read_the_bucket_and_a_replaced_object_is_found_by_etag_and_full_read_and_sent_again(
        run_module, engine, backup_dir, moto, multipart_archive):
    name = make_backup(multipart_archive, backup_dir, engine.name("swap"), day(10, 5))
    volume = name.rsplit("-", 1)[0]
    bucket = moto.bucket()
    target = moto.target(bucket, prefix="host", multipart_threshold=5, part_size=5)
    assert run_module("backup_offsite", path=str(backup_dir), targets=[target])["totals"]["sent"] == 1
    client = moto.client()
    client.put_object(Bucket=bucket, Key="host/%s-20261020T000000Z.tar.zst" % volume, Body=b"unfinished")

    info = run_module("backup_info", target=target)

    assert not info.get("failed"), info
    assert [(item["path"], item["status"]) for item in info["backups"]] == [
        ("s3://%s/host/%s" % (bucket, name), "complete"), ("s3://%s/host/%s-20261020T000000Z.tar.zst" % (bucket, volume), "incomplete")]
    assert info["latest"][volume]["sha256"] == sha256_of(os.path.join(str(backup_dir), name))
    for level in ("quick", "full"):
        passed = run_module("backup_verify", target=dict(target, verify=level), volume=volume)
        assert not passed.get("failed"), passed
        checks = passed["verdicts"][0]["checks"]
        assert checks["remote"] == "passed"
        assert checks["tree_digest"] == ("passed" if level == "full" else "skipped")

    # The object replaced by another of the same size, its metadata copied: only the ETag and the bytes tell.
    original = client.head_object(Bucket=bucket, Key="host/" + name)
    client.put_object(Bucket=bucket, Key="host/" + name, Body=os.urandom(original["ContentLength"]), Metadata=original["Metadata"])

    quick = run_module("backup_verify", target=target, volume=volume)
    assert quick.get("failed") is True and quick["verdicts"][0]["checks"]["remote"] == "failed", quick
    assert "its ETag is" in quick["msg"] and name in quick["msg"]
    unchecked = run_module("backup_verify", target=dict(target, verify="full", etag_check=False), volume=volume)
    assert unchecked.get("failed") is True, unchecked
    assert unchecked["verdicts"][0]["checks"]["remote"] == "passed", "without the ETag check, size and stored sha256 agree"
    assert unchecked["verdicts"][0]["checks"]["tree_digest"] == "failed" or unchecked["verdicts"][0]["checks"]["sha256"] == "failed"

    repair = run_module("backup_offsite", path=str(backup_dir), targets=[target])

    assert not repair.get("failed"), repair
    assert names(repair["targets"][0]["sent"]) == [name]
    assert repair["targets"][0]["sent"][0]["reason"].startswith("the copy on the target failed a check: its ETag is")
    assert client.head_object(Bucket=bucket, Key="host/" + name)["ETag"].strip('"') == expected_etag(os.path.join(str(backup_dir), name), 5 * MIB)
    assert not run_module("backup_verify", target=dict(target, verify="full"), volume=volume).get("failed")


def test_an_upload_killed_half_way_is_resumed_part_by_part_by_the_next_run(run_module, engine, backup_dir, moto):
    archive = real_backup(run_module, engine, backup_dir, "s3-kill", megabytes=90)
    name = os.path.basename(archive)
    bucket = moto.bucket()
    client = moto.client()
    args = dict(path=str(backup_dir), targets=[moto.target(bucket, multipart_threshold=5, part_size=5)])

    def parts_there():
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return uploads and len(client.list_parts(Bucket=bucket, Key=name, UploadId=uploads[0]["UploadId"]).get("Parts", [])) >= 3

    process = adhoc_process.start("backup_offsite", args)
    try:
        assert adhoc_process.wait_until(parts_there, timeout=120, interval=0.05), "the upload never started"
    finally:
        adhoc_process.kill_tree(process)
    assert sorted(objects(moto, bucket)) == [], "an object appeared for an upload that did not finish"
    assert sha256_of(archive) == json.load(open(archive + ".json"))["archive"]["sha256"]

    resumed = run_module("backup_offsite", **args)

    assert not resumed.get("failed"), resumed
    item = resumed["targets"][0]["sent"][0]
    assert item["resumed_from"] >= 3 * 5 * MIB and item["resumed_from"] % (5 * MIB) == 0
    assert item["transferred_bytes"] == item["size"] - item["resumed_from"]
    head = client.head_object(Bucket=bucket, Key=name)
    assert head["ETag"].strip('"') == expected_etag(archive, 5 * MIB)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.fixture
def moto_with_auth():
    with running(MotoServer(auth=True)) as server:
        yield server


def test_a_wrong_secret_fails_clearly_without_showing_it_and_the_next_run_with_the_right_one_uploads(
        run_module, engine, backup_dir, moto_with_auth, small_archive):
    name = make_backup(small_archive, backup_dir, engine.name("creds"), day(10, 1))
    bucket = moto_with_auth.bucket()
    wrong = "Wr0ngSecretThatMustNotBeShown"

    failed = run_module("backup_offsite", path=str(backup_dir), targets=[moto_with_auth.target(bucket, secret_key=wrong)])
    info = run_module("backup_info", target=moto_with_auth.target(bucket, secret_key=wrong))

    assert failed.get("failed") is True, failed
    assert "SignatureDoesNotMatch" in failed["msg"] and "Check secret_key" in failed["msg"]
    assert failed["errors"][0]["target"] == "s3://%s/ at %s" % (bucket, moto_with_auth.endpoint)
    assert info.get("failed") is True and "Check secret_key" in info["msg"], info
    for result in (failed, info):
        text = json.dumps(result)
        assert wrong not in text and moto_with_auth.secret_key not in text and moto_with_auth.access_key not in text
    assert objects(moto_with_auth, bucket) == {}

    right = run_module("backup_offsite", path=str(backup_dir), targets=[moto_with_auth.target(bucket)])

    assert not right.get("failed") and names(right["targets"][0]["sent"]) == [name], right
    assert moto_with_auth.secret_key not in json.dumps(right)
