# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Command lines of the helper containers (pure logic).

One tar invocation serves backup, digest and verify, so an archive and a live volume are
streamed the same way and give the same tree digest for the same tree.
"""

from __future__ import annotations

import shlex
from typing import Iterable, List, Optional

from ansible_collections.persist.docker.plugins.module_utils._member_safety import RESERVED_PREFIX
from ansible_collections.persist.docker.plugins.module_utils._usage import FIND_FORMAT

VOLUME_MOUNT = "/volume"
# Where a copy's helper mounts the source volume (read-only) beside the destination.
SOURCE_MOUNT = "/source"
# The swap journal at the volume root (see _SWAP_SCRIPT).
JOURNAL_NAME = ".persist-journal"
RESERVED_PATTERN = "./" + RESERVED_PREFIX.decode("ascii") + "*"
# GNU tar's exit code when it wrote a complete archive but some entries changed while read.
TAR_ENTRIES_CHANGED = 1

# POSIX format; numeric owners; xattrs (every namespace readable) and ACLs; holes kept;
# hard links kept (tar's default); nanosecond mtimes (pax). Members sorted by name so the
# tree digest can be computed as the stream passes; atime and ctime left out because they
# change on every read and would make equal trees give different archives.
TAR_CREATE = [
    "tar", "--create", "--file=-", "--format=posix", "--numeric-owner",
    "--xattrs", "--xattrs-include=*", "--acls", "--sparse", "--sort=name",
    "--pax-option=delete=atime,delete=ctime",
]


def _tar_create_options(excludes: Iterable[str]) -> List[str]:
    command = list(TAR_CREATE) + ["--anchored", "--exclude=" + RESERVED_PATTERN, "--no-anchored"]
    command.extend("--exclude=" + pattern for pattern in excludes)
    return command


def tar_create_command(excludes: Iterable[str] = ()) -> List[str]:
    """Stream the whole volume mounted at VOLUME_MOUNT as a tar archive on stdout.

    ``excludes`` are GNU tar ``--exclude`` patterns, matched against member names such as
    ``./cache/tmp``. Reserved staging names at the root are always left out.
    """
    return _tar_create_options(excludes) + ["--directory=" + VOLUME_MOUNT, "."]


# One NUL-terminated record per entry: relative path, then type, mode, owner, size, mtime,
# ctime, inode and link count, then the symlink target. Any change to a file's content
# changes its ctime, which no user can set back.
FINGERPRINT_FORMAT = "%P\\0%y %m %U %G %s %T@ %C@ %i %n\\0%l\\0"


def _find_unreserved(root: str) -> str:
    """Shell text: GNU find over the volume mounted at ``root``, on its file system only, the
    reserved names at its root left out; a -printf format follows."""
    return "find %s -xdev \\( -path '%s/%s*' -prune \\) -o -printf" % (root, root, RESERVED_PREFIX.decode("ascii"))


# The exit code of fingerprint_command(when_clean=True) for a volume with reserved names at
# its root (staging trees, a journal: see _swap.check_source).
HOLDS_RESERVED = 3
_FINGERPRINT_SCRIPT = r"""
set -eu
if [ "$1" = when-clean ] && [ -n "$(find /volume -mindepth 1 -maxdepth 1 -name 'PREFIX*' -print -quit)" ]; then
    exit HOLDS_RESERVED
fi
exec FIND_UNRESERVED "$2"
""".replace("FIND_UNRESERVED", _find_unreserved(VOLUME_MOUNT)).replace("PREFIX", RESERVED_PREFIX.decode("ascii")).replace(
    "HOLDS_RESERVED", str(HOLDS_RESERVED))


def fingerprint_command(when_clean: bool = False) -> List[str]:
    """List every entry's metadata (not contents) for the cheap 'unchanged?' check. With
    ``when_clean``, exit HOLDS_RESERVED instead when the volume has reserved names at its
    root: then the listing of those (_swap.check_source) must come first, and a volume
    without them needs no helper for it."""
    return ["sh", "-c", _FINGERPRINT_SCRIPT, "sh", "when-clean" if when_clean else "always", FINGERPRINT_FORMAT]


def usage_command(include_reserved: bool = True) -> List[str]:
    """Count entries and bytes (see _usage): one short line per entry, no names. Without
    ``include_reserved``, the reserved names at the root (staging trees) are left out."""
    command = ["find", VOLUME_MOUNT, "-xdev", "-mindepth", "1"]
    if not include_reserved:
        command += ["(", "-path", VOLUME_MOUNT + "/" + RESERVED_PREFIX.decode("ascii") + "*", "-prune", ")", "-o"]
    return command + ["-printf", FIND_FORMAT]


# Extraction into a fresh staging directory inside the target volume. tar's messages go to
# a file (a helper's stdin is being written; output it cannot get rid of would stall it) and
# only their tail is shown on failure.
_TAR_EXTRACT = (
    "tar --extract --numeric-owner --same-owner --same-permissions --xattrs "
    "--xattrs-include='*' --acls"
)
# tar -x leaves what it writes to the kernel, which writes it out only when asked (the
# read-back's and the swap's sync -f, after the extraction) or when much more is dirty than a
# staging tree of a few GiB makes. So while tar extracts, the file system is synced every
# 0.3 s: the disk writes while tar and the module work, and little is left to write at the
# end (a copy of 1 GiB in a helper with its final sync: 3.6 to 3.8 s before, 2.5 to 2.7 s).
# FLUSH_WHILE starts that, FLUSHED stops it (any exit does too).
_FLUSH_WHILE = r"""
{ while sleep 0.3; do sync -f "$staging"; done; } </dev/null >/dev/null 2>&1 &
flushing_while=$!
trap 'kill "$flushing_while" 2>/dev/null || :' EXIT
"""
_FLUSHED = r"""
kill "$flushing_while" 2>/dev/null || :
"""
_EXTRACT_SCRIPT = r"""
set -eu
cd /volume
staging=.persist-staging-$1
mkdir -m 700 "$staging"
FLUSH_WHILE
if ! EXTRACT --file=- --directory="$staging" 2>/tmp/tar.log; then
    tail -c 3000 /tmp/tar.log >&2
    exit 1
fi
FLUSHED
""".replace("EXTRACT", _TAR_EXTRACT).replace("FLUSH_WHILE", _FLUSH_WHILE.strip()).replace("FLUSHED", _FLUSHED.strip())

# A copy on one engine, in one helper that mounts the source read-only at /source
# (SOURCE_MOUNT) and the destination at /volume. GNU tar streams the source with a backup's
# options (CREATE) to the module, which checks the safety rules and computes the digest as it
# passes, while tar extracts the same stream into the staging directory. Exit code
# COPY_DIFFERS says that the source changed while it was copied, or (through the API stream)
# that the staged tree does not read back as the very bytes the source reads as now.
COPY_DIFFERS = 3
_COPY_START = r"""
set -eu
cd /volume
staging=.persist-staging-$1
mkdir -m 700 "$staging"
""" + _FLUSH_WHILE
# Through the API stream: tee hands the stream both to the module (stdout) and to tar -x.
# tar stops reading at the end-of-archive marker: cat drains the padding after it, so that tee
# never writes into a closed pipe.
_COPY_TEE = r"""
mkfifo /tmp/stream
{ EXTRACT --file=- --directory="$staging" 2>/tmp/extract.log; status=$?; cat >/dev/null; exit "$status"; } </tmp/stream &
extracting=$!
{ CREATE --directory=/source . 2>/tmp/create.log || echo failed >/tmp/create.failed; } | tee /tmp/stream
"""
# Through the fast path (see _fast_path.relaying): the module hands the stream it read from
# stdout, checked, back on stdin, into tar -x; no tee (which moves 8 KiB at a time). The
# module sees the end of the stream once nothing here holds stdout open. The source's
# metadata (FINGERPRINT_FORMAT: any write changes an entry's ctime) is listed, hashed, before
# and after: an entry written meanwhile makes the copy exit COPY_DIFFERS. The module reads
# the staged tree back itself (_archive_restore.ReadBack), as a restore does.
_COPY_LISTING = r"""
listing() {
    { FIND_UNRESERVED FORMAT 2>/tmp/listing.log \
        || echo failed >/tmp/listing.failed; } | sha256sum
    if [ -e /tmp/listing.failed ]; then
        tail -c 3000 /tmp/listing.log >&2
        exit 1
    fi
}
before=$(listing)
"""
_COPY_RELAYED = r"""
exec 5<&0
{ EXTRACT --file=- --directory="$staging" 2>/tmp/extract.log; status=$?; cat >/dev/null; exit "$status"; } <&5 >/dev/null 5<&- &
extracting=$!
exec 5<&-
CREATE --directory=/source . 2>/tmp/create.log || echo failed >/tmp/create.failed
exec >&-
"""
_COPY_WAIT = r"""
extracted=0
wait "$extracting" || extracted=$?
FLUSHED
if [ -e /tmp/create.failed ]; then
    tail -c 3000 /tmp/create.log >&2
    exit 1
fi
if [ "$extracted" -ne 0 ]; then
    tail -c 3000 /tmp/extract.log >&2
    exit 1
fi
"""
_COPY_UNCHANGED = r"""
after=$(listing)
if [ "$after" != "$before" ]; then
    echo "the source changed while it was copied" >&2
    exit DIFFERS
fi
"""
# The staged files go to disk while they are read back (see _SWAP_SCRIPT: the swap waits
# for them); the read-back reads them from memory meanwhile.
_COPY_READ_BACK = r"""
sync -f "$staging" &
flushing=$!
mkfifo /tmp/again
READ_BACK --directory=/source . >/tmp/again &
if ! READ_BACK --directory="/volume/$staging" . | cmp -s /tmp/again -; then
    echo "the staged tree does not read back as the source" >&2
    exit DIFFERS
fi
wait "$flushing"
wait
"""


def _read_back_options() -> List[str]:
    """tar options for reading the source and the staged copy back to compare them byte for
    byte: those of a backup, with the sparse format 0.0 (the others name a sparse member's
    header after tar's process id) and a fixed name for extended headers (older GNU tars
    put the process id in it too). Holes stay holes: a 16 TiB sparse file costs nothing."""
    options = [option for option in _tar_create_options(()) if option != "--sparse"]
    return options + ["--sparse", "--sparse-version=0.0", "--pax-option=exthdr.name=%d/PaxHeaders/%f"]


def _quoted(options: Iterable[str]) -> str:
    return " ".join(shlex.quote(option) for option in options)


def _copy_script(*parts: str) -> str:
    return (
        "".join((_COPY_START,) + parts).replace("EXTRACT", _TAR_EXTRACT).replace("FLUSHED", _FLUSHED.strip())
        .replace("CREATE", _quoted(_tar_create_options(())))
        .replace("READ_BACK", _quoted(_read_back_options()))
        .replace("FIND_UNRESERVED", _find_unreserved(SOURCE_MOUNT))
        .replace("FORMAT", shlex.quote(FINGERPRINT_FORMAT))
        .replace("DIFFERS", str(COPY_DIFFERS))
    )


_COPY_SCRIPTS = {
    False: _copy_script(_COPY_TEE, _COPY_WAIT, _COPY_READ_BACK),
    True: _copy_script(_COPY_LISTING, _COPY_RELAYED, _COPY_WAIT, _COPY_UNCHANGED),
}


# Reading a staged tree back (restore, and copy across engines): the staged files go to disk
# meanwhile (the swap waits for them, see _SWAP_SCRIPT), and tar reads them from memory.
_STAGED_TREE_SCRIPT = r"""
set -eu
staging=/volume/.persist-staging-$1
sync -f "$staging" &
flushing=$!
CREATE --directory="$staging" .
wait "$flushing"
""".replace("CREATE", _quoted(_tar_create_options(())))

# The swap, driven by a journal so that a run killed at any point is finished by the next.
# Arguments: TOKEN MODE SECRET, and PHASE STAMP when finishing a swap a killed run left (the
# module read them from the journal and checked them against the engine's record of that
# swap; nothing here reads the journal back, whoever else may have written it).
#   replace: "aside" moves the old entries into .persist-old-TOKEN, "in" moves the staged
#            entries to the root and gives it the archive's root owner and mode.
#   merge:   "aside" copies the staged tree over the root as hard links (directories merged,
#            files replaced, entries only in the volume kept), after removing any entry whose
#            type differs (a symlink is never followed).
#   Both end ("clean") by removing the staging and old trees and giving the root the
#   archive's root mtime (STAMP, taken from the staging root before anything moved).
# Each journal line ends with a sha256 over the SECRET (kept on the engine, never in the
# volume) and the line, so that a journal someone else wrote or changed is never acted on.
# Journal files are written without following symlinks: the name is removed, then created
# exclusively (noclobber), then renamed over the journal (rename replaces a symlink itself).
_SWAP_SCRIPT = r"""
set -eu
cd /volume
token=$1 mode=$2 secret=$3 phase=${4:-} stamp=${5:-}
journal=.persist-journal
staging=.persist-staging-$token
old=.persist-old-$token
real_dir() { [ -d "$1" ] && [ ! -L "$1" ]; }
record() {
    line="$1 $token $mode $stamp"
    mac=$(printf '%s\n%s\n' "$secret" "$line" | sha256sum | cut -c1-64)
    rm -f -- "$journal.new"
    (set -C; printf '%s %s\n' "$line" "$mac" >"$journal.new")
    sync "$journal.new"
    mv -fT -- "$journal.new" "$journal"
    sync .
}
if [ -z "$phase" ]; then
    if [ -e "$journal" ] || [ -L "$journal" ]; then
        echo "a journal $journal is there already" >&2
        exit 1
    fi
    real_dir "$staging" || { echo "the staging directory $staging is missing or not a directory" >&2; exit 1; }
    # Every staged file on disk, whatever file system holds the volume, before the journal
    # lets anything of the old tree go (sync -f: the whole file system, as syncfs(2)).
    sync -f "$staging"
    # The archive's root mtime, which tar gave the staging root: moving entries changes it.
    stamp=$(stat -c %.9Y "$staging")
    record aside
    phase=aside
fi
if [ "$phase" != clean ]; then
    real_dir "$staging" || { echo "the staging directory $staging is missing or not a directory" >&2; exit 1; }
fi
if [ "$mode" = replace ]; then
    if [ "$phase" = aside ]; then
        real_dir "$old" || mkdir -m 700 -- "$old"
        for entry in * .[!.]* ..?*; do
            { [ -e "$entry" ] || [ -L "$entry" ]; } || continue
            case $entry in .persist-*) continue ;; esac
            mv -- "$entry" "$old/"
        done
        sync .
        record in
        phase=in
    fi
    if [ "$phase" = in ]; then
        for entry in "$staging"/* "$staging"/.[!.]* "$staging"/..?*; do
            { [ -e "$entry" ] || [ -L "$entry" ]; } || continue
            mv -- "$entry" ./
        done
        chown --reference="$staging" .
        chmod --reference="$staging" .
        sync .
        record clean
        phase=clean
    fi
elif [ "$phase" = aside ]; then
    (cd "$staging" && find . -mindepth 1 -exec sh -c '
        for path do
            target="/volume/$path"
            { [ -e "$target" ] || [ -L "$target" ]; } || continue
            if [ -d "$path" ] && [ ! -L "$path" ]; then
                { [ -d "$target" ] && [ ! -L "$target" ]; } || rm -rf -- "$target"
            elif [ -d "$target" ] && [ ! -L "$target" ]; then
                rm -rf -- "$target"
            fi
        done' sh {} +)
    cp -a -l -T --remove-destination "$staging" .
    # The new links are in every directory of the tree, not only the root's.
    sync -f .
    record clean
    phase=clean
fi
[ "$phase" = clean ] || { echo "unknown swap phase $phase" >&2; exit 1; }
rm -rf -- "$staging" "$old"
rm -f -- "$journal"
touch -d "@$stamp" .
sync .
"""

# "V" when the volume root holds an entry other than the reserved names, else "E"; then the
# reserved names at the root, each as "TYPE NAME" and a NUL (TYPE as find's %y), then a NUL,
# then the journal's first 4 KiB when it is a regular file (never through a symlink), or, when
# the root holds no entry at all, the tar stream of the root alone (as a backup's tar gives it).
JOURNAL_READ_LIMIT = 4096
_RESERVED_STATE_SCRIPT = r"""
set -eu
cd /volume
if [ -n "$(find . -mindepth 1 -maxdepth 1 ! -name '.persist-*' -print -quit)" ]; then printf V; else printf E; fi
find . -mindepth 1 -maxdepth 1 -name '.persist-*' -printf '%y %f\0'
printf '\0'
if [ -f .persist-journal ] && [ ! -L .persist-journal ]; then
    head -c LIMIT .persist-journal
elif [ -z "$(find . -mindepth 1 -maxdepth 1 -print -quit)" ]; then
    exec ROOT_ALONE
fi
""".replace("LIMIT", str(JOURNAL_READ_LIMIT)).replace("ROOT_ALONE", _quoted(_tar_create_options(()) + ["--no-recursion", "--directory=" + VOLUME_MOUNT, "."]))

# Remove the trees of one staged run (``.persist-staging-TOKEN``, ``.persist-old-TOKEN``),
# which only that run made: before its swap, or when a later run finds them with the
# engine's record of that run and no journal.
_CLEAN_SCRIPT = r"""
set -eu
cd /volume
rm -rf -- ".persist-staging-$1" ".persist-old-$1"
sync .
"""

# Give reserved entries that this collection cannot prove it wrote a visible name
# (DISCARDED_PREFIX, a UTC time, the name without its dot), so that nothing is deleted and a
# backup carries them; arguments: the time, then the names (checked by the module).
DISCARDED_PREFIX = "persist-discarded-"
_DISCARD_SCRIPT = r"""
set -eu
cd /volume
stamp=$1
shift
for name do
    { [ -e "$name" ] || [ -L "$name" ]; } || continue
    mv -nT -- "$name" "PREFIX$stamp-${name#.}"
done
sync .
""".replace("PREFIX", DISCARDED_PREFIX)


def extract_command(token: str) -> List[str]:
    """Extract the tar stream on stdin into /volume/.persist-staging-TOKEN."""
    return ["sh", "-c", _EXTRACT_SCRIPT, "sh", token]


def copy_command(token: str, relayed: bool = False) -> List[str]:
    """Copy the volume mounted at SOURCE_MOUNT into /volume/.persist-staging-TOKEN, the tar
    stream going to stdout and, teed or (``relayed``) as it comes back on stdin, into tar -x;
    then check that the staged tree reads back as the source (teed, see _COPY_READ_BACK) or
    that the source did not change meanwhile (``relayed``, see _COPY_LISTING)."""
    return ["sh", "-c", _COPY_SCRIPTS[relayed], "sh", token]


def staged_tree_command(token: str) -> List[str]:
    """Stream the staging tree TOKEN inside the volume at /volume as tar_create_command does,
    while its files go to disk (see _STAGED_TREE_SCRIPT)."""
    return ["sh", "-c", _STAGED_TREE_SCRIPT, "sh", token]


def swap_command(token: str, mode: str, secret: str, phase: Optional[str] = None, stamp: Optional[str] = None) -> List[str]:
    """Swap the staged tree TOKEN in (``mode`` replace or merge), or with ``phase`` and
    ``stamp`` (read from a checked journal), finish a swap that a killed run left half done."""
    arguments = [token, mode, secret]
    if phase:
        if stamp is None:
            raise AssertionError("internal error: a journal gives both")
        arguments += [phase, stamp]
    return ["sh", "-c", _SWAP_SCRIPT, "sh"] + arguments


def clean_command(token: str) -> List[str]:
    """Remove the staging and old trees of the staged run TOKEN."""
    return ["sh", "-c", _CLEAN_SCRIPT, "sh", token]


def reserved_state_command() -> List[str]:
    """List the reserved names at the volume root with their types, then the journal (see
    _RESERVED_STATE_SCRIPT)."""
    return ["sh", "-c", _RESERVED_STATE_SCRIPT, "sh"]


def discard_command(stamp: str, names: Iterable[str]) -> List[str]:
    """Rename the reserved entries ``names`` at the volume root to visible names."""
    return ["sh", "-c", _DISCARD_SCRIPT, "sh", stamp] + list(names)
