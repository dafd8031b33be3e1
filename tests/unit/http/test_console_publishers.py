"""``publish`` finds its target through the transport plug-ins: the ``pywats_events.publishers`` entry
points of this distribution (cfx, amqp, mqtt, nats), a publisher registered at run time for a third-party
kind (the core imports no plug-in by name), and a clear refusal naming the kinds that can publish."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from pywats_events.commissioning import publish as pub
from pywats_events.config import load_settings
from pywats_events.errors import ConfigError


def test_the_built_in_transport_plugins_register_their_publishers() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group=pub.PUBLISHER_GROUP)}
    assert eps == {
        "cfx": "pywats_cfx.commissioning:publish",
        "amqp": "pywats_cfx.commissioning:publish",
        "mqtt": "pywats_mqtt.commissioning:publish",
        "nats": "pywats_nats.commissioning:publish",
    }
    from pywats_nats.commissioning import publish as nats_publish

    assert pub.find_publisher("nats") is nats_publish
    assert pub.find_publisher("file") is None
    # The core imports no transport plug-in to publish (only the optional CFX sample generator, --sample).
    source = Path(pub.__file__).read_text(encoding="utf-8")
    imports = re.findall(r"^\s*(?:from|import) (pywats_\w+(?:\.\w+)*)", source, re.M)
    assert imports == ["pywats_cfx.explorer"]


async def test_a_kind_without_a_publisher_is_refused_and_a_registered_one_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[[transports]]\nkind = "file"\nname = "drop"\npath = "{tmp_path}"\n', encoding="utf-8")
    settings = load_settings(cfg)
    event = tmp_path / "ev.json"
    event.write_text('{"type": "asset.fault", "source": "ict-1"}', encoding="utf-8")
    message = pub.load_message(event, None)
    with pytest.raises(ConfigError, match=r"'file' transport has no broker to publish to.*can publish: amqp, cfx"):
        await pub.publish_message(settings, "drop", message)

    seen: list[tuple[pub.PublishTarget, str]] = []

    async def drop_publisher(target: pub.PublishTarget, msg: pub.OutgoingTest) -> dict[str, Any]:
        seen.append((target, msg.name))
        return {"destination": f"folder {target.options['path']}"}

    monkeypatch.setitem(pub._REGISTERED, "file", drop_publisher)
    report = await pub.publish_message(settings, "drop", message, topic="x")
    assert report["destination"] == f"folder {tmp_path}" and report["to"] == "drop"
    assert seen[0][0].name == "drop" and seen[0][0].kind == "file" and seen[0][0].topic == "x"
    assert seen[0][1] == "asset.fault"
