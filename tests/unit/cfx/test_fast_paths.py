"""The decode hot path's shortcuts give what the checked path gives: orjson parsing, unvalidated events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pywats_cfx import decode_cfx, parse_envelopes
from pywats_cfx import envelope as envelope_module
from pywats_cfx.adapters import envelope_to_events
from pywats_cfx.errors import InvalidMessageBodyError
from pywats_events.codec import DecodeContext
from pywats_events.event import Event
from tests.cfx_samples import VALID

needs_orjson = pytest.mark.skipif(envelope_module._orjson_loads is None, reason="orjson not in use")


def _events(raw: bytes) -> list[Event]:
    return decode_cfx(raw, DecodeContext(origin="t", source="Hint.X", headers={"routing_key": "rk", "n": 1}))


@needs_orjson
def test_orjson_and_stdlib_parse_every_sample_to_the_same_events(monkeypatch: pytest.MonkeyPatch) -> None:
    bodies = [p.read_bytes() for p in VALID]
    fast = [[e.to_json() for e in _events(b)] for b in bodies]
    monkeypatch.setattr(envelope_module, "_orjson_loads", None)
    slow = [[e.to_json() for e in _events(b)] for b in bodies]
    assert fast == slow


@needs_orjson
@pytest.mark.parametrize(
    "literal",
    ["123456789012345678901234567890", "-9223372036854775809", "18446744073709551616"],
)
def test_integers_beyond_64_bits_stay_exact_integers(literal: str) -> None:
    # orjson turns these into floats; the decoder must not let it see them.
    raw = (
        '{"MessageName":"Vendor.Custom","TimeStamp":"2024-01-01T00:00:00Z","UniqueID":"u1",'
        f'"MessageBody":{{"Counter":{literal}}}}}'
    ).encode()
    (env,) = parse_envelopes(raw)
    assert env.message_body["Counter"] == int(literal)
    assert type(env.message_body["Counter"]) is int
    assert _events(raw)[0].payload["Counter"] == int(literal)


@needs_orjson
def test_what_orjson_refuses_is_read_as_without_it() -> None:
    raw = (
        b'{"MessageName":"Vendor.Custom","TimeStamp":"2024-01-01T00:00:00Z","UniqueID":"u1",'
        b'"MessageBody":{"A":NaN,"B":1e999,"C":"\\ud800"}}'
    )
    (env,) = parse_envelopes(raw)
    assert env.message_body == {"A": "NaN", "B": "Infinity", "C": "\ud800"}


@pytest.mark.parametrize("path", VALID[::7], ids=lambda p: p.stem)
def test_unvalidated_events_equal_validated_ones(path: Path) -> None:
    for event in _events(path.read_bytes()):
        checked = Event.from_json_dict(event.to_json_dict())
        assert checked == event
        assert checked.to_json() == event.to_json()
        assert type(event.type) is str and type(event.id) is str
        assert json.loads(event.to_json())["type"] == event.type


def test_header_names_that_are_not_strings_are_still_refused() -> None:
    (env,) = parse_envelopes((Path(VALID[0])).read_bytes())
    with pytest.raises(InvalidMessageBodyError, match="cannot build the event"):
        envelope_to_events(env, headers={1: "x"}, origin="t")  # type: ignore[dict-item]
