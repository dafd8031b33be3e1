"""``pywats-events mqtt try``: which mapping rules a topic matches and the event(s) a payload becomes.

The rules are the configured MQTT transport's, compiled by ``pywats_mqtt`` exactly as the running transport
compiles them, so what this shows is what the service would do. The transport builds a message's events with
the first matching rule only (copies a broker sends for overlapping subscriptions, MQTT 5 section 3.3.4,
become one event); when further rules match the same topic, the trial warns, since the order of the rules
then decides silently and a later rule meant for the topic never applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..errors import ConfigError, DecodeError

__all__ = ["RuleTrial", "try_topic"]


@dataclass(slots=True)
class RuleTrial:
    """What the rules make of one topic and payload.

    Attributes:
        transport: the MQTT transport's name.
        topic: the topic tried.
        matches: every matching rule, in rule order: ``{"index", "filter", "decoder", "fields"}``.
        events: the events the first match builds (``Event.to_json_dict``); empty on ``error``.
        error: why the payload gives no event (decode error text), or ``None``.
        warnings: overlap warnings (more than one rule matches).
    """

    transport: str
    topic: str
    matches: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        """The trial as a JSON-ready dict (the attributes by name)."""
        return {
            "transport": self.transport,
            "topic": self.topic,
            "matches": self.matches,
            "events": self.events,
            "error": self.error,
            "warnings": self.warnings,
        }


def try_topic(settings: Settings, topic: str, payload: bytes, transport: str | None = None) -> RuleTrial:
    """Match ``topic`` against the mapping rules of an MQTT transport and decode ``payload`` with the first.

    Args:
        settings: the loaded configuration.
        topic: an MQTT topic name (no wildcards).
        payload: the message body, bytes.
        transport: the ``[[transports]]`` name; ``None``: the only ``kind = "mqtt"`` one.

    Raises:
        ConfigError: no (or no such, or more than one unnamed) MQTT transport, an invalid rule, or
            ``pywats_mqtt`` is not installed.
    """
    from ..config import build_transport

    candidates = [(i, t) for i, t in enumerate(settings.transports) if t.kind == "mqtt"]
    if transport is not None:
        candidates = [(i, t) for i, t in candidates if (t.name or f"mqtt{i or ''}") == transport]
    if not candidates:
        which = f"named {transport!r}" if transport else "at all"
        raise ConfigError(f"no [[transports]] kind = 'mqtt' {which} in the configuration")
    if len(candidates) > 1:
        names = ", ".join(t.name or f"mqtt{i or ''}" for i, t in candidates)
        raise ConfigError(f"several MQTT transports ({names}): choose one with --transport")
    index, cfg = candidates[0]
    built: Any = build_transport(cfg, index, base_dir=settings.config_dir)
    mapper = built.mapper
    trial = RuleTrial(transport=built.name, topic=topic)
    for rule in mapper.rules:
        fields = rule.filter.match(topic)
        if fields is not None:
            trial.matches.append(
                {"index": rule.index, "filter": rule.filter.pattern, "decoder": rule.decoder, "fields": fields}
            )
    if len(trial.matches) > 1:
        first, *rest = trial.matches
        others = ", ".join(f"rules[{m['index']}] ({m['filter']})" for m in rest)
        trial.warnings.append(
            f"{len(trial.matches)} rules match {topic!r}: rules[{first['index']}] ({first['filter']}) makes the "
            f"event, {others} not (the first matching rule wins); narrow or reorder the rules if another "
            "should apply"
        )
    if not trial.matches:
        trial.error = f"no mapping rule matches topic {topic!r}: such a message is dead-lettered as unrouted"
        return trial
    origin = f"mqtt://{built.settings.host}:{built.settings.port}/{topic}"
    headers = {"transport": built.name, "mqtt_topic": topic}
    try:
        events = mapper.map(topic, payload, headers, origin)
    except DecodeError as exc:
        trial.error = str(exc)
        return trial
    trial.events = [e.to_json_dict() for e in events]
    return trial
