"""Plug-ins by entry point: what is found, what a missing one says, and that the built-ins are found the
same way. A distribution is made on ``sys.path`` as pip leaves one (``*.dist-info`` with
``entry_points.txt``), so ``importlib.metadata`` finds it for real."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pywats_events import DecodeContext, Event, PluginError, get_decoder
from pywats_events.codec import decode_auto
from pywats_events.config import TransportConfig, build_transport
from pywats_events.plugins import DECODER_GROUP, HANDLER_GROUP, TRANSPORT_GROUP, available, load_plugin


def make_distribution(site: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    dist = site / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(entry_points)
    for module, text in modules.items():
        (site / f"{module}.py").write_text(text)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("fakeplug")]:
        del sys.modules[mod]


def test_builtins_are_registered_by_entry_point_like_any_plugin() -> None:
    transports = available(TRANSPORT_GROUP)
    assert {"file", "webhook", "mock", "cfx", "amqp", "mqtt"} <= set(transports)
    assert transports["mqtt"].extras == ("mqtt",)
    assert transports["mqtt"].distribution == "pywats-events"
    assert {"event-json", "auto", "cfx", "lab-event"} <= set(available(DECODER_GROUP))
    assert {"event-store", "status-board", "http-forwarder"} <= set(available(HANDLER_GROUP))


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(PluginError, match=r"transport 'x': unknown transport kind 'nope'; known: .*file.*mqtt"):
        load_plugin(TRANSPORT_GROUP, "nope", "transport 'x'")


def test_a_plugin_whose_library_is_missing_names_the_extra_to_install(site: Path) -> None:
    make_distribution(
        site, "fakeplug-dist",
        "[pywats_events.transports]\nfakeplug = fakeplug_transport:FakeTransport [fast]\n",
        {"fakeplug_transport": "import library_that_is_not_installed\n"},
    )
    with pytest.raises(PluginError) as info:
        build_transport(TransportConfig(kind="fakeplug"))
    text = str(info.value)
    assert "cannot import 'fakeplug_transport'" in text
    assert "library_that_is_not_installed" in text
    assert "pip install 'fakeplug-dist[fast]'" in text


def test_an_entry_point_naming_a_missing_attribute_is_reported_with_its_distribution(site: Path) -> None:
    make_distribution(
        site, "fakeplug-attr", "[pywats_events.handlers]\nfakeplug-h = fakeplug_h:Missing\n", {"fakeplug_h": "X = 1\n"}
    )
    with pytest.raises(PluginError, match=r"module 'fakeplug_h' has no 'Missing' \(entry point of fakeplug-attr\)"):
        load_plugin(HANDLER_GROUP, "fakeplug-h")


def test_auto_asks_every_registered_decoder_whether_it_recognizes_the_input(site: Path) -> None:
    make_distribution(
        site, "fakeplug-codec", "[pywats_events.decoders]\nfakeplug-magic = fakeplug_codec:decoder\n",
        {"fakeplug_codec": (
            "from pywats_events import Event\n"
            "class D:\n"
            "    def __call__(self, body, ctx):\n"
            "        return [Event(type='asset.fault', source='magic', payload={'raw': body.decode()})]\n"
            "    def recognizes(self, head):\n"
            "        return head.startswith(b'MAGIC')\n"
            "decoder = D()\n"
        )},
    )
    import pywats_events.codec as codec

    codec._recognizers = None  # decoders found on first auto: make this test's distribution visible
    try:
        events = decode_auto(b"MAGIC 42", DecodeContext(origin="test"))
        assert [(e.type, e.source, e.payload["raw"]) for e in events] == [("asset.fault", "magic", "MAGIC 42")]
        assert get_decoder("fakeplug-magic")(b"MAGIC", DecodeContext())[0].source == "magic"
        # a CFX envelope is still recognized by the cfx decoder, and plain events fall back to event-json
        cfx = b'{"MessageName": "CFX.EndpointConnected", "MessageBody": {"CFXHandle": "a.b.c"}, "Source": "a.b.c"}'
        assert decode_auto(cfx, DecodeContext())[0].source == "a.b.c"
        plain = Event(type="x.y", source="s").model_dump_json().encode()
        assert decode_auto(plain, DecodeContext())[0].type == "x.y"
    finally:
        codec._recognizers = None
        codec._DECODERS.pop("fakeplug-magic", None)


def test_command_plugins_are_mounted_as_sub_commands() -> None:
    from typer.testing import CliRunner

    from pywats_events.cli import add_plugin_commands, app

    assert "wats" in add_plugin_commands() or any(g.name == "wats" for g in app.registered_groups)
    result = CliRunner().invoke(app, ["wats", "--help"])
    assert result.exit_code == 0, result.output
    assert "preview" in result.output and "fake-server" in result.output
