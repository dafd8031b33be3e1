"""Faults, MTBF and MTTR from ``asset.fault`` / ``asset.fault_cleared`` pairs (IPC-CFX ``FaultOccurred`` /
``FaultCleared``, paired by ``FaultOccurrenceId``).

Following SEMI E10's reliability measures:

- a fault is counted in the window holding its occurrence (the ``asset.fault`` event time);
- its repair time is from occurrence to clearance (the ``asset.fault_cleared`` event time);
- MTTR (mean time to repair) = total repair time / repairs, over the faults of the window that were
  cleared; ``None`` when none was;
- MTBF (E10's MTBFp, mean productive time between failures) = productive (``PRD``) time in the window /
  faults in the window; ``None`` when there is no fault (no failure observed: no mean to state).

The Pareto of faults ranks fault codes by repair time (downtime), then count. A clearance that arrives
before its occurrence (out-of-order delivery) waits for it; a repeated occurrence or clearance of the
same fault id is a duplicate. The fault id is read as the status board reads it
(``pywats_events.status_board.fault_id``: ``fault_occurrence_id`` / ``fault_id``, else the correlation id, else the
event id).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..event import Event
from ..status_board import fault_id
from .errors import AnalyticsInputError
from .states import epoch_us

__all__ = ["FaultBook", "FaultRecord"]

#: Completed fault pairs remembered to recognize duplicates (count per book); older ones are forgotten.
_PAIRS_KEPT = 100_000


@dataclass(slots=True)
class FaultRecord:
    """One fault occurrence: ``start_us`` / ``end_us`` in µs since the epoch (``None`` until seen)."""

    asset: str
    fault_id: str
    code: str
    start_us: int | None = None
    end_us: int | None = None


@dataclass(slots=True)
class _Bucket:
    faults: int = 0
    repairs: int = 0
    repair_us: int = 0
    by_code: dict[str, list[int]] = field(default_factory=dict)  # code -> [count, repair µs]


class FaultBook:
    """Fault pairs per asset, with counts and repair times per time bucket.

    Args:
        bucket_s: bucket width in whole seconds (the same as the status history's).
    """

    def __init__(self, bucket_s: int = 60) -> None:
        self.bucket_us = bucket_s * 1_000_000
        self.records: OrderedDict[tuple[str, str], FaultRecord] = OrderedDict()
        self.buckets: dict[str, dict[int, _Bucket]] = {}
        self.duplicates = 0

    @staticmethod
    def fault_key(event: Event) -> tuple[str, str, str]:
        """(asset, fault id, fault code) of a fault event, read as the status board reads them."""
        p = event.payload
        raw = p.get("fault")
        nested: dict[str, Any] = raw if isinstance(raw, dict) else {}
        asset = str(p.get("asset_id") or event.source)
        code = p.get("fault_code") or p.get("code") or nested.get("fault_code") or nested.get("code")
        return asset, fault_id(event), str(code) if code else "unknown"

    def _bucket(self, asset: str, at_us: int) -> _Bucket:
        per = self.buckets.get(asset)
        if per is None:
            per = self.buckets[asset] = {}
        b = at_us // self.bucket_us
        bk = per.get(b)
        if bk is None:
            bk = per[b] = _Bucket()
        return bk

    def occurred(self, event: Event) -> bool:
        """Apply an ``asset.fault``; False for a duplicate.

        Raises:
            AnalyticsInputError: its clearance, already seen, is earlier than this occurrence.
        """
        asset, fid, code = self.fault_key(event)
        rec = self.records.get((asset, fid))
        at = epoch_us(event.timestamp)
        if rec is not None and rec.start_us is not None:
            self.duplicates += 1
            return False
        if rec is None:
            rec = self.records[(asset, fid)] = FaultRecord(asset, fid, code)
        elif rec.end_us is not None and rec.end_us < at:
            raise AnalyticsInputError(
                event.id, event.type, "fault_id", f"fault {fid!r} of {asset!r} was cleared before it occurred"
            )
        rec.code = code
        rec.start_us = at
        bk = self._bucket(asset, at)
        bk.faults += 1
        row = bk.by_code.setdefault(code, [0, 0])
        row[0] += 1
        if rec.end_us is not None:
            self._repaired(rec)
        self._trim()
        return True

    def cleared(self, event: Event) -> bool:
        """Apply an ``asset.fault_cleared``; False for a duplicate.

        Raises:
            AnalyticsInputError: the clearance is earlier than the fault's occurrence.
        """
        asset, fid, _ = self.fault_key(event)
        at = epoch_us(event.timestamp)
        rec = self.records.get((asset, fid))
        if rec is None:
            rec = self.records[(asset, fid)] = FaultRecord(asset, fid, "unknown")
        elif rec.end_us is not None:
            self.duplicates += 1
            return False
        if rec.start_us is not None and at < rec.start_us:
            raise AnalyticsInputError(
                event.id, event.type, "fault_id", f"fault {fid!r} of {asset!r} is cleared before it occurred"
            )
        rec.end_us = at
        if rec.start_us is not None:
            self._repaired(rec)
        self._trim()
        return True

    def _repaired(self, rec: FaultRecord) -> None:
        assert rec.start_us is not None and rec.end_us is not None
        d = rec.end_us - rec.start_us
        bk = self._bucket(rec.asset, rec.start_us)
        bk.repairs += 1
        bk.repair_us += d
        bk.by_code.setdefault(rec.code, [0, 0])[1] += d

    def _trim(self) -> None:
        while len(self.records) > _PAIRS_KEPT:
            self.records.popitem(last=False)

    def window(self, asset: str, lo: int | None, hi: int) -> tuple[int, int, int, dict[str, list[int]]]:
        """(faults, repairs, repair µs, {code: [count, repair µs]}) of ``asset`` for buckets ``lo..hi-1``."""
        faults = repairs = repair_us = 0
        codes: dict[str, list[int]] = {}
        for b, bk in (self.buckets.get(asset) or {}).items():
            if (lo is None or b >= lo) and b < hi:
                faults += bk.faults
                repairs += bk.repairs
                repair_us += bk.repair_us
                for code, (n, d) in bk.by_code.items():
                    row = codes.setdefault(code, [0, 0])
                    row[0] += n
                    row[1] += d
        return faults, repairs, repair_us, codes
