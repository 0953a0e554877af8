"""Words for messages."""

from ansible_collections.persist.docker.plugins.module_utils._text import counted, no_room, sized


def test_counted_picks_the_form_of_the_noun():
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(0, "entry", "entries") == "0 entries"
    assert counted(2, "byte") == "2 bytes"


def test_sized_is_readable_and_exact():
    assert sized(0) == "0 bytes"
    assert sized(1) == "1 byte"
    assert sized(1023) == "1023 bytes"
    assert sized(1024) == "1.0 KiB (1024 bytes)"
    assert sized(3 << 20) == "3.0 MiB (3145728 bytes)"
    assert sized(int(1.5 * (1 << 30))) == "1.5 GiB (1610612736 bytes)"
    assert sized(5 << 40) == "5.0 TiB (5497558138880 bytes)"


def test_no_room_explains_gnu_tars_words_for_a_full_file_system_only():
    for words in ("tar: ./big: Wrote only 7168 of 10240 bytes", "tar: ./a: Cannot write: No space left on device",
                  "tar: ./a: Cannot open: Disk quota exceeded"):
        sentence = no_room("The helper container failed (exit code 2) while extracting: %s" % words, "data", "3 MiB")
        assert sentence == (" Volume data has no room left: the staging tree needs 3 MiB free beside the volume's current "
                            "entries; make room, or use a larger volume.")
    assert no_room("tar: ./a: Cannot change ownership to uid 5: Operation not permitted", "data", "3 MiB") == ""
