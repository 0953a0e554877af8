"""The demultiplexer of attached container streams: every byte in order, bounded pieces."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._frames import (
    STDERR,
    STDOUT,
    TruncatedStream,
    demultiplex,
)


def encode(frames):
    return b"".join(struct.pack(">BxxxL", stream, len(data)) + data for stream, data in frames)


def reader(blob, sizes):
    """A read(n) over ``blob`` that returns short reads following ``sizes``."""
    position = [0]
    size_cycle = list(sizes) or [1 << 30]
    calls = [0]

    def read(n):
        limit = size_cycle[calls[0] % len(size_cycle)]
        calls[0] += 1
        start = position[0]
        piece = blob[start:start + min(n, limit)]
        position[0] += len(piece)
        return piece

    return read


frames_strategy = st.lists(st.tuples(st.sampled_from([STDOUT, STDERR]), st.binary(min_size=0, max_size=300)), max_size=20)


@given(frames=frames_strategy, sizes=st.lists(st.integers(min_value=1, max_value=64), max_size=5), chunk=st.integers(min_value=1, max_value=100))
@settings(max_examples=300, deadline=None)
def test_demultiplex_returns_every_byte_of_each_stream_in_order_in_bounded_pieces(frames, sizes, chunk):
    pieces = list(demultiplex(reader(encode(frames), sizes), chunk_size=chunk))
    for stream in (STDOUT, STDERR):
        expected = b"".join(data for sid, data in frames if sid == stream)
        assert b"".join(data for sid, data in pieces if sid == stream) == expected
    assert all(0 < len(data) <= chunk for _stream, data in pieces)


def test_demultiplex_of_an_empty_stream_yields_nothing():
    assert list(demultiplex(reader(b"", []))) == []


@pytest.mark.parametrize("cut", [3, 8, 10])
def test_demultiplex_refuses_a_stream_cut_inside_a_frame(cut):
    blob = encode([(STDOUT, b"0123456789")])
    with pytest.raises(TruncatedStream):
        list(demultiplex(reader(blob[:cut], [])))
