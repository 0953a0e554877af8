"""Where a volume's data lives: new storage, existing storage, and storage shared with
another volume or a container's bind mount; credentials never shown."""

import pytest

from ansible_collections.persist.docker.plugins.module_utils._storage import MASK, existing_storage, masked_options, sharing, storage_of


def volume(name, driver="local", **options):
    return dict(name=name, driver=driver, driver_opts=options, labels={})


@pytest.mark.parametrize(
    "driver, options, words",
    [
        ("local", {}, None),
        ("local", {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,uid=1000"}, None),
        ("local", {"type": "none", "o": "bind", "device": "/etc"}, "device=/etc mounts existing storage (a host directory)"),
        ("local", {"o": "bind", "device": "/srv/data"}, "a host directory"),
        ("local", {"type": "cifs", "o": "addr=nas,username=u,password=secret", "device": "//nas/share"}, "a device or network share"),
        ("local", {"type": "ext4", "device": "/dev/sdb1"}, "device=/dev/sdb1"),
        ("local", {"type": "nfs"}, "type=nfs mounts a file system"),
        ("local", {"size": "10G"}, "size=10G is not one the local driver makes new storage with"),
        ("rexray/ebs", {"size": "10"}, "the driver rexray/ebs is a volume plugin"),
    ],
)
def test_existing_storage_is_anything_but_a_plain_or_tmpfs_local_volume(driver, options, words):
    problem = existing_storage(driver, options)
    if words is None:
        assert problem is None
    else:
        assert words in problem
        assert "secret" not in problem


def test_credentials_in_driver_options_are_masked_and_nothing_else_is():
    options = {"type": "cifs", "o": "addr=nas.local,username=backup,password=hunter2,vers=3.0", "device": "//nas/share", "secret_key": "abc"}
    shown = masked_options(options)
    assert shown == {
        "type": "cifs", "o": "addr=nas.local,username=%s,password=%s,vers=3.0" % (MASK, MASK), "device": "//nas/share", "secret_key": MASK,
    }
    assert options["o"].endswith("vers=3.0") and "hunter2" in options["o"], "the input is not changed"
    assert masked_options(None) == {} and masked_options({}) == {}


def test_storage_of_a_volume_names_its_host_directory_or_device():
    assert storage_of(volume("a")) is None
    assert storage_of(volume("a", type="tmpfs", device="tmpfs")) is None
    assert storage_of(volume("a", type="none", o="bind", device="/srv/data/")) == ("path", "/srv/data")
    assert storage_of(volume("a", type="nfs", o="addr=10.0.0.1,rw", device=":/export")) == ("device", "addr=10.0.0.1,:/export")
    assert storage_of(volume("a", driver="plugin", device="/srv")) is None


def test_volumes_on_the_same_or_nested_host_directories_share_storage():
    target = volume("target", type="none", o="bind", device="/srv/data")
    assert sharing(target, [target], []) is None
    reason = sharing(target, [target, volume("other", type="none", o="bind", device="/srv/data/sub")], [])
    assert reason == "volume target mounts /srv/data, and volume other mounts /srv/data/sub: they are the same files"
    assert sharing(target, [volume("other", type="none", o="bind", device="/srv/database")], []) is None
    assert sharing(target, [volume("plain")], []) is None


def test_a_host_directory_bind_mounted_into_a_container_shares_the_volumes_storage():
    target = volume("target", type="none", o="bind", device="/srv/data")
    reason = sharing(target, [], [("web", "/srv")])
    assert reason == "volume target mounts the host directory /srv/data, and container web bind-mounts /srv"
    assert sharing(target, [], [("web", "/srv/other")]) is None
    assert sharing(volume("plain"), [], [("web", "/")]) is None


def test_network_shares_are_shared_when_server_and_export_are_the_same():
    first = volume("a", type="nfs", o="addr=10.0.0.1,rw", device=":/export")
    second = volume("b", type="nfs", o="addr=10.0.0.1,ro,nolock", device=":/export")
    third = volume("c", type="nfs", o="addr=10.0.0.2", device=":/export")
    assert "same files" in sharing(first, [first, second], [])
    assert sharing(first, [third], []) is None
