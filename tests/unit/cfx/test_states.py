"""SEMI E10 state codes as CFX writes them."""

from __future__ import annotations

import pytest

from pywats_cfx import CFXDecodeError, state_category, state_code, state_name
from pywats_cfx.errors import InvalidResourceStateError


@pytest.mark.parametrize(
    ("value", "code"),
    [(2200, 2200), ("1100", 1100), (" 5300 ", 5300), ("22A0", 2201), ("22b0", 2202), (4300.0, 4300)],
)
def test_state_code_accepts_number_numeric_string_and_legacy_codes(value: object, code: int) -> None:
    assert state_code(value) == code


@pytest.mark.parametrize("value", [None, True, "", "PRD_Bogus", "22C0", 999, 7000, "1e3", 12.5, [1100], "١١٠٠"])
def test_state_code_refuses_garbage_with_a_decode_error(value: object) -> None:
    with pytest.raises(InvalidResourceStateError) as info:
        state_code(value)
    assert isinstance(info.value, CFXDecodeError)


def test_names_and_categories_follow_the_cfx_table() -> None:
    assert state_name(2200) == "SBY_NoProduct"
    assert state_name(2201) == "SBY_NoProductBlocked"
    assert state_name(5300) == "USD_Repair"
    assert state_name(2250) == "SBY_2250"
    assert [state_category(c) for c in (1100, 2202, 3000, 4500, 5600, 6500)] == [
        "PRD",
        "SBY",
        "ENG",
        "SDT",
        "USD",
        "NST",
    ]
    with pytest.raises(CFXDecodeError):
        state_category(9000)
