"""Reading and writing CFX envelopes: forms, errors, limits."""

from __future__ import annotations

import gzip
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywats_cfx import (
    CFXDecodeError,
    CFXEnvelope,
    decode_cfx,
    encode_envelope,
    envelope_to_bytes,
    parse_envelopes,
)
from pywats_cfx.errors import (
    InvalidFieldError,
    InvalidGzipError,
    InvalidJSONError,
    InvalidUTF8Error,
    MissingFieldError,
    NestingTooDeepError,
    NotAnObjectError,
)
from pywats_events.codec import DecodeContext
from pywats_events.errors import DecodeError

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "cfx"
HEARTBEAT = (SAMPLES / "CFX.Heartbeat__1.json").read_bytes()


def test_gzip_is_detected_by_content_not_name() -> None:
    plain = parse_envelopes(HEARTBEAT)
    assert parse_envelopes(gzip.compress(HEARTBEAT), origin="no-suffix.json") == plain
    assert decode_cfx(gzip.compress(HEARTBEAT), DecodeContext())[0].id == plain[0].unique_id


def test_corrupt_gzip_is_a_cfx_error() -> None:
    with pytest.raises(InvalidGzipError):
        parse_envelopes(gzip.compress(HEARTBEAT)[:-12])


def test_batch_array_gives_every_envelope_in_order() -> None:
    names = ["CFX.Heartbeat__1", "CFX.ResourcePerformance.FaultOccurred__1", "CFX.Production.WorkStarted__1"]
    batch = "[" + ",".join((SAMPLES / f"{n}.json").read_text() for n in names) + "]"
    envs = parse_envelopes(batch.encode())
    assert [e.message_name for e in envs] == [n.split("__")[0] for n in names]
    events = decode_cfx(gzip.compress(batch.encode()), DecodeContext(origin="q"))
    assert [e.type for e in events] == ["system.heartbeat", "asset.fault", "production.work_started"]
    assert parse_envelopes(b"[]") == []


def test_member_names_are_case_insensitive_and_type_members_ignored() -> None:
    wire = json.loads(HEARTBEAT)
    odd = {k.upper() if i % 2 else k.lower(): v for i, (k, v) in enumerate(wire.items())}
    odd["$type"] = "CFX.CFXEnvelope, CFX"
    odd["messagebody"] = {"$type": "CFX.Heartbeat, CFX", "cfxhandle": "A.B.C", "HEARTBEATFREQUENCY": "00:00:30"}
    env = parse_envelopes(json.dumps(odd).encode())[0]
    assert env.message_name == "CFX.Heartbeat" and env.unique_id == wire["UniqueID"]
    ev = decode_cfx(json.dumps(odd).encode(), DecodeContext())[0]
    assert ev.payload["handle"] == "A.B.C" and ev.payload["heartbeat_frequency_s"] == 30.0


def test_timestamp_is_converted_to_utc() -> None:
    env = parse_envelopes(HEARTBEAT)[0]
    assert env.time_stamp.tzinfo is UTC
    assert env.time_stamp == datetime.fromisoformat(json.loads(HEARTBEAT)["TimeStamp"])


def test_fast_path_equals_model_validation() -> None:
    for path in sorted(SAMPLES.glob("*.json")):
        fast = parse_envelopes(path.read_bytes())[0]
        slow = CFXEnvelope.model_validate(json.loads(path.read_bytes()))
        assert fast == slow and fast.model_fields_set == slow.model_fields_set


def test_encode_and_bytes_round_trip_as_the_sdk_writes() -> None:
    stamp = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    wire = encode_envelope("CFX.Heartbeat", {"CFXHandle": "A.B.C"}, source="A.B.C", timestamp=stamp)
    assert list(wire) == [
        "MessageName",
        "Version",
        "TimeStamp",
        "UniqueID",
        "Source",
        "Target",
        "RequestID",
        "MessageBody",
    ]
    assert wire["Target"] is None and wire["Version"] == "2.1"
    raw = envelope_to_bytes(wire)
    assert b'"Target":null' in raw
    env = parse_envelopes(raw)[0]
    assert env.time_stamp == stamp and env.unique_id == wire["UniqueID"]
    assert envelope_to_bytes(env, gzip=True) == envelope_to_bytes(wire, gzip=True)
    assert parse_envelopes(envelope_to_bytes(env, gzip=True)) == [env]


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", InvalidJSONError, "empty"),
        (b'{"MessageName": "CFX.Heartbeat",', InvalidJSONError, "line 1"),
        (b'"just a string"', NotAnObjectError, "string"),
        (b"[1, 2]", NotAnObjectError, "number"),
        (b'{"MessageBody": {}}', MissingFieldError, "MessageName"),
        (b'{"MessageName": "CFX.Heartbeat"}', MissingFieldError, "MessageBody"),
        (b'{"MessageName": "CFX.Heartbeat", "MessageBody": null}', MissingFieldError, "MessageBody"),
        (b'{"MessageName": "CFX.Heartbeat", "MessageBody": []}', InvalidFieldError, "MessageBody"),
        (b'{"MessageName": 5, "MessageBody": {}}', InvalidFieldError, "MessageName"),
        (b'{"MessageName": "has space", "MessageBody": {}}', InvalidFieldError, "MessageName"),
        (b'{"MessageName": "X", "MessageBody": {}, "TimeStamp": "yesterday"}', InvalidFieldError, "TimeStamp"),
        (b'{"MessageName": "X", "MessageBody": {}, "UniqueID": 7}', InvalidFieldError, "UniqueID"),
        (b'{"MessageName": "X", "MessageBody": {}, "Source": ["a"]}', InvalidFieldError, "Source"),
        (b'{"MessageName": "\xff\xfe", "MessageBody": {}}', InvalidUTF8Error, "byte 17"),
        (b'{"a": ' + b"1" * 5000 + b"}", InvalidJSONError, "invalid JSON"),
    ],
)
def test_bad_input_raises_the_specific_error(data: bytes, error: type[CFXDecodeError], words: str) -> None:
    with pytest.raises(error) as info:
        decode_cfx(data, DecodeContext(origin="queue/cfx"))
    assert isinstance(info.value, DecodeError)
    assert words in str(info.value) and "queue/cfx" in str(info.value)


def test_batch_errors_name_the_item() -> None:
    with pytest.raises(MissingFieldError) as info:
        parse_envelopes(b"[" + HEARTBEAT + b', {"MessageName": "X"}]', origin="f.json")
    assert info.value.where == "f.json[1]"


def test_deep_nesting_is_refused_before_parsing() -> None:
    deep = b'{"MessageName": "X", "MessageBody": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}"
    with pytest.raises(NestingTooDeepError):
        parse_envelopes(deep)
    assert parse_envelopes(deep, max_depth=100)[0].message_name == "X"
    # Brackets inside strings do not count.
    text = b'{"MessageName": "X", "MessageBody": {"s": "' + b"[{" * 500 + b'"}}'
    assert parse_envelopes(text)[0].message_body["s"].startswith("[{")


@pytest.mark.parametrize(
    "data",
    [
        b"[" * (5 * 1024 * 1024),
        b"[" * (2 * 1024 * 1024) + b"]" * (2 * 1024 * 1024),
        b'{"a":"' + b"x" * (5 * 1024 * 1024),
        b'["' + b'\\"' * (2 * 1024 * 1024),
        b"[" + b"1," * (2 * 1024 * 1024) + b"1]",
    ],
    ids=["open-brackets", "balanced-deep", "unterminated-string", "escaped-quotes", "wide-array"],
)
def test_five_megabyte_input_answers_within_seconds(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(CFXDecodeError):
        decode_cfx(data, DecodeContext(origin="big"))
    assert time.perf_counter() - started < 5.0


def test_five_megabyte_valid_batch_passes_within_seconds() -> None:
    envelope = (SAMPLES / "CFX.Production.TestAndInspection.UnitsTested__1.json").read_bytes()
    count = 5 * 1024 * 1024 // len(envelope)
    batch = b"[" + b",".join([envelope] * count) + b"]"
    started = time.perf_counter()
    events = decode_cfx(batch, DecodeContext())
    assert len(events) == 2 * count
    assert time.perf_counter() - started < 10.0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_decode_or_raise_a_cfx_error(data: bytes) -> None:
    try:
        decode_cfx(data, DecodeContext())
    except CFXDecodeError:
        pass


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "CFX.Production.TestAndInspection.UnitsTested",
            "CFX.Production.TestAndInspection.UnitsInspected",
            "CFX.Production.WorkStarted",
            "CFX.Production.Assembly.MaterialsInstalled",
            "CFX.Materials.Storage.MaterialsLoaded",
            "CFX.ResourcePerformance.FaultOccurred",
            "CFX.ResourcePerformance.StationStateChanged",
            "CFX.Heartbeat",
            "CFX.Something.Else",
        ]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "TestedUnits",
                "InspectedUnits",
                "Units",
                "InstalledMaterials",
                "Materials",
                "Fault",
                "NewState",
                "OldState",
                "OldStateDuration",
                "CFXHandle",
                "TransactionID",
                "TestMethod",
                "Tester",
                "x",
            ]
        ),
        _json,
        max_size=5,
    ),
)
def test_arbitrary_bodies_decode_or_raise_a_cfx_error(name: str, body: dict[str, object]) -> None:
    data = envelope_to_bytes(encode_envelope(name, body, source="A.B.C"))
    try:
        decode_cfx(data, DecodeContext())
    except CFXDecodeError:
        pass
