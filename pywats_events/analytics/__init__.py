"""Line and lab analytics: status history, SEMI E10 time in state, availability, utilization, error
rate, MTBF/MTTR, first-pass yield, cycle times and OEE, computed as the events arrive.

``AnalyticsHandler`` (handler kind ``analytics``) feeds an ``AnalyticsEngine`` from the bus; the report
is served on ``/analytics/...``, as Prometheus gauges, and by ``pywats-events analytics report``.
"""

from .cycle_time import CycleTimes, quantile
from .engine import HANDLED_TYPES, AnalyticsEngine
from .errors import AnalyticsError, AnalyticsInputError, AnalyticsWindowError, TooLateError
from .first_pass_yield import YieldBook, YieldFigures
from .history import Interval, StatusHistory
from .reliability import FaultBook
from .states import CATEGORIES, StateChange, state_change_of
from .window import Window, parse_time, resolve_window

__all__ = [
    "CATEGORIES",
    "HANDLED_TYPES",
    "AnalyticsEngine",
    "AnalyticsError",
    "AnalyticsInputError",
    "AnalyticsWindowError",
    "CycleTimes",
    "FaultBook",
    "Interval",
    "StateChange",
    "StatusHistory",
    "TooLateError",
    "Window",
    "YieldBook",
    "YieldFigures",
    "parse_time",
    "quantile",
    "resolve_window",
    "state_change_of",
]
