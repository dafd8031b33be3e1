"""Duration estimation from the status DB's history: the historians and the confidence rule.

Which history a step is matched against (the LARA document's historians):

- ``MoveHistorian``: a ``MoveStep`` is matched by its (origin device, target device) pair.
- ``ProtocolHistorian``: a ``ProcessStep`` is matched by its device, ``data["fct"]`` and its method
  parameters (every other key of ``data``, compared exactly after canonical JSON encoding).
- ``GeneralHistorian``: the fallback when the protocol historian has no sample: the same ``fct`` on the
  same device whatever the parameters; then the same ``fct`` on any device.

Only finished steps count, and only the most recent ``history_window`` of them (1000 by default): the
answer follows a device that got slower, and stays fast on a DB holding millions of steps.

How the answer is computed from the ``n`` matching durations (seconds):

- Moves: the **maximum** observed duration, as the LARA document states for the move historian; a
  scheduler that plans with it never under-books the arm. ``confidence`` does not change it.
- Protocol and general steps: the **empirical quantile by nearest rank** at ``confidence``: the
  ``ceil(confidence * n)``-th smallest duration. At least ``confidence`` of the observed runs took no longer.
  With few samples (fewer than ``1 / (1 - confidence)``, so fewer than 20 at 0.95) this rank is ``n`` and
  the answer is the maximum observed: with little history the estimate errs long, not short.
- No matching sample: ``None``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .structures import MoveStep, ProcessStep

__all__ = [
    "GeneralHistorian",
    "HistoryQuery",
    "MoveHistorian",
    "ProtocolHistorian",
    "estimate_from_samples",
    "historians_for",
    "nearest_rank_quantile",
    "params_key",
]


def params_key(data: dict[str, Any]) -> str:
    """The key the protocol historian matches method parameters on: a hash of ``data`` without ``fct``,
    encoded as canonical JSON (sorted keys), so ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` match."""
    rest = {k: v for k, v in data.items() if k != "fct"}
    text = json.dumps(rest, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:32]


def nearest_rank_quantile(samples: Sequence[float], confidence: float) -> float:
    """The ``ceil(confidence * n)``-th smallest of ``samples`` (nearest-rank empirical quantile).

    Args:
        samples: durations in seconds, at least one, any order.
        confidence: in ``(0, 1]``.

    Raises:
        ValueError: no samples, or ``confidence`` outside ``(0, 1]``.
    """
    if not samples:
        raise ValueError("no samples to take a quantile of")
    _check_confidence(confidence)
    ordered = sorted(samples)
    rank = max(1, math.ceil(confidence * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def _check_confidence(confidence: float) -> None:
    if not (0.0 < confidence <= 1.0) or math.isnan(confidence):
        raise ValueError(f"confidence must be in (0, 1], got {confidence!r}")


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Which past steps a historian looks at.

    Attributes:
        kind: ``move`` or ``process`` steps.
        fct: ``data["fct"]`` to match, or ``None`` for any.
        device: the executing device, or ``None`` for any.
        params: the ``params_key`` to match, or ``None`` for any.
        origin / target: the device pair of a move.
        rule: ``max`` or ``quantile`` (see the module docstring).
    """

    kind: Literal["move", "process"]
    fct: str | None = None
    device: str | None = None
    params: str | None = None
    origin: str | None = None
    target: str | None = None
    rule: Literal["max", "quantile"] = "quantile"


class MoveHistorian:
    """Moves by (origin device, target device); the estimate is the maximum observed."""

    @staticmethod
    def queries(step: ProcessStep) -> list[HistoryQuery]:
        """The history to look at for ``step`` (empty when it is not a move with both devices)."""
        if not isinstance(step, MoveStep) or step.origin_device is None or step.target_device is None:
            return []
        return [HistoryQuery("move", origin=step.origin_device.name, target=step.target_device.name, rule="max")]


class ProtocolHistorian:
    """Protocol steps by device, ``fct`` and exact method parameters; nearest-rank quantile."""

    @staticmethod
    def queries(step: ProcessStep) -> list[HistoryQuery]:
        """The history to look at for ``step`` (empty for moves and steps without ``fct``)."""
        if isinstance(step, MoveStep) or step.fct is None:
            return []
        return [HistoryQuery("process", fct=step.fct, device=step.main_device.name, params=params_key(step.data))]


class GeneralHistorian:
    """Fallback on arbitrary parameters: same ``fct`` on the same device, then on any device."""

    @staticmethod
    def queries(step: ProcessStep) -> list[HistoryQuery]:
        """The history to look at for ``step``, most specific first."""
        if isinstance(step, MoveStep) or step.fct is None:
            return []
        return [
            HistoryQuery("process", fct=step.fct, device=step.main_device.name),
            HistoryQuery("process", fct=step.fct),
        ]


def historians_for(step: ProcessStep) -> list[HistoryQuery]:
    """Every history query for ``step`` in the order they are tried; the first with samples answers."""
    return MoveHistorian.queries(step) + ProtocolHistorian.queries(step) + GeneralHistorian.queries(step)


def estimate_from_samples(samples: Sequence[float], query: HistoryQuery, confidence: float) -> float | None:
    """The estimate (seconds) ``query``'s rule gives for ``samples``; ``None`` when there are none.

    Raises:
        ValueError: ``confidence`` outside ``(0, 1]``.
    """
    _check_confidence(confidence)
    if not samples:
        return None
    if query.rule == "max":
        return max(samples)
    return nearest_rank_quantile(samples, confidence)
