"""The OpenAPI document agrees with the pydantic models that validate the request bodies.

The hand-written document once refused event types the model accepts (``^[a-zA-Z0-9_][a-zA-Z0-9_.:-]*$``
against the model's ``^[^.\\s][^\\s]*$``); these tests fail on any such disagreement, in either direction."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, ValidationError
from schemathesis import GenerationMode

from pywats_events import Event
from pywats_events.http import HTTPSettings
from pywats_events.http.openapi import MODEL_SCHEMAS, build_openapi, portable_pattern, to_openapi_schema


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi(HTTPSettings(admin_token="t"))


def _model_document(document: dict[str, Any], component: str) -> dict[str, Any]:
    """A one-operation document whose body is the component, with the real document's components."""
    return {
        "openapi": "3.0.3",
        "info": {"title": component, "version": "1"},
        "paths": {
            "/body": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}
                        },
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": document["components"],
    }


def _validate(model: type[BaseModel], body: Any) -> None:
    if model is Event:
        Event.from_json_dict(body)  # the app's way in: ignores the derived `category`
    else:
        model.model_validate(body)


@pytest.mark.parametrize("component", sorted(MODEL_SCHEMAS))
def test_every_body_the_document_allows_is_accepted_by_the_model(document: dict[str, Any], component: str) -> None:
    model = MODEL_SCHEMAS[component]
    operation = schemathesis.openapi.from_dict(_model_document(document, component))["/body"]["POST"]
    seen = []

    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        seen.append(case.body)
        try:
            _validate(model, case.body)
        except ValidationError as exc:
            raise AssertionError(f"the document allows {case.body!r}, the model refuses it: {exc}") from exc

    check()
    assert seen


def test_every_event_the_document_refuses_is_refused_by_the_model(document: dict[str, Any]) -> None:
    operation = schemathesis.openapi.from_dict(_model_document(document, "Event"))["/body"]["POST"]
    refused = []

    @given(case=operation.as_strategy(GenerationMode.NEGATIVE))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        body = case.body
        if isinstance(body, dict) and "event_type" in body and "type" not in body:
            return  # the model's documented alias for `type`; the document names `type` only
        if isinstance(body, dict) and "category" in body:
            return  # derived from `type`: from_json_dict ignores it on input, as documented
        with pytest.raises((ValidationError, TypeError)):
            Event.from_json_dict(body)
        refused.append(body)

    check()
    assert refused


def test_the_event_type_pattern_is_the_models(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Event"]
    pattern = schema["properties"]["type"]["pattern"]
    model_patterns = [m.pattern for m in Event.model_fields["type"].metadata if hasattr(m, "pattern")]
    assert [portable_pattern(p) for p in model_patterns] == [pattern]
    # Types the old hand-written pattern refused and the model accepts, and types both refuse; U+0085 and
    # U+3000 are white space to the model's engine but not to ECMA-262's \s, U+FEFF the other way round.
    for accepted in ("CFX.Production.WorkStarted", "wats/test.result", "prüfung.ergebnis", "a+b@c", "a\ufeff"):
        assert re.search(pattern, accepted), accepted
        Event(type=accepted)
    for refused in (".leading-dot", "with space", "tab\tin", "nel\x85", "ideo\u3000"):
        assert not re.search(pattern, refused), refused
        with pytest.raises(ValidationError):
            Event(type=refused)


def test_event_schema_names_every_model_field_and_only_those(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Event"]
    assert set(schema["properties"]) == set(Event.model_fields) | {"category"}
    assert schema["properties"]["category"]["readOnly"] is True
    assert schema["required"] == [n for n, f in Event.model_fields.items() if f.is_required()]
    assert schema["additionalProperties"] is False
    assert document["components"]["schemas"]["Severity"]["enum"] == ["info", "warning", "error", "critical"]
    # pydantic's nullable form turned into OpenAPI 3.0's
    assert schema["properties"]["correlation_id"] == {"type": "string", "default": None, "nullable": True}


def test_ingest_bodies_reference_the_generated_components(document: dict[str, Any]) -> None:
    events = document["paths"]["/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/Event"} in events["oneOf"]
    lab = document["paths"]["/api/v2.0/EventService"]["post"]["requestBody"]["content"]["application/json"]
    refs = {o.get("$ref") for o in lab["schema"]["anyOf"]}
    assert {"#/components/schemas/LabEventMessage", "#/components/schemas/ModuleStatusUpdateEvent"} <= refs


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "$ref" in value:
                refs.add(value["$ref"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(document)
    names = {r.removeprefix("#/components/schemas/") for r in refs}
    assert names <= set(document["components"]["schemas"]), names - set(document["components"]["schemas"])
    assert "$defs" not in str(document)


def test_white_space_is_spelled_out_so_every_regex_engine_agrees() -> None:
    spelled = portable_pattern(r"^[^.\s]\s\S\\s$")
    assert "\\s" not in spelled.replace("\\\\s", "")
    for engine_space in ("\x85", "\u3000", " "):
        assert re.fullmatch(spelled, f"a{engine_space}b\\s")
    assert not re.fullmatch(spelled, "a\ufeffb\\s")  # not White_Space
    with pytest.raises(ValueError, match="inside a character class"):
        portable_pattern(r"[\S]")


def test_json_schema_constructs_become_their_openapi_3_0_forms() -> None:
    assert to_openapi_schema({"anyOf": [{"type": "integer"}, {"type": "null"}], "title": "X"}) == {
        "type": "integer",
        "nullable": True,
    }
    assert to_openapi_schema({"anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}]}) == {
        "allOf": [{"$ref": "#/components/schemas/A"}],
        "nullable": True,
    }
    assert to_openapi_schema({"type": "integer", "exclusiveMinimum": 0}) == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
    }
    assert to_openapi_schema({"const": "x", "examples": ["x"]}) == {"enum": ["x"], "example": "x"}
    assert to_openapi_schema({"$ref": "#/components/schemas/A", "default": "a"}) == {
        "allOf": [{"$ref": "#/components/schemas/A"}],
        "default": "a",
    }
    with pytest.raises(ValueError, match="prefixItems"):
        to_openapi_schema({"type": "array", "prefixItems": [{"type": "string"}]})


@pytest.mark.parametrize("admin", [True, False])
def test_document_is_valid_openapi_3_0(admin: bool) -> None:
    # The OpenAPI 3.0 meta-schema as schemathesis ships it (the one it checks documents with).
    import jsonschema_rs
    from schemathesis.specs.openapi.definitions import OPENAPI_30

    document = build_openapi(HTTPSettings(admin_token="t" if admin else None))
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in jsonschema_rs.validator_for(
        OPENAPI_30
    ).iter_errors(document)]
    assert not errors, errors[:5]


def test_cli_writes_the_document_the_server_would_serve(tmp_path: Path) -> None:
    config = tmp_path / "pywats-events.toml"
    config.write_text('[http]\nadmin_token = "an-admin-token-long-enough-0123456789"\n')
    cli = str(Path(sys.executable).parent / "pywats-events")
    done = subprocess.run(
        [cli, "docs", "openapi", "--config", str(config)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout)
    assert served == json.loads(json.dumps(build_openapi(HTTPSettings(admin_token="x"))))
    assert "an-admin-token" not in done.stdout
