# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Encryption of archives at rest: the age format, through pyrage (Python bindings of rage,
the Rust implementation of age). No cryptography is written here.

An encrypted archive is a standard age file (``NAME.tar.zst.age``) that
``age -d -i KEY NAME.tar.zst.age | zstd -d | tar -x`` opens by hand. pyrage's streaming calls
pull from a reader and push to a writer; the archive pipelines push compressed chunks and
pull decrypted ones, so each side runs pyrage in a thread joined to the pipeline by an OS
pipe, which bounds the memory in flight to the pipe's buffer.
"""

from __future__ import annotations

import os
import threading
import traceback

from ansible_collections.persist.docker.plugins.module_utils._errors import DependencyError, PersistError

try:
    import pyrage
    from pyrage import ssh as pyrage_ssh
    from pyrage import x25519 as pyrage_x25519

    PYRAGE_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised on nodes without the library
    pyrage = None
    PYRAGE_IMPORT_ERROR = traceback.format_exc()

FORMAT = "age"
_SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa")


def decryption_argument_spec():
    """The options of the modules that read encrypted archives (doc fragment
    ``persist.docker._docker.decryption``)."""
    return dict(
        decrypt_identity=dict(type="str", no_log=True),
        decrypt_identity_file=dict(type="path"),
    )


class EncryptionError(PersistError):
    """A recipient, an identity or an encrypted stream could not be used."""


def require_pyrage():
    """Fail early, naming the fix, when pyrage is missing."""
    if pyrage is None:
        raise DependencyError(
            "Encrypted archives need the Python library pyrage (age encryption) on the managed node: install it "
            "with 'pip install pyrage'. Archives can also be decrypted by hand with the age command.",
            exception=PYRAGE_IMPORT_ERROR,
        )


def parse_recipients(texts):
    """pyrage recipients for ``texts``: age X25519 public keys (``age1...``) or SSH public keys
    (``ssh-ed25519 ...``, ``ssh-rsa ...``); EncryptionError naming the first that is not one."""
    require_pyrage()
    recipients = []
    for text in texts:
        text = (text or "").strip()
        try:
            if text.startswith(_SSH_KEY_TYPES):
                recipients.append(pyrage_ssh.Recipient.from_str(text))
            else:
                recipients.append(pyrage_x25519.Recipient.from_str(text))
        except Exception as exc:  # pyrage raises RecipientError, or ValueError for some forms
            raise EncryptionError(
                "encrypt_recipients holds %r, which is neither an age public key (age1...) nor an SSH public key "
                "(ssh-ed25519 or ssh-rsa): %s" % (_shown_key(text), exc), recipient=_shown_key(text))
    if not recipients:
        raise EncryptionError("encrypt_recipients is empty; give at least one age or SSH public key.")
    return recipients


def _shown_key(text):
    return text if len(text) <= 80 else text[:77] + "..."


def load_identities(identity=None, identity_file=None):
    """pyrage identities from an age identity text (``AGE-SECRET-KEY-1...`` lines; ``#``
    comments) or an OpenSSH private key, given as ``identity`` or read from ``identity_file``."""
    require_pyrage()
    source = "decrypt_identity"
    if identity_file:
        source = "decrypt_identity_file %s" % identity_file
        try:
            with open(identity_file, "rb") as handle:
                identity = handle.read().decode("utf-8", "replace")
        except OSError as exc:
            raise EncryptionError("Cannot read %s: %s." % (source, exc.strerror or exc))
    text = identity or ""
    if "PRIVATE KEY-----" in text:
        try:
            return [pyrage_ssh.Identity.from_buffer(text.encode("utf-8"))]
        except Exception as exc:
            raise EncryptionError("%s holds an SSH private key that cannot be used (%s); an encrypted one is not supported." % (source, exc))
    identities = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage_x25519.Identity.from_str(line))
        except Exception:
            raise EncryptionError("%s holds a line that is not an age secret key (AGE-SECRET-KEY-1...)." % source)
    if not identities:
        raise EncryptionError("%s holds no identity: give an age secret key (AGE-SECRET-KEY-1...) or an OpenSSH private key." % source)
    return identities


class _Worker(threading.Thread):
    """Runs one pyrage streaming call; keeps what it raised for the pipeline to re-raise."""

    def __init__(self, call, *args):
        super().__init__(daemon=True)
        self._call = call
        self._args = args
        self.error = None

    def run(self):
        try:
            self._call(*self._args)
        except BaseException as exc:  # handed to the joining thread
            self.error = exc


class EncryptingWriter:
    """A writer whose bytes reach ``target`` (with ``write``) age-encrypted to ``recipients``.
    ``close()`` ends the age stream and re-raises what the encryption raised; ``target``
    stays open."""

    def __init__(self, target, recipients):
        read_end, write_end = os.pipe()
        self._pipe = os.fdopen(write_end, "wb", buffering=0)
        self._source = os.fdopen(read_end, "rb")
        self._worker = _Worker(pyrage.encrypt_io, self._source, target, recipients)
        self._worker.start()

    def write(self, data):
        try:
            self._pipe.write(data)
        except BrokenPipeError:
            self._finish()
            raise EncryptionError("The encryption stopped taking data.")
        return len(data)

    def _finish(self):
        self._pipe.close()
        self._worker.join()
        self._source.close()
        if self._worker.error is not None:
            error = self._worker.error
            if isinstance(error, OSError):
                raise error  # the archive's file system (ENOSPC ...): the caller reports it
            raise EncryptionError("Encrypting the archive failed: %s" % error)

    def close(self):
        self._finish()

    def abort(self):
        """Stop the encryption after a failure elsewhere; raises nothing."""
        try:
            self._finish()
        except Exception:  # the failure that made the caller abort matters more
            pass


class DecryptingReader:
    """A ``read(size)`` reader of the age file read from ``raw`` (with ``read(size)``),
    decrypted with ``identities``. A wrong identity fails at the first read (the age header
    names no recipient the identities open) with EncryptionError."""

    def __init__(self, raw, identities, name):
        self._name = name
        read_end, write_end = os.pipe()
        self._sink = os.fdopen(write_end, "wb", buffering=0)
        self._pipe = os.fdopen(read_end, "rb")
        self._worker = _Worker(self._decrypt, raw, identities)
        self._worker.start()

    def _decrypt(self, raw, identities):
        try:
            pyrage.decrypt_io(raw, self._sink, identities)
        finally:
            self._sink.close()

    def read(self, size=-1):
        data = self._pipe.read(size)
        if not data:
            self._worker.join()
            self._raise()
        return data

    def _raise(self):
        error = self._worker.error
        if error is None:
            return
        if isinstance(error, BrokenPipeError):
            return  # the reader stopped early (close): not a decryption failure
        if pyrage is not None and isinstance(error, pyrage.DecryptError):
            raise EncryptionError(
                "%s cannot be decrypted with the identity given (%s): it was not encrypted to it, or it is damaged."
                % (self._name, error), check="decrypt")
        if isinstance(error, OSError) and "decryption" in str(error):
            # rage reports a chunk that fails its authentication as an I/O error.
            raise EncryptionError("%s is damaged: a part of it fails its authentication (%s)." % (self._name, error), check="decrypt")
        raise error

    def readable(self):
        return True

    def close(self):
        self._pipe.close()
        self._worker.join()
