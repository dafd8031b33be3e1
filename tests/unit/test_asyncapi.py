"""``pywats-events docs asyncapi``: the AsyncAPI 3.0 document of a configuration with AMQP (CFX), MQTT and
NATS transports. No AsyncAPI JSON schema ships in a package here, so the structure is checked against the
rules of AsyncAPI 3.0.0 that a reader relies on: every reference resolves, operations point at messages of
their own channel, every address expression has its parameter, payloads validate real messages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from pywats_events import Event, asyncapi
from pywats_events.asyncapi import (
    AsyncAPIPart,
    build_asyncapi,
    find_documenter,
    register_documenter,
    template_address,
)
from pywats_events.config import load_settings
from pywats_events.errors import ConfigError

CONFIG = """
[[transports]]
kind = "cfx"
name = "line1"
url = "amqp://pywats:s3cret-pw@broker.line1:5672/line1"
exchange = "cfx.line1"
queue = "pywats.line1"
binding_keys = ["#.CFX.Production.#", "#.CFX.ResourcePerformance.#"]
handle = "pyWATS.Line1.1"
decoder = "auto"

[[transports]]
kind = "mqtt"
name = "lab"
host = "mqtt.lab"
port = 8883
publish_topic = "pywats/{category}/{type}"
publish_qos = 2
[transports.tls]
ca_file = "ca.pem"
[[transports.rules]]
topic = "stations/{station}/results"
type = "test.result"
source = "{station}"
subjects = ["{station}"]
[[transports.rules]]
topic = "sensors/+/#"
type = "sensor.reading"
decoder = "text"

[[transports]]
kind = "nats"
name = "plant"
servers = ["nats://nats1:4222", "tls://nats2:4222"]
stream = "LINE"
publish_subject = "pywats.{category}.{type}"
[[transports.rules]]
subject = "line1.stations.{station}.results"
type = "test.result"
[[transports.rules]]
subject = "line1.cfx.>"
decoder = "cfx"

[[transports]]
kind = "file"
path = "inbox"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "ca.pem").write_text("not read when documenting")
    path = tmp_path / "pywats-events.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def document(config: Path) -> dict[str, Any]:
    return build_asyncapi(load_settings(config))


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        return ([value["$ref"]] if "$ref" in value else []) + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for token in ref[2:].split("/"):
        assert isinstance(node, dict) and token in node, f"{ref} does not resolve (at {token!r})"
        node = node[token]
    return node


def test_document_has_the_asyncapi_3_shape_and_every_reference_resolves(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and document["info"]["version"]
    for ref in _refs(document):
        _resolve(document, ref)
    key = re.compile(r"^[A-Za-z0-9_\-]+$")  # AsyncAPI 3.0: component and map keys
    for section in ("servers", "channels", "operations"):
        assert document[section], section
        assert all(key.match(k) for k in document[section]), section
    assert all(key.match(k) for k in document["components"]["messages"])


def test_every_transport_kind_contributes_servers_channels_and_operations(document: dict[str, Any]) -> None:
    servers = document["servers"]
    assert servers["line1-amqp"] == {
        "host": "broker.line1:5672",
        "protocol": "amqp",
        "protocolVersion": "0.9.1",
        "pathname": "/line1",
        "description": servers["line1-amqp"]["description"],
    }
    assert "s3cret-pw" not in json.dumps(document)  # the broker password never reaches the document
    assert servers["lab-mqtt"]["protocol"] == "secure-mqtt" and servers["lab-mqtt"]["host"] == "mqtt.lab:8883"
    assert {servers["plant-nats1"]["host"], servers["plant-nats2"]["host"]} == {"nats1:4222", "nats2:4222"}
    channels = document["channels"]
    assert channels["line1-queue"]["address"] == "pywats.line1"
    assert channels["line1-queue"]["bindings"]["amqp"]["is"] == "queue"
    assert "'#.CFX.Production.#'" in channels["line1-queue"]["description"]
    publish = channels["line1-publish"]
    assert publish["address"] == "pyWATS.Line1.1.{messageName}"
    assert publish["bindings"]["amqp"]["exchange"]["name"] == "cfx.line1"
    assert channels["lab-rule1"]["address"] == "stations/{station}/results"
    assert channels["lab-rule1"]["x-pywats-event"] == {
        "type": "test.result",
        "source": "{station}",
        "subjects": ["{station}"],
    }
    assert channels["lab-rule2"]["address"] == "sensors/{level2}/{level3}"
    assert channels["plant-rule1"]["address"] == "line1.stations.{station}.results"
    assert channels["plant-rule2"]["address"] == "line1.cfx.{level3}"
    assert channels["plant-publish"]["address"] == "pywats.{category}.{type}"
    actions = {op_id: op["action"] for op_id, op in document["operations"].items()}
    assert actions["line1-receive"] == "receive" and actions["line1-send"] == "send"
    assert actions["lab-rule1-receive"] == "receive" and actions["lab-publish-send"] == "send"
    assert actions["plant-rule2-receive"] == "receive" and actions["plant-publish-send"] == "send"
    assert document["operations"]["lab-publish-send"]["bindings"]["mqtt"]["qos"] == 2
    # the drop folder has no broker channels, and says so
    assert "file3 (file)" in document["info"]["description"]


def test_operations_use_messages_of_their_own_channel(document: dict[str, Any]) -> None:
    for op_id, op in document["operations"].items():
        assert op["action"] in ("send", "receive"), op_id
        channel_ref = op["channel"]["$ref"]
        assert op["messages"], op_id
        for message in op["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), (op_id, message)


def test_every_address_expression_has_its_parameter_and_no_other(document: dict[str, Any]) -> None:
    for channel_id, channel in document["channels"].items():
        expressions = set(re.findall(r"\{([^{}]+)\}", channel["address"]))
        assert expressions == set(channel.get("parameters", {})), channel_id
        assert not any(c in channel["address"] for c in "+#*>"), channel_id  # no wildcard left in an address


def _payload_validator(document: dict[str, Any], message: str) -> Any:
    payload = document["components"]["messages"][message]["payload"]
    return jsonschema_rs.Draft7Validator({**payload, "components": document["components"]})


def test_message_payloads_validate_the_messages_the_transports_really_carry(document: dict[str, Any]) -> None:
    event = _payload_validator(document, "Event")
    sample = Event(type="test.result", source="Station1", payload={"passed": True}).to_json_dict()
    assert event.is_valid(sample)
    assert not event.is_valid({**sample, "type": "has space"})
    assert not event.is_valid({**sample, "unknown": 1})
    envelope = _payload_validator(document, "CFXEnvelope")
    wire = json.loads((Path(__file__).parents[2] / "samples/cfx/CFX.Production.WorkStarted__1.json").read_text())
    assert envelope.is_valid(wire)
    assert not envelope.is_valid({k: v for k, v in wire.items() if k != "MessageBody"})
    # decoder "auto" on the CFX queue takes event JSON too; the cfx-decoding NATS rule takes envelopes
    assert set(document["channels"]["line1-queue"]["messages"]) == {"CFXEnvelope", "Event"}
    assert set(document["channels"]["plant-rule2"]["messages"]) == {"CFXEnvelope"}


def test_template_wildcards_become_positional_parameters() -> None:
    address, params = template_address("line1.{station}.*.{payload.kind}.>", ".", {"*": "one", ">": "rest"})
    assert address == "line1.{station}.{level3}.{payload_kind}.{level5}"
    assert set(params) == {"station", "level3", "payload_kind", "level5"}


def test_a_kind_can_plug_in_its_own_part(config: Path) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def documenter(name: str, options: dict[str, Any]) -> AsyncAPIPart:
        seen.append((name, options))
        return AsyncAPIPart(
            servers={f"{name}-folder": {"host": "localhost", "protocol": "file"}},
            channels={f"{name}-inbox": {"address": str(options["path"])}},
        )

    register_documenter("file", documenter)
    try:
        document = build_asyncapi(load_settings(config))
    finally:
        asyncapi._REGISTERED.pop("file")
    assert seen == [("file3", {"path": "inbox"})]  # the kind's own options, without kind and name
    assert document["channels"]["file3-inbox"] == {"address": "inbox"}
    assert "Not described" not in document["info"]["description"]
    assert find_documenter("file") is None


def test_invalid_transport_options_fail_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[transports]]\nkind = "mqtt"\nname = "lab"\nport = 99999\n')
    with pytest.raises(ConfigError, match="port"):
        build_asyncapi(load_settings(path))


def test_cli_writes_the_document_and_exits_2_on_a_bad_configuration(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "asyncapi.json"
    cli = [str(Path(sys.executable).parent / "pywats-events"), "docs", "asyncapi", "--config"]
    done = subprocess.run([*cli, str(config), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["channels"]["lab-rule1"]["address"] == "stations/{station}/results"
    assert "file3 (file)" in done.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[[transports]]\nkind = "nats"\nname = "plant"\nservers = []\n')
    done = subprocess.run([*cli, str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "servers" in done.stderr and "Traceback" not in done.stderr
