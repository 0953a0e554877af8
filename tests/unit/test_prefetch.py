# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The read-ahead thread: every byte in order, bounded memory, errors where they happened; and
one call run in a thread of its own."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._prefetch import InBackground, prefetch


@given(st.lists(st.binary(max_size=50), max_size=40), st.integers(min_value=1, max_value=120), st.integers(min_value=1, max_value=4))
@settings(max_examples=200, deadline=None)
def test_every_byte_arrives_in_order(chunks, batch_size, depth):
    batches = list(prefetch(iter(chunks), depth=depth, batch_size=batch_size))
    assert b"".join(batches) == b"".join(chunks)
    assert all(batches)
    # Every batch but the last is at least batch_size, and none more than a chunk beyond it.
    for batch in batches[:-1]:
        assert batch_size <= len(batch) < batch_size + 50


def test_a_producer_error_is_raised_after_the_data_before_it():
    def chunks():
        yield b"first"
        raise OSError("the stream broke")

    received = []
    with pytest.raises(OSError, match="the stream broke"):
        for batch in prefetch(chunks(), batch_size=1):
            received.append(batch)
    assert received == [b"first"]


def test_the_producer_stays_a_bounded_number_of_batches_ahead():
    produced = []

    def chunks():
        for number in range(1000):
            produced.append(number)
            yield b"x"

    consumer = prefetch(chunks(), depth=3, batch_size=1)
    assert next(consumer) == b"x"
    time.sleep(0.3)
    # One handed out, three queued, one waiting to be queued.
    assert len(produced) <= 6
    consumer.close()


def test_closing_early_stops_the_thread():
    def endless():
        while True:
            yield b"y"

    consumer = prefetch(endless(), depth=2, batch_size=1)
    next(consumer)
    consumer.close()
    deadline = time.monotonic() + 5
    while any(thread.name == "persist-prefetch" for thread in threading.enumerate()):
        assert time.monotonic() < deadline, "the prefetch thread did not stop"
        time.sleep(0.05)


def test_with_wait_the_close_returns_once_the_producer_stopped_and_closed_its_source():
    closed = []

    def slow():
        try:
            while True:
                time.sleep(0.05)  # a read that takes a while, but returns
                yield b"z"
        finally:
            closed.append(threading.current_thread().name)

    consumer = prefetch(slow(), depth=1, batch_size=1, wait=True)
    next(consumer)
    consumer.close()
    assert closed == ["persist-prefetch"]
    assert not [thread for thread in threading.enumerate() if thread.name == "persist-prefetch"]


def _slow_call(value=None, error=None):
    """A call that takes 0.1 s and records the thread it ran in and that it ended."""
    seen = {}

    def call():
        seen["thread"] = threading.current_thread()
        time.sleep(0.1)
        seen["ended"] = True
        if error is not None:
            raise error
        return value

    return call, seen


def test_a_call_in_the_background_runs_in_another_thread_and_its_value_waits_for_its_end():
    value = object()
    call, seen = _slow_call(value=value)
    running = InBackground(call)
    assert running.result() is value
    assert seen["ended"]
    assert seen["thread"] is not threading.current_thread()
    assert running.settle() is value


def test_a_failed_call_in_the_background_is_raised_by_result_and_settles_to_none():
    call, seen = _slow_call(error=OSError("the engine refused"))
    running = InBackground(call)
    assert running.settle() is None  # waits for the call to end
    assert seen["ended"]
    with pytest.raises(OSError, match="the engine refused"):
        running.result()
