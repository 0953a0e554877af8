"""The tree digest: equal for equal trees, whatever the route; different for any change."""

import hashlib
import os
import tarfile
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._member_safety import NotCanonicalOrder
from ansible_collections.persist.docker.plugins.module_utils._tree_digest import (
    BLOCK,
    V1_HOLE_BUDGET,
    DigestTooCostly,
    TreeDigest,
    _ContentV2,
    _whole_content_v2,
)
from tarbuild import crafted, feed, gnu_tar, gnu_untar, info


def digest_of(data, chunk=65536):
    return feed(TreeDigest(), data, chunk).hexdigest()


def make_tree(root):
    (root / "dir").mkdir(parents=True)
    (root / "dir" / "file").write_bytes(b"content")
    os.setxattr(root / "dir" / "file", "user.tag", b"v1")
    (root / "other").write_bytes(os.urandom(100000))
    os.link(root / "other", root / "z-link")
    os.symlink("dir/file", root / "sym")
    with open(root / "sparse", "wb") as sparse:
        sparse.truncate(4 * 1024 * 1024)
        sparse.seek(1024 * 1024)
        sparse.write(b"data")
    return root


def test_digest_survives_a_gnu_tar_round_trip(tmp_path):
    source = make_tree(tmp_path / "source")
    data = gnu_tar(source)
    gnu_untar(data, tmp_path / "copy")
    assert digest_of(gnu_tar(tmp_path / "copy"), chunk=4096) == digest_of(data)


@pytest.mark.parametrize("change", ["content", "mode", "mtime", "owner", "symlink", "xattr", "new-empty-file", "hard-link-broken"])
def test_digest_changes_with_any_change_to_the_tree(tmp_path, change):
    root = make_tree(tmp_path / "tree")
    before = digest_of(gnu_tar(root))
    target = root / "dir" / "file"
    if change == "content":  # same size and mtime: only the content hash can tell
        mtime = os.stat(target).st_mtime_ns
        target.write_bytes(b"Content")
        os.utime(target, ns=(mtime, mtime))
    elif change == "mode":
        target.chmod(0o600)
    elif change == "mtime":
        os.utime(target, ns=(0, os.stat(target).st_mtime_ns + 1))
    elif change == "owner":
        os.chown(target, 1234, 5678)
    elif change == "symlink":
        (root / "sym").unlink()
        (root / "sym").symlink_to("other")
    elif change == "xattr":
        os.setxattr(target, "user.tag", b"v2")
    elif change == "new-empty-file":  # with the directory's mtime put back
        mtime = os.stat(root / "dir").st_mtime_ns
        (root / "dir" / "new").write_bytes(b"")
        os.utime(root / "dir", ns=(mtime, mtime))
    elif change == "hard-link-broken":
        (root / "z-link").unlink()
        (root / "z-link").write_bytes((root / "other").read_bytes())
    assert digest_of(gnu_tar(root)) != before


def test_digest_of_a_sparse_file_equals_that_of_the_same_content_written_densely(tmp_path):
    sparse_root, dense_root = tmp_path / "a", tmp_path / "b"
    sparse_root.mkdir()
    dense_root.mkdir()
    with open(sparse_root / "f", "wb") as sparse:
        sparse.truncate(3 * 1024 * 1024)
        sparse.seek(2 * 1024 * 1024)
        sparse.write(b"x")
    (dense_root / "f").write_bytes((sparse_root / "f").read_bytes())
    for root in (sparse_root, dense_root):
        os.utime(root / "f", ns=(0, 10**18))
        os.utime(root, ns=(0, 0))
    assert digest_of(gnu_tar(sparse_root)) == digest_of(gnu_tar(dense_root))


def test_digest_counts_entries_and_logical_bytes(tmp_path):
    root = make_tree(tmp_path / "tree")
    digest = feed(TreeDigest(), gnu_tar(root))
    assert digest.entries == 6
    assert digest.bytes == len(b"content") + 100000 + 4 * 1024 * 1024


def test_digest_refuses_members_out_of_canonical_order():
    data = crafted((info("b"), b"1"), (info("a"), b"2"))
    with pytest.raises(NotCanonicalOrder, match="member a comes after b"):
        digest_of(data)


def test_canonical_order_is_depth_first_with_names_compared_as_bytes():
    data = crafted(
        (info(".", tarfile.DIRTYPE), None),
        (info("a", tarfile.DIRTYPE), None),
        (info("a/z"), b""),
        (info("a.b"), b""),
        (info("b"), b""),
    )
    assert len(digest_of(data)) == 64


def _sparse_archive(realsize, segments):
    """A pax archive (GNU sparse 0.1 records) of one file ``f`` of ``realsize`` bytes whose
    only data are ``segments`` [(offset, bytes)]: a few KB however large it claims to be."""
    entry = info("f")
    stored = b"".join(data for _offset, data in segments)
    entry.pax_headers = {
        "GNU.sparse.size": str(realsize), "GNU.sparse.numblocks": str(len(segments)),
        "GNU.sparse.map": ",".join("%d,%d" % (offset, len(data)) for offset, data in segments),
    }
    return crafted((info(".", tarfile.DIRTYPE), None), (entry, stored))


def test_a_small_archive_claiming_a_petabyte_sparse_file_is_digested_in_moments():
    """Holes cost nothing in version 2: a hostile archive cannot buy hours of hashing."""
    data = _sparse_archive(1 << 50, [(0, b"head".ljust(512, b"!")), ((1 << 50) - 4, b"tail")])
    assert len(data.rstrip(b"\0")) < 4096  # what is left is the record padding tar adds
    started = time.monotonic()
    digest = feed(TreeDigest(), data)
    assert time.monotonic() - started < 2
    assert digest.bytes == 1 << 50


def test_version_1_refuses_to_hash_more_holes_than_its_budget():
    data = _sparse_archive(V1_HOLE_BUDGET + (1 << 20), [(0, b"head".ljust(512, b"!")), (V1_HOLE_BUDGET + (1 << 20), b"")])
    with pytest.raises(DigestTooCostly, match="version-1 tree digest"):
        feed(TreeDigest(version=1), data)


def test_versions_differ_and_an_unknown_version_is_refused(tmp_path):
    root = make_tree(tmp_path / "tree")
    data = gnu_tar(root)
    assert feed(TreeDigest(version=1), data).hexdigest() != feed(TreeDigest(version=2), data).hexdigest()
    with pytest.raises(ValueError, match="version 3"):
        TreeDigest(version=3)


def _content_reference(content):
    """The version-2 content hash as its definition says: runs of 4 KiB blocks that are not
    all zeros, each as offset, length and sha256."""
    outer = hashlib.sha256()
    run = None
    for start in range(0, len(content), BLOCK):
        block = content[start:start + BLOCK]
        if block.count(0) == len(block):
            if run:
                outer.update(b"%d %d " % (run[0], run[1]) + run[2].digest() + b"\n")
                run = None
            continue
        if run is None:
            run = [start, 0, hashlib.sha256()]
        run[1] += len(block)
        run[2].update(block)
    if run:
        outer.update(b"%d %d " % (run[0], run[1]) + run[2].digest() + b"\n")
    return outer.hexdigest()


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.tuples(st.sampled_from([0, 1, 4095, 4096, 4097, 9000]), st.sampled_from(["zeros", "ones", "random"])), max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=20000), min_size=1, max_size=6),
    holes=st.booleans(),
)
def test_version_2_content_hash_is_the_same_however_the_data_arrives(pieces, cuts, holes):
    """Chunks of any size, zero ranges sent as data or skipped as holes: one content hash."""
    content = b"".join({"zeros": bytes(size), "ones": b"\x01" * size, "random": os.urandom(size)}[kind] for size, kind in pieces)
    hasher = _ContentV2()
    position = 0
    index = 0
    while position < len(content):
        piece = content[position:position + cuts[index % len(cuts)]]
        index += 1
        if not (holes and piece.count(0) == len(piece)):
            hasher.update(position, piece)
        position += len(piece)
    assert hasher.hexdigest(len(content)) == _content_reference(content)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.tuples(st.sampled_from([0, 1, 4095, 4096, 4097, 9000]), st.sampled_from(["zeros", "ones", "random"])), max_size=8))
def test_a_files_whole_content_in_one_piece_hashes_as_it_does_piece_by_piece(pieces):
    """The shortcut for a file whose data arrives in one piece gives the same content hash."""
    content = b"".join({"zeros": bytes(size), "ones": b"\x01" * size, "random": os.urandom(size)}[kind] for size, kind in pieces)
    assert _whole_content_v2(content) == _content_reference(content)
