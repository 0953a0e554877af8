# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""S3-compatible object storage as an off-host target, through boto3, from the Docker host.

An archive goes up in one request or, above the multipart threshold, in parts streamed from
the file (memory stays flat: a part is never held whole). Each request carries the MD5 of
its bytes, so the store refuses a part that arrived damaged; the archive's sha256 (from its
sidecar, checked against the file while it is read) is stored with the object. Before the
copy counts, the object's size, stored sha256 and ETag must match what was sent (the ETag
the store must compute from these parts is predicted locally, _offsite_parts); then the
sidecar is uploaded last, carrying that ETag in its own metadata, so that later checks need
no local file. A multipart upload killed half way is resumed by the next run: parts already
there whose MD5 matches the file are kept.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import traceback

from ansible_collections.persist.docker.plugins.module_utils._archive_meta import SIDECAR_SUFFIX
from ansible_collections.persist.docker.plugins.module_utils._errors import DependencyError
from ansible_collections.persist.docker.plugins.module_utils._errors import OffsiteError
from ansible_collections.persist.docker.plugins.module_utils._offsite_parts import (
    READ_CHUNK,
    FileHashes,
    FileSlice,
    part_size_for,
    plain_etag,
)
from ansible_collections.persist.docker.plugins.module_utils._offsite_plan import SIDECAR_LIMIT, RemoteListing
from ansible_collections.persist.docker.plugins.module_utils._offsite_target import (
    TargetBackend,
    explain_s3_failure,
    s3_prefix,
    target_name,
)

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    BOTO3_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised on nodes without the library
    boto3 = None
    BOTO3_IMPORT_ERROR = traceback.format_exc()

META_SHA256 = "persist-sha256"
META_PART_SIZE = "persist-part-size"
# On the sidecar object: the ETag its archive had when it was checked after the upload.
META_ARCHIVE_ETAG = "persist-archive-etag"


def require_boto3():
    if boto3 is None:
        raise DependencyError(
            "S3 targets need the Python library boto3 on the Docker host (the managed node), which sends the copies: "
            "install it with 'pip install boto3' or the distribution package (python3-boto3).",
            exception=BOTO3_IMPORT_ERROR,
        )


def _md5_header(digest):
    return base64.b64encode(digest).decode("ascii")


def _client_config(options):
    settings = dict(
        connect_timeout=options["connect_timeout"],
        read_timeout=max(60, options["connect_timeout"]),
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": options["addressing_style"]},
    )
    try:
        # Checksums only where the API requires them: S3-compatible stores that predate
        # the newer default checksum headers refuse them; integrity comes from Content-MD5.
        return Config(request_checksum_calculation="when_required", response_checksum_validation="when_required", **settings)
    except TypeError:  # botocore before 1.36 has neither setting, and sends no such header
        return Config(**settings)


class S3Target(TargetBackend):
    """One S3 target of a task (use as a context manager)."""

    kind = "s3"
    # The ETag and the stored sha256 are checked besides reading the copy in full.
    full_read_covers_remote_check = False

    def __init__(self, options, masker):
        require_boto3()
        self.options = options
        self.name = target_name(options)
        self.masker = masker
        self.bucket = options["bucket"]
        self.prefix = s3_prefix(options["prefix"])
        self.etags = {}
        self.sizes = {}
        session = boto3.session.Session(
            aws_access_key_id=options.get("access_key") or None,
            aws_secret_access_key=options.get("secret_key") or None,
            aws_session_token=options.get("session_token") or None,
            region_name=options.get("region") or None,
        )
        verify = (options.get("ca_bundle") or True) if options["validate_certs"] else False
        try:
            self.client = session.client("s3", endpoint_url=options.get("endpoint_url") or None, verify=verify, config=_client_config(options))
        except (BotoCoreError, ValueError) as exc:
            raise OffsiteError(self.masker.mask("The S3 client for %s cannot be set up: %s. Check endpoint_url and region." % (self.name, exc)),
                               target=self.name)

    def _call(self, what, operation, **kwargs):
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise OffsiteError(self.masker.mask(explain_s3_failure(code, error.get("Message") or str(exc), self.name, what)), target=self.name)
        except BotoCoreError as exc:
            raise OffsiteError(self.masker.mask(
                "%s on %s failed: %s. Check endpoint_url, the network, validate_certs/ca_bundle, and that credentials are given "
                "(access_key and secret_key, or the managed node's AWS configuration)." % (what, self.name, exc)), target=self.name)

    def _key(self, name):
        return self.prefix + name

    def url(self, name):
        return "s3://%s/%s" % (self.bucket, self._key(name))

    # -- the prefix ---------------------------------------------------------------------

    def open(self):
        """Check the credentials and the bucket with one listing request."""
        arguments = dict(MaxKeys=1, Prefix=self.prefix) if self.prefix else dict(MaxKeys=1)
        self._call("listing the bucket", "list_objects_v2", **arguments)
        return True

    def prepare(self):
        pass

    def listing(self, now):
        files = {}
        token = None
        while True:
            arguments = dict(Prefix=self.prefix) if self.prefix else {}
            if token:
                arguments["ContinuationToken"] = token
            page = self._call("listing the bucket", "list_objects_v2", **arguments)
            for item in page.get("Contents", []):
                name = item["Key"][len(self.prefix):]
                if not name or "/" in name:
                    continue
                files[name] = (item["Size"], item["LastModified"].timestamp())
                self.etags[name] = plain_etag(item.get("ETag"))
            if not page.get("IsTruncated"):
                break
            token = page.get("NextContinuationToken")
        self.sizes = dict((name, size) for name, (size, _when) in files.items())
        sidecars = {}
        for name, (size, _when) in files.items():
            if name.endswith(SIDECAR_SUFFIX) and not name.startswith("."):
                sidecars[name[:-len(SIDECAR_SUFFIX)]] = self._read_small(name) if size <= SIDECAR_LIMIT else None
        return RemoteListing(files, sidecars, self.url, now)

    def _read_small(self, name):
        body = self._call("reading %s" % name, "get_object", Key=self._key(name))["Body"]
        with contextlib.closing(body):
            return body.read(SIDECAR_LIMIT + 1)

    # -- sending ------------------------------------------------------------------------

    def send(self, candidate, remote_entry, full):
        name = os.path.basename(candidate["path"])
        recorded = candidate["metadata"]["archive"]
        size = recorded["size"]
        part_size = part_size_for(size, self.options["multipart_threshold"], self.options["part_size"])
        if remote_entry is not None and remote_entry["sidecar_data"] is not None:
            # A sidecar on the target must never describe an archive that is being replaced.
            self._call("deleting the sidecar of the damaged copy %s" % name, "delete_object", Key=self._key(name + SIDECAR_SUFFIX))
        with open(candidate["path"], "rb") as archive:
            facts = None
            if remote_entry is not None:
                facts = self._adopt(archive, name, recorded, part_size)
            if facts is None:
                facts = self._upload(archive, name, recorded, part_size)
        problem = self._object_problem(name, recorded, facts["etag"])
        if problem:
            raise OffsiteError("The copy of %s on %s did not check out after the upload: %s. The sidecar was not uploaded; run the task "
                               "again to send it anew." % (name, self.name, problem), target=self.name, archive=name)
        facts["checks"] = ["size", "sha256 stored with the object"] + (["ETag predicted from the parts sent"] if self.options["etag_check"] else [])
        if full:
            problem = self._stream_problem(name, recorded)
            if problem:
                raise OffsiteError("The copy of %s on %s read back wrong: %s. The sidecar was not uploaded; run the task again."
                                   % (name, self.name, problem), target=self.name, archive=name)
            facts["checks"].append("full read of the copy (sha256 and size)")
        with open(candidate["sidecar"], "rb") as handle:
            sidecar = handle.read()
        self._call("uploading the sidecar of %s" % name, "put_object", Key=self._key(name + SIDECAR_SUFFIX), Body=sidecar,
                   ContentMD5=_md5_header(hashlib.md5(sidecar).digest()), ContentType="application/json",
                   Metadata={META_ARCHIVE_ETAG: facts["etag"], META_SHA256: recorded["sha256"]}, StorageClass=self.options["storage_class"])
        return dict(transferred_bytes=facts["transferred"], resumed_from=facts["resumed"], checks=facts["checks"], parts=facts["parts"])

    def _adopt(self, archive, name, recorded, part_size):
        """Facts of an archive object already there (a copy killed before its sidecar) that
        matches the local file, or None when it must be uploaded again."""
        head = self._head(name)
        if head is None or head["ContentLength"] != recorded["size"] or head.get("Metadata", {}).get(META_SHA256) != recorded["sha256"]:
            return None
        hashes = FileHashes(recorded["size"], int(head["Metadata"].get(META_PART_SIZE) or 0)).hash_all(archive)
        if hashes.sha256 != recorded["sha256"] or hashes.etag() != plain_etag(head.get("ETag")):
            return None
        return dict(etag=hashes.etag(), transferred=0, resumed=recorded["size"], parts=len(hashes.ranges))

    def _head(self, name):
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
                return None
            return self._call("reading the facts of %s" % name, "head_object", Key=self._key(name))

    def _local_damage(self, name, hashes, recorded):
        return OffsiteError(
            "The local archive of %s does not match its sidecar (sha256 %s, the sidecar says %s): it is damaged, and its copy on %s "
            "was not completed. Check it with persist.docker.backup_verify." % (name, hashes.sha256, recorded["sha256"], self.name),
            target=self.name, archive=name)

    def _upload(self, archive, name, recorded, part_size):
        hashes = FileHashes(recorded["size"], part_size)
        metadata = {META_SHA256: recorded["sha256"], META_PART_SIZE: str(part_size)}
        if not part_size:
            digest = hashes.add_part(archive, recorded["size"])
            if hashes.sha256 != recorded["sha256"]:
                raise self._local_damage(name, hashes, recorded)
            self._call("uploading %s" % name, "put_object", Key=self._key(name), Body=FileSlice(archive, 0, recorded["size"]),
                       ContentLength=recorded["size"], ContentMD5=_md5_header(digest), Metadata=metadata,
                       StorageClass=self.options["storage_class"])
            return dict(etag=hashes.etag(), transferred=recorded["size"], resumed=0, parts=1)
        upload_id, there = self._resumable(name, metadata)
        parts, transferred, resumed = [], 0, 0
        for number, offset, length in hashes.ranges:
            archive.seek(offset)
            digest = hashes.add_part(archive, length)
            if there.get(number) == (length, digest.hex()):
                resumed += length
            else:
                answer = self._call("uploading part %d of %s" % (number, name), "upload_part", Key=self._key(name), UploadId=upload_id,
                                    PartNumber=number, Body=FileSlice(archive, offset, length), ContentLength=length,
                                    ContentMD5=_md5_header(digest))
                if self.options["etag_check"] and plain_etag(answer.get("ETag")) != digest.hex():
                    raise OffsiteError("Part %d of %s arrived damaged on %s (ETag %s, its MD5 is %s); run the task again to resume."
                                       % (number, name, self.name, plain_etag(answer.get("ETag")), digest.hex()), target=self.name, archive=name)
                transferred += length
            parts.append({"PartNumber": number, "ETag": '"%s"' % digest.hex()})
        if hashes.sha256 != recorded["sha256"]:
            self._call("abandoning the upload of %s" % name, "abort_multipart_upload", Key=self._key(name), UploadId=upload_id)
            raise self._local_damage(name, hashes, recorded)
        self._call("completing the upload of %s" % name, "complete_multipart_upload", Key=self._key(name), UploadId=upload_id,
                   MultipartUpload={"Parts": parts})
        return dict(etag=hashes.etag(), transferred=transferred, resumed=resumed, parts=len(parts))

    def _resumable(self, name, metadata):
        """``(upload id, {part number: (size, etag)})``: the newest unfinished upload of this
        archive (older ones are aborted), or a new one."""
        key = self._key(name)
        uploads = self._call("looking for an unfinished upload of %s" % name, "list_multipart_uploads", Prefix=key).get("Uploads", [])
        uploads = sorted((upload for upload in uploads if upload["Key"] == key), key=lambda upload: upload["Initiated"], reverse=True)
        for stale in uploads[1:]:
            self._call("abandoning an older upload of %s" % name, "abort_multipart_upload", Key=key, UploadId=stale["UploadId"])
        if not uploads:
            created = self._call("starting the upload of %s" % name, "create_multipart_upload", Key=key, Metadata=metadata,
                                 StorageClass=self.options["storage_class"])
            return created["UploadId"], {}
        upload_id = uploads[0]["UploadId"]
        there = {}
        marker = 0
        while True:
            page = self._call("listing the parts of %s already sent" % name, "list_parts", Key=key, UploadId=upload_id, PartNumberMarker=marker)
            for part in page.get("Parts", []):
                there[part["PartNumber"]] = (part["Size"], plain_etag(part.get("ETag")))
            if not page.get("IsTruncated"):
                return upload_id, there
            marker = page["NextPartNumberMarker"]

    # -- checks of copies on the target -------------------------------------------------

    def _object_problem(self, name, recorded, etag):
        """What is wrong with the archive object ``name`` (size, stored sha256, ETag against
        ``etag``), or None."""
        head = self._head(name)
        if head is None:
            return "the object is not there"
        problems = []
        if head["ContentLength"] != recorded["size"]:
            problems.append("it is %d bytes, the sidecar says %s" % (head["ContentLength"], recorded["size"]))
        if head.get("Metadata", {}).get(META_SHA256) != recorded["sha256"]:
            problems.append("the sha256 stored with it is %s, the sidecar says %s" % (head.get("Metadata", {}).get(META_SHA256), recorded["sha256"]))
        if self.options["etag_check"] and plain_etag(head.get("ETag")) != etag:
            problems.append("its ETag is %s, %s was expected" % (plain_etag(head.get("ETag")), etag))
        return "; ".join(problems) or None

    def presence_problem(self, entry):
        """Download-free checks of a copy whose size and sidecar match: the object's stored
        sha256, and its ETag against the one recorded with the sidecar when it was sent."""
        return self.remote_check(entry)[1]

    def remote_check(self, entry):
        head = self._head(entry["name"] + SIDECAR_SUFFIX)
        recorded_etag = (head or {}).get("Metadata", {}).get(META_ARCHIVE_ETAG)
        if self.options["etag_check"] and not recorded_etag:
            return "size, stored sha256, ETag", "its sidecar object records no ETag of the archive (it was not uploaded by backup_offsite)"
        return "size, stored sha256, ETag", self._object_problem(entry["name"], entry["metadata"]["archive"], recorded_etag)

    def content_problem(self, entry):
        return self._stream_problem(entry["name"], entry["metadata"]["archive"])

    def _stream_problem(self, name, recorded):
        digest, size = hashlib.sha256(), 0
        try:
            with self.reader(dict(name=name)) as body:
                for block in iter(lambda: body.read(READ_CHUNK), b""):
                    digest.update(block)
                    size += len(block)
        except OSError:
            return self.transport_problem
        if (digest.hexdigest(), size) != (recorded["sha256"], recorded["size"]):
            return "read back, it is %d bytes with sha256 %s; the sidecar says %s bytes, sha256 %s" % (
                size, digest.hexdigest(), recorded["size"], recorded["sha256"])
        return None

    @contextlib.contextmanager
    def reader(self, entry):
        """The object's bytes as a stream (``read(n)``), never written to disk here."""
        self.transport_problem = None
        body = self._call("reading %s" % entry["name"], "get_object", Key=self._key(entry["name"]))["Body"]
        try:
            yield _GuardedBody(body, self)
        finally:
            body.close()

    def delete(self, names):
        for name in names:
            self._call("deleting %s" % name, "delete_object", Key=self._key(name))


class _GuardedBody:
    """A download stream whose network failures are recorded on the target (and end the
    stream), so that a verification can tell a broken connection from a damaged copy."""

    def __init__(self, body, target):
        self._body = body
        self._target = target

    def read(self, size=-1):
        try:
            return self._body.read(size)
        except (BotoCoreError, OSError) as exc:
            self._target.transport_problem = self._target.masker.mask("reading from %s failed: %s" % (self._target.name, exc))
            raise OSError(self._target.transport_problem)
