"""age encryption of archive streams: round trips, keys, and failures that say what is wrong."""

import io
import os

import pytest
from pyrage import x25519

from ansible_collections.persist.docker.plugins.module_utils._encryption import (
    DecryptingReader,
    EncryptingWriter,
    EncryptionError,
    load_identities,
    parse_recipients,
)


class Sink(io.RawIOBase):
    """A writer that keeps what it got (what the archive file would hold)."""

    def __init__(self):
        super().__init__()
        self.data = bytearray()

    def writable(self):
        return True

    def write(self, data):
        self.data += data
        return len(data)


def encrypt(data, identity, chunk=100000):
    sink = Sink()
    writer = EncryptingWriter(sink, parse_recipients([str(identity.to_public())]))
    for start in range(0, len(data), chunk):
        writer.write(data[start:start + chunk])
    writer.close()
    return bytes(sink.data)


def decrypt(data, identities, size=65536):
    reader = DecryptingReader(io.BytesIO(data), identities, "archive.age")
    out = bytearray()
    while True:
        piece = reader.read(size)
        if not piece:
            break
        out += piece
    reader.close()
    return bytes(out)


def test_a_stream_encrypted_in_chunks_decrypts_to_the_same_bytes():
    identity = x25519.Identity.generate()
    data = os.urandom(3 * 1024 * 1024 + 17)
    encrypted = encrypt(data, identity)
    assert encrypted.startswith(b"age-encryption.org/v1\n") and data[:64] not in encrypted
    assert decrypt(encrypted, [identity]) == data


def test_a_wrong_identity_fails_at_the_first_read_naming_the_archive():
    encrypted = encrypt(b"secret", x25519.Identity.generate())
    with pytest.raises(EncryptionError, match="archive.age cannot be decrypted with the identity given"):
        decrypt(encrypted, [x25519.Identity.generate()])


def test_a_damaged_ciphertext_fails_instead_of_giving_wrong_bytes():
    identity = x25519.Identity.generate()
    encrypted = bytearray(encrypt(os.urandom(200000), identity))
    encrypted[len(encrypted) // 2] ^= 1
    with pytest.raises(EncryptionError, match="is damaged"):
        decrypt(bytes(encrypted), [identity])


def test_a_reader_closed_early_stops_its_thread():
    identity = x25519.Identity.generate()
    reader = DecryptingReader(io.BytesIO(encrypt(os.urandom(2 * 1024 * 1024), identity)), [identity], "a.age")
    assert len(reader.read(1000)) == 1000
    reader.close()


def test_aborting_an_encryption_raises_nothing_and_stops_its_thread():
    writer = EncryptingWriter(Sink(), parse_recipients([str(x25519.Identity.generate().to_public())]))
    writer.write(b"partial")
    writer.abort()


@pytest.mark.parametrize("text, words", [
    ("age1notakey", "neither an age public key"),
    ("ssh-ed25519 AAAAnotbase64", "neither an age public key"),
    ("", "neither an age public key"),
])
def test_recipients_that_are_not_keys_are_named(text, words):
    with pytest.raises(EncryptionError, match=words):
        parse_recipients([text])
    with pytest.raises(EncryptionError, match="empty"):
        parse_recipients([])


def test_identity_files_are_age_key_lines_with_comments_or_an_openssh_key(tmp_path):
    identity = x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text("# created: today\n# public key: %s\n\n%s\n" % (identity.to_public(), identity))
    [loaded] = load_identities(identity_file=str(key))
    assert decrypt(encrypt(b"x", identity), [loaded]) == b"x"
    with pytest.raises(EncryptionError, match="holds no identity"):
        load_identities(identity="# only a comment\n")
    with pytest.raises(EncryptionError, match="Cannot read decrypt_identity_file"):
        load_identities(identity_file=str(tmp_path / "missing"))
    with pytest.raises(EncryptionError, match="not an age secret key") as refused:
        load_identities(identity="AGE-SECRET-KEY-1NOTREALLY")
    assert "NOTREALLY" not in str(refused.value), "an identity is never echoed"
