"""The tree digest: equal for equal trees, whatever the route; different for any change."""

import os
import tarfile

import pytest

from ansible_collections.persist.docker.plugins.module_utils._tree_digest import NotCanonicalOrder, TreeDigest
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
