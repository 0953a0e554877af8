"""Counting entries and bytes from find output, whatever the chunk boundaries."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.persist.docker.plugins.module_utils._usage import UsageTally

SAMPLE = (
    b"d 11 2 4096 8\n"      # a directory
    b"f 12 1 100 8\n"       # a file
    b"f 13 2 5000 16\n"     # a hard-linked file ...
    b"f 13 2 5000 16\n"     # ... and its second name
    b"f 14 1 1073741824 0\n"  # a sparse file with no data blocks
    b"l 15 1 7 0\n"         # a symlink
)


def tally_of(*chunks):
    tally = UsageTally()
    for chunk in chunks:
        tally.feed(chunk)
    return tally.result()


def test_usage_counts_entries_bytes_and_disk_space_with_hard_links_once():
    assert tally_of(SAMPLE) == {
        "entries": 6,
        "bytes": 100 + 5000 + 1073741824,
        "disk_bytes": (8 + 8 + 16 + 0 + 0) * 512,
        "empty": False,
    }


@given(st.lists(st.integers(min_value=0, max_value=len(SAMPLE)), max_size=8))
def test_usage_is_the_same_for_any_split_of_the_stream(cuts):
    bounds = [0] + sorted(cuts) + [len(SAMPLE)]
    chunks = [SAMPLE[a:b] for a, b in zip(bounds, bounds[1:])]
    assert tally_of(*chunks) == tally_of(SAMPLE)


def test_usage_of_an_empty_volume_is_empty():
    assert tally_of(b"") == {"entries": 0, "bytes": 0, "disk_bytes": 0, "empty": True}


def test_usage_refuses_output_that_ends_inside_a_line():
    with pytest.raises(ValueError, match="middle of a line"):
        tally_of(b"f 12 1 100 8\nf 13")


def test_usage_refuses_a_line_it_does_not_understand():
    with pytest.raises(ValueError, match="unexpected find output"):
        tally_of(b"find: permission denied\n")
