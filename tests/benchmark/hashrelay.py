# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sha256 of a stream, for the ``verified-*`` rows: the hashing that the modules'
guarantees add to the limit's commands, done as cheaply as this machine allows.

    ... | python hashrelay.py relay DIGEST_FILE | ...        pass the stream on, write its sha256 to DIGEST_FILE
    ... | python hashrelay.py check EXPECTED_HEX             read it to the end, exit 1 unless its sha256 is EXPECTED_HEX
    ... | python hashrelay.py relay-check EXPECTED_HEX | ...  pass it on, and exit 1 at its end unless it matches

It reads and writes 1 MiB at a time with hashlib's sha256 (OpenSSL's, as the modules use;
coreutils' ``sha256sum`` does not use this CPU's SHA extensions, and ``tee`` into it moves
8 KiB per call). A mismatch exits 1, so that the row's pipeline fails (``pipefail``): a row
that skipped a check would be a fast wrong answer.
"""

from __future__ import annotations

import hashlib
import sys

CHUNK = 1 << 20


def main():
    mode, argument = sys.argv[1], sys.argv[2]
    passes_on = mode in ("relay", "relay-check")
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(0, "rb", buffering=0, closefd=False) as source, open(1, "wb", buffering=0, closefd=False) as sink:
        while True:
            count = source.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            written = 0
            while passes_on and written < count:
                written += sink.write(view[written:count])
    found = digest.hexdigest()
    if mode == "relay":
        with open(argument, "w") as output:
            output.write(found + "\n")
        return 0
    if found != argument:
        sys.stderr.write("hashrelay: sha256 %s, expected %s\n" % (found, argument))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
