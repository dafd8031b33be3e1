"""Pages of a listing shown newest first, on a store that lists oldest first.

The store's listings (``Store.query_events``, ``Store.list_dead_letters``) are ordered oldest first with
``limit``/``offset``; an operator wants the newest on top. A page ``offset``..``offset + limit`` counted
from the newest is the same rows as a window counted from the oldest, reversed, so no second ordering is
needed in every store.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Page"]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing.

    Attributes:
        total: rows matching the filters (count).
        limit: rows per page (count, >= 1). offset: rows skipped from the start of the order (count, >= 0).
        newest_first: order of the page as shown.
    """

    total: int
    limit: int
    offset: int
    newest_first: bool = True

    def store_window(self) -> tuple[int, int]:
        """``(offset, limit)`` to ask an oldest-first store for; ``limit`` 0 means the page is empty."""
        if not self.newest_first:
            return self.offset, self.limit
        end = self.total - self.offset
        if end <= 0:
            return 0, 0
        start = max(0, end - self.limit)
        return start, end - start

    def more_hint(self, shown: int) -> str:
        """``showing 50 of 1,234 (newest first); --offset 50 for more``, or ``showing all 12`` and the like."""
        order = "newest first" if self.newest_first else "oldest first"
        if self.total == 0:
            return "nothing to show"
        if shown == 0:
            return f"nothing at offset {self.offset:,} ({self.total:,} in all)"
        first = self.offset + 1
        last = self.offset + shown
        if first == 1 and last >= self.total:
            return f"showing all {self.total:,} ({order})"
        text = f"showing {first:,}-{last:,} of {self.total:,} ({order})"
        if last < self.total:
            text += f"; --offset {last} for more"
        return text
