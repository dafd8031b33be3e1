"""Id-prefix lookup (``Store.event_ids_with_prefix`` / ``dead_letter_ids_with_prefix``) and its use by
``resolve_ids`` on every store backend, and the newest-first page window."""

from __future__ import annotations

import pytest

from pywats_events.errors import AmbiguousIdError, UnknownIdError
from pywats_events.event import Event
from pywats_events.id_prefix import resolve_ids, short_ids
from pywats_events.paging import Page
from pywats_events.store import DeadLetterEntry, Store

IDS = ["abcd-1", "abcd-2", "abce-3", "ABCD-4", "a%cd-5", "a_cd-6", "abc"]


async def test_event_prefix_lookup_is_literal_case_sensitive_and_ascending(store: Store) -> None:
    await store.append_events([Event(id=i, type="test.result", source="FCT1") for i in IDS])
    assert await store.event_ids_with_prefix("abcd", 5) == ["abcd-1", "abcd-2"]
    assert await store.event_ids_with_prefix("abc", 5) == ["abc", "abcd-1", "abcd-2", "abce-3"]
    assert await store.event_ids_with_prefix("abcd", 1) == ["abcd-1"]
    assert await store.event_ids_with_prefix("a%cd", 5) == ["a%cd-5"]  # % is no wildcard
    assert await store.event_ids_with_prefix("a_cd", 5) == ["a_cd-6"]  # nor is _
    assert await store.event_ids_with_prefix("ABCD", 5) == ["ABCD-4"]
    assert await store.event_ids_with_prefix("zzzz", 5) == []


async def test_resolve_ids_takes_exact_and_unique_prefixes_and_refuses_the_rest(store: Store) -> None:
    await store.add_dead_letters(
        [DeadLetterEntry(id=i, reason="failed", event=None, handler="mes", error_type="E") for i in IDS]
    )
    lookup = store.dead_letter_ids_with_prefix
    assert await resolve_ids(["abc", "abce", "abcd-2", "abce-3"], lookup, "entry") == ["abc", "abce-3", "abcd-2"]
    with pytest.raises(AmbiguousIdError, match=r"'abcd' matches more than one entry: abcd-1, abcd-2"):
        await resolve_ids(["abcd"], lookup, "entry")
    with pytest.raises(UnknownIdError, match="too short"):
        await resolve_ids(["a_"], lookup, "entry")
    with pytest.raises(UnknownIdError, match="no entry with id or id prefix 'nope'"):
        await resolve_ids(["abce-3", "nope"], lookup, "entry")


def test_short_ids_grow_until_the_page_is_unique() -> None:
    assert short_ids(["12345678aa", "12345678bb"]) == 9
    assert short_ids(["1234567890", "abcdefgh12"]) == 8
    assert short_ids([]) == 8


@pytest.mark.parametrize(
    ("total", "limit", "offset", "window", "hint"),
    [
        (1234, 50, 0, (1184, 50), "showing 1-50 of 1,234 (newest first); --offset 50 for more"),
        (1234, 50, 1200, (0, 34), "showing 1,201-1,234 of 1,234 (newest first)"),
        (10, 50, 0, (0, 10), "showing all 10 (newest first)"),
        (10, 5, 10, (0, 0), "nothing at offset 10 (10 in all)"),
        (0, 5, 0, (0, 0), "nothing to show"),
    ],
)
def test_newest_first_page_window_and_hint(
    total: int, limit: int, offset: int, window: tuple[int, int], hint: str
) -> None:
    page = Page(total, limit, offset)
    assert page.store_window() == window
    assert page.more_hint(window[1]) == hint
