"""The hot-path JSON helper (pywats_events._json): the orjson path and the standard-library fallback give
the same documents, the same refusals and the same error messages; the event decoder and the store's
row encoding run on both. The stdlib path runs in a subprocess with orjson blocked from importing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pywats_events import _json, jsonsafe
from pywats_events.codec import DecodeContext, InvalidEventError, decode_event_json

#: Documents that orjson takes, that only ``json`` takes (NaN, a 70-bit integer), and that nobody takes.
CASES = [
    '{"a": [1, 2.5, "x\\u00e9", null, true]}',
    '{"big": 1180591620717411303424, "nan": NaN, "inf": -Infinity}',
    # Integers beyond 64 bits alone: orjson 3.13 reads them as floats (no error), json keeps every digit.
    '{"big": 1180591620717411303424, "u64": 18446744073709551615, "low": -9223372036854775809}',
    '[18446744073709551616, "serial 12345678901234567890"]',
    '{"a": 1,}',
    '[1, 2',
    '',
    '{"a": 1}\n{"b": 2}',
]

PROBE = textwrap.dedent(
    """
    import json, sys
    blocked = sys.argv[1] == "blocked"
    if blocked:
        sys.modules["orjson"] = None  # import orjson now raises ImportError
    from pywats_events import _json, jsonsafe
    from pywats_events.codec import DecodeContext, InvalidEventError, decode_event_json
    out = {"orjson": _json.ORJSON, "loads": [], "rows": _json.dumps_compact([("id-\\u00e9", 'x"y', 3)])}
    for text in json.loads(sys.stdin.read()):
        try:
            out["loads"].append(["ok", repr(_json.loads(text))])
        except json.JSONDecodeError as exc:
            out["loads"].append(["error", exc.msg, exc.lineno, exc.colno])
    lines = '{"type": "a.b", "id": "1"}\\n{"type": "a.c", "id": "2"}'
    out["lines"] = [e.type for e in decode_event_json(lines.encode(), DecodeContext(origin="t"))]
    try:
        decode_event_json(b'{"type": "a.b",', DecodeContext(origin="t"))
    except InvalidEventError as exc:
        out["invalid"] = str(exc)
    print(json.dumps(out))
    """
)


def probe(mode: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, mode], input=json.dumps(CASES), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def stdlib_expectation() -> list[list[object]]:
    # json.loads with the bare NaN/Infinity tokens read as the strings "NaN"/"Infinity" (jsonsafe's rule)
    out: list[list[object]] = []
    for text in CASES:
        try:
            out.append(["ok", repr(jsonsafe.loads(text))])
        except json.JSONDecodeError as exc:
            out.append(["error", exc.msg, exc.lineno, exc.colno])
    return out


def test_with_orjson_blocked_the_stdlib_path_parses_and_refuses_as_json_does() -> None:
    got = probe("blocked")
    assert got["orjson"] is False
    assert got["loads"] == stdlib_expectation()
    assert got["lines"] == ["a.b", "a.c"]
    assert "invalid JSON" in str(got["invalid"])
    assert got["rows"] == '[["id-é","x\\"y",3]]'


def test_the_orjson_path_gives_the_same_results_as_the_stdlib_path() -> None:
    pytest.importorskip("orjson")
    with_orjson, without = probe("default"), probe("blocked")
    assert with_orjson["orjson"] is True
    # Same documents, same refusals, same messages: NaN and big integers fall back to json, errors are
    # json's; only the speed differs.
    assert with_orjson["loads"] == without["loads"] == stdlib_expectation()
    assert with_orjson["lines"] == without["lines"]
    assert with_orjson["invalid"] == without["invalid"]
    assert with_orjson["rows"] == without["rows"]


def test_environment_variable_turns_orjson_off() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from pywats_events import _json; print(_json.ORJSON)"],
        capture_output=True, text=True, timeout=60, env={**__import__("os").environ, "PYWATS_EVENTS_NO_ORJSON": "1"},
    )
    assert proc.stdout.strip() == "False", proc.stderr


def test_dumps_compact_hands_what_orjson_refuses_to_json() -> None:
    # A lone surrogate (orjson refuses it) and a non-string key (orjson refuses it) come out as json writes them.
    assert _json.dumps_compact(["\ud800"]) == json.dumps(["\ud800"], ensure_ascii=False, separators=(",", ":"))
    assert _json.dumps_compact({1: "a"}) == '{"1":"a"}'
    with pytest.raises(TypeError):
        _json.dumps_compact({"when": object()})


def test_decoder_names_the_field_on_both_paths_in_process() -> None:
    with pytest.raises(InvalidEventError, match="field 'type'"):
        decode_event_json(b'{"type": ""}', DecodeContext(origin="probe"))
