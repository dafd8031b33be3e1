"""Non-finite numbers as Newtonsoft writes them (issue 11, point 4).

Newtonsoft.Json (used by the SDK's ``CFX/Utilities/JsonConvert.cs``, default ``FloatFormatHandling.String``)
writes ``double.NaN``, ``PositiveInfinity`` and ``NegativeInfinity`` as the strings ``"NaN"``, ``"Infinity"``
and ``"-Infinity"``; its reader also accepts them as bare tokens. A CFX event keeps them as those strings,
so every JSON written from it is RFC 8259 JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pywats_cfx import decode_cfx, parse_envelopes, parse_message
from pywats_events.codec import DecodeContext


def strict_loads(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise ValueError(f"non-RFC 8259 token {token}")

    return json.loads(text, parse_constant=refuse)


def envelope_text(value: str) -> str:
    """A UnitsTested envelope as the SDK writes it, with ``value`` spliced in as the measured Value."""
    return (
        '{"MessageName":"CFX.Production.TestAndInspection.UnitsTested","Version":"2.1",'
        '"TimeStamp":"2026-01-01T00:00:00+00:00","UniqueID":"u-1","Source":"A.B.C","Target":null,'
        '"RequestID":null,"MessageBody":{"TestedUnits":[{"UnitIdentifier":"U1","OverallResult":"Passed",'
        '"Tests":[{"TestName":"T","Result":"Passed","Measurements":[{"$type":"CFX.Structures.NumericMeasurement, CFX",'
        f'"MeasurementName":"M","MeasuredValue":{{"Value":{value},"ExpectedValue":1.0,'
        '"MinimumAcceptableValue":"-Infinity","MaximumAcceptableValue":"Infinity"}}]}]}]}}'
    )


@pytest.mark.parametrize(
    ("wire", "kept"),
    [
        ('"NaN"', "NaN"),
        ('"Infinity"', "Infinity"),
        ('"-Infinity"', "-Infinity"),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
        ("1e999", "Infinity"),
        ("-1e999", "-Infinity"),
        ("2.5e-300", 2.5e-300),
    ],
)
def test_non_finite_measurement_is_kept_as_newtonsoft_text_and_event_json_is_strict(wire: str, kept: Any) -> None:
    (ev,) = decode_cfx(envelope_text(wire).encode(), DecodeContext(origin="q"))
    m = ev.payload["tests"][0]["measurements"][0]
    assert (m["value"], m["low_limit"], m["high_limit"], m["expected_value"]) == (kept, "-Infinity", "Infinity", 1.0)
    assert strict_loads(ev.to_json())["payload"]["tests"][0]["measurements"][0]["value"] == kept


def test_non_finite_in_an_unmapped_message_stays_strict_json() -> None:
    text = (
        '{"MessageName":"CFX.Vendor.Reading","TimeStamp":"2026-01-01T00:00:00Z",'
        '"MessageBody":{"A":NaN,"B":[Infinity,-Infinity],"C":1e400,"D":"NaN"}}'
    )
    (env,) = parse_envelopes(text)
    assert env.message_body == {"A": "NaN", "B": ["Infinity", "-Infinity"], "C": "Infinity", "D": "NaN"}
    (ev,) = decode_cfx(text.encode(), DecodeContext())
    assert strict_loads(ev.to_json())["payload"]["B"] == ["Infinity", "-Infinity"]


def test_typed_model_reads_the_same_non_finite_texts() -> None:
    (env,) = parse_envelopes(envelope_text('"NaN"'))
    value = parse_message(env).tested_units[0].tests[0].measurements[0].measured_value  # type: ignore[union-attr]
    assert value.value != value.value and value.maximum_acceptable_value == float("inf")
