# -*- coding: utf-8 -*-
# Copyright: persist.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Private module_utils of persist.docker: not a public API, may change without notice.
"""Words for messages. Pure logic."""

from __future__ import annotations

from typing import Optional


def counted(number: int, singular: str, plural: Optional[str] = None) -> str:
    """``1 entry``, ``2 entries``: a count with the right form of the noun."""
    return "%d %s" % (number, singular if number == 1 else (plural or singular + "s"))


# What GNU tar (and the kernel, through it) says when a file system has no room left.
_NO_ROOM = ("Wrote only", "No space left on device", "Disk quota exceeded")


def no_room(message: str, volume: str, need: str) -> str:
    """The sentence that explains a helper's failure ``message`` when GNU tar ran out of room
    in ``volume``, else ''; ``need`` says how much the staging tree needs free there."""
    if not any(words in message for words in _NO_ROOM):
        return ""
    return (" Volume %s has no room left: the staging tree needs %s free beside the volume's current entries; make "
            "room, or use a larger volume." % (volume, need))


def sized(count: int) -> str:
    """``3.0 MiB (3145728 bytes)``: a size in bytes, readable and exact."""
    value, unit = float(count), "bytes"
    for name in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    if unit == "bytes":
        return counted(count, "byte")
    return "%.1f %s (%d bytes)" % (value, unit, count)
