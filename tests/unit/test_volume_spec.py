"""Volume descriptions, the differences that block a change, and who mounts what."""

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._volume_spec import (
    describe_users,
    describe_volume,
    format_differences,
    mount_table,
    volume_differences,
)

INSPECT = {
    "Name": "pgdata",
    "Driver": "local",
    "Options": {"type": "tmpfs", "device": "tmpfs"},
    "Labels": {"persist.backup": "true", "com.docker.compose.project": "shop"},
    "Mountpoint": "/var/lib/docker/volumes/pgdata/_data",
    "Scope": "local",
    "CreatedAt": "2026-11-27T05:12:44Z",
}


def test_describe_volume_turns_null_options_and_labels_into_empty_dicts():
    volume = describe_volume({"Name": "v", "Driver": "local", "Options": None, "Labels": None})
    assert volume["driver_opts"] == {} and volume["labels"] == {} and volume["exists"] is True


def test_no_difference_when_the_request_matches_or_leaves_options_unset():
    current = describe_volume(INSPECT)
    assert volume_differences(current, "local", {"type": "tmpfs", "device": "tmpfs"}, {"persist.backup": "true"}) == []
    assert volume_differences(current, "local", None, None) == []


def test_labels_the_volume_has_beyond_the_request_are_not_a_difference():
    current = describe_volume(INSPECT)
    assert volume_differences(current, "local", None, {}) == []


def test_values_compare_as_strings_the_way_docker_stores_them():
    current = describe_volume(dict(INSPECT, Labels={"replicas": "3", "enabled": "true"}))
    assert volume_differences(current, "local", None, {"replicas": 3, "enabled": True}) == []


def test_every_differing_option_label_and_the_driver_is_listed():
    current = describe_volume(INSPECT)
    differences = volume_differences(current, "nfs", {"type": "tmpfs", "o": "size=1m"}, {"persist.backup": "false", "tier": "a"})
    assert [(d["option"], d["key"], d["current"], d["wanted"]) for d in differences] == [
        ("driver", None, "local", "nfs"),
        ("driver_opts", "device", "tmpfs", None),
        ("driver_opts", "o", None, "size=1m"),
        ("labels", "persist.backup", "true", "false"),
        ("labels", "tier", None, "a"),
    ]
    text = format_differences(differences)
    assert "driver is 'local', wanted 'nfs'" in text
    assert "driver_opts[device] is 'tmpfs', wanted (unset)" in text
    assert "labels[tier] is (unset), wanted 'a'" in text


label_dicts = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=5)


@given(have=label_dicts, extra=label_dicts)
def test_a_request_for_a_subset_of_the_labels_never_differs(have, extra):
    current = describe_volume({"Name": "v", "Driver": "local", "Labels": {**extra, **have}})
    assert volume_differences(current, "local", None, have) == []


def summary(name, state, mounts):
    return {"Id": name * 8, "Names": ["/" + name], "State": state, "Mounts": mounts}


def test_mount_table_lists_each_container_with_state_mode_and_path():
    table = mount_table([
        summary("db", "running", [{"Type": "volume", "Name": "pgdata", "Destination": "/var/lib/postgresql/data", "RW": True}]),
        summary("reader", "exited", [{"Type": "volume", "Name": "pgdata", "Destination": "/ro", "RW": False}]),
        summary("frozen", "paused", [{"Type": "volume", "Name": "other", "Destination": "/x", "RW": True}]),
        summary("binder", "running", [{"Type": "bind", "Source": "/srv", "Destination": "/srv", "RW": True}]),
    ])
    assert sorted(table) == ["other", "pgdata"]
    assert [(u["name"], u["state"], u["running"], u["read_only"], u["mount_path"]) for u in table["pgdata"]] == [
        ("db", "running", True, False, "/var/lib/postgresql/data"),
        ("reader", "exited", False, True, "/ro"),
    ]
    assert table["other"][0]["running"] is True  # a paused container still holds its files
    assert describe_users(table["pgdata"]) == "db (running, rw at /var/lib/postgresql/data), reader (exited, ro at /ro)"


def test_local_volume_names_follow_the_engine_rules():
    from ansible_collections.persist.docker.plugins.module_utils._volume_spec import valid_local_name

    assert valid_local_name("pgdata") and valid_local_name("a.b_c-1")
    assert not valid_local_name("a")
    assert not valid_local_name("bad/name")
    assert not valid_local_name("-leading-dash")
    assert not valid_local_name("trailing\n")
