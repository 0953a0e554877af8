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
