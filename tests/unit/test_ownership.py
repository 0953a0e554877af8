"""Telling a helper container abandoned by a killed run from one a live run still uses."""

import socket

from ansible_collections.persist.docker.plugins.module_utils._docker_api import parse_docker_time
from ansible_collections.persist.docker.plugins.module_utils._ownership import owner_is_gone, owner_token


def test_this_process_is_never_taken_for_gone():
    assert owner_is_gone(owner_token()) is False


def test_a_dead_process_on_this_host_is_gone():
    assert owner_is_gone("%s/999999999/12345" % socket.gethostname()) is True


def test_a_reused_pid_with_another_start_time_is_gone():
    host, pid, _started = owner_token().rsplit("/", 2)
    assert owner_is_gone("%s/%s/1" % (host, pid)) is True


def test_an_owner_on_another_host_or_unreadable_is_never_taken_for_gone():
    assert owner_is_gone("some-other-host.example/1/1") is False
    assert owner_is_gone(None) is False
    assert owner_is_gone("garbage") is False


def test_docker_times_parse_to_epoch_seconds_and_unset_times_to_none():
    assert parse_docker_time("1970-01-01T00:01:40.123456789Z") == 100
    assert parse_docker_time("0001-01-01T00:00:00Z") is None
    assert parse_docker_time("") is None
