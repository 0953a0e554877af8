"""An archive is read twice by a restore (verify, then extract): the second read uses no
block that differs from what the first read saw."""

import hashlib
import os
import threading

import pytest
import zstandard

from ansible_collections.persist.docker.plugins.module_utils._archive_read import PIN_BLOCK, ArchiveChanged, ArchiveCorrupt, PinnedArchive


def write_archive(path, data):
    path.write_bytes(zstandard.ZstdCompressor(level=1).compress(data))
    return str(path)


def test_the_first_read_hashes_the_whole_file_and_later_reads_give_the_same_stream(tmp_path):
    data = os.urandom(3 * PIN_BLOCK + 123)
    path = write_archive(tmp_path / "a.tar.zst", data)
    with PinnedArchive(path, "zstd") as archive:
        assert b"".join(archive.stream()) == data
        with open(path, "rb") as raw:
            content = raw.read()
        assert (archive.sha256, archive.size) == (hashlib.sha256(content).hexdigest(), len(content))
        assert b"".join(archive.stream()) == data


def test_a_block_changed_in_place_after_the_first_read_is_refused_before_it_is_used(tmp_path):
    data = os.urandom(3 * PIN_BLOCK)
    path = write_archive(tmp_path / "a.tar.zst", data)
    with PinnedArchive(path, "zstd") as archive:
        b"".join(archive.stream())
        with open(path, "r+b") as raw:
            raw.seek(PIN_BLOCK + 10)
            raw.write(b"\0" * 16)
        served = []
        with pytest.raises(ArchiveChanged, match="block 1 "):
            for chunk in archive.stream():
                served.append(chunk)
        assert len(b"".join(served)) < len(data)


def test_a_file_renamed_over_the_archive_after_the_first_read_does_not_matter(tmp_path):
    """The file is opened once: what the second read sees is what was verified."""
    data = os.urandom(PIN_BLOCK)
    path = write_archive(tmp_path / "a.tar.zst", data)
    with PinnedArchive(path, "zstd") as archive:
        b"".join(archive.stream())
        write_archive(tmp_path / "other.tar.zst", os.urandom(PIN_BLOCK))
        os.rename(str(tmp_path / "other.tar.zst"), path)
        assert b"".join(archive.stream()) == data


def test_a_file_grown_after_the_first_read_is_refused(tmp_path):
    path = write_archive(tmp_path / "a.tar", os.urandom(PIN_BLOCK))
    with PinnedArchive(path, "none") as archive:
        b"".join(archive.stream())
        with open(path, "ab") as raw:
            raw.write(b"more")
        with pytest.raises(ArchiveChanged):
            b"".join(archive.stream())


def test_an_undecompressable_archive_is_corrupt(tmp_path):
    path = tmp_path / "a.tar.zst"
    path.write_bytes(b"not zstd at all")
    with PinnedArchive(str(path), "zstd") as archive:
        with pytest.raises(ArchiveCorrupt):
            b"".join(archive.stream())


def test_a_damaged_gzip_stream_is_corrupt_not_a_crash(tmp_path):
    import gzip

    path = tmp_path / "a.tar.gz"
    data = bytearray(gzip.compress(os.urandom(200000)))
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with PinnedArchive(str(path), "gzip") as archive:
        with pytest.raises(ArchiveCorrupt, match="cannot decompress"):
            b"".join(archive.stream())


def test_a_read_ahead_gives_the_same_stream_and_pins_the_file(tmp_path):
    data = os.urandom(5 * PIN_BLOCK + 7)
    path = write_archive(tmp_path / "a.tar.zst", data)
    with PinnedArchive(path, "zstd") as archive:
        assert b"".join(archive.stream(ahead=True)) == data
        with open(path, "rb") as raw:
            assert archive.sha256 == hashlib.sha256(raw.read()).hexdigest()
        with open(path, "r+b") as raw:
            raw.seek(3 * PIN_BLOCK // 2)
            raw.write(b"\0" * 16)
        with pytest.raises(ArchiveChanged, match="block 1 "):
            b"".join(archive.stream(ahead=True))


def test_a_read_ahead_closed_early_no_longer_reads_the_file_when_close_returns(tmp_path):
    """The next read of the archive seeks and reads the same file object: a thread still
    reading it would hand either read bytes of the other."""
    data = os.urandom(40 * PIN_BLOCK)
    path = tmp_path / "a.tar"
    path.write_bytes(data)
    with PinnedArchive(str(path), "none") as archive:
        for _attempt in range(20):
            stream = archive.stream(ahead=True)
            next(stream)
            stream.close()
            assert not [thread for thread in threading.enumerate() if thread.name == "persist-prefetch"]
        assert archive.sha256 is None  # no first read finished
        assert b"".join(archive.stream(ahead=True)) == data
        assert b"".join(archive.stream()) == data


def test_a_read_ahead_of_a_corrupt_archive_raises_in_the_reader(tmp_path):
    path = tmp_path / "a.tar.zst"
    path.write_bytes(b"not zstd at all")
    with PinnedArchive(str(path), "zstd") as archive:
        with pytest.raises(ArchiveCorrupt, match="cannot decompress"):
            b"".join(archive.stream(ahead=True))
