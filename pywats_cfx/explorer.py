"""Look at IPC-CFX samples, convert them to events, and generate synthetic envelopes.

Command line (``python -m pywats_cfx.explorer``)::

    --list                  list the samples (``samples/cfx``), their message and event count
    --sample NAME           print a sample envelope (NAME: file stem, a unique suffix such as
                            ``UnitsTested__1``, or a message name with one example)
    --convert NAME_OR_PATH  decode a sample or any file and print its events (``--json``: one
                            ``Event.to_json()`` per line)
    --generate KIND         print a synthetic valid envelope (``--seq``, ``--count``, ``--source``)
    --mapping               print the CFX message -> event type -> payload keys table (Markdown),
                            generated from ``pywats_cfx.adapters.MAPPINGS``

Exit status 0 on success, 2 with one line on stderr naming the file and the reason on bad input. Output
cut short by the reader (``--convert ... | head``) ends quietly with status 0.
``generate_envelope`` is the same generator for load tests and benchmarks.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pywats_events import jsonsafe
from pywats_events.codec import DecodeContext
from pywats_events.errors import DecodeError
from pywats_events.event import Event

from .envelope import encode_envelope

__all__ = ["DEFAULT_SAMPLES_DIR", "GENERATOR_KINDS", "generate_envelope", "main"]


def _default_samples_dir() -> Path:
    """``samples/cfx`` of the source tree this package is in (a checkout, editable install); installed
    from a wheel, where no samples ship, ``samples/cfx`` of the current directory (a checkout)."""
    beside = Path(__file__).resolve().parent.parent / "samples" / "cfx"
    return beside if beside.is_dir() else Path("samples") / "cfx"


#: Where ``--samples`` points by default: see ``_default_samples_dir``.
DEFAULT_SAMPLES_DIR = _default_samples_dir()

#: Namespace of the UniqueIDs of generated envelopes (RFC 4122 v5), so a given (kind, source, seq) always
#: gives the same id: a load test that resends an envelope exercises duplicate handling.
_GENERATOR_NAMESPACE = uuid.UUID("3c9e0b8a-52f1-4d7e-8a6b-1f0d2e4c6a81")
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_SOURCE = "Acme.Tester_FCT200.SN0001"


def _uid(*parts: object) -> str:
    return str(uuid.uuid5(_GENERATOR_NAMESPACE, "/".join(str(p) for p in parts)))


def _operator() -> dict[str, Any]:
    return {
        "OperatorIdentifier": "BADGE1001",
        "ActorType": "Human",
        "LastName": "Doe",
        "FirstName": "Jane",
        "LoginName": "jane.doe@example.com",
    }


def _unit_positions(unit_id: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "UnitIdentifier": unit_id,
            "PositionNumber": i + 1,
            "PositionName": f"CIRCUIT{i + 1}",
            "X": 50.0 + 20 * i,
            "Y": 80.0,
            "Rotation": 0.0,
            "FlipX": False,
            "FlipY": False,
        }
        for i in range(count)
    ]


def _units_tested(seq: int, source: str, stamp: datetime, tests: int, failed: bool) -> dict[str, Any]:
    # Members are written out with nulls, as the CFX SDK serializes them.
    items = []
    for t in range(tests):
        fail_this = failed and t == tests - 1
        start = stamp - timedelta(seconds=2 * (tests - t))
        result = "Failed" if fail_this else "Passed"
        items.append(
            {
                "UniqueIdentifier": None,
                "TestName": f"VOLTAGE_CHECK_TP{t + 1}",
                "TestStartTime": start.isoformat(),
                "TestEndTime": (start + timedelta(seconds=1)).isoformat(),
                "Result": result,
                "SymptomsFound": [],
                "DefectsFound": [],
                "Measurements": [
                    {
                        "$type": "CFX.Structures.NumericMeasurement, CFX",
                        "MeasuredValue": {
                            "Value": 5.31 if fail_this else 4.98 + t * 0.01,
                            "ValueUnits": "V",
                            "ExpectedValue": 5.0,
                            "ExpectedValueUnits": "V",
                            "MinimumAcceptableValue": 4.75,
                            "MaximumAcceptableValue": 5.25,
                        },
                        "MeasurementName": f"V_TP{t + 1}",
                        "TimeRecorded": None,
                        "Result": result,
                        "CRDs": None,
                    }
                ],
            }
        )
    return {
        "TransactionId": _uid("tx", source, seq),
        "TestMethod": "FCT",
        "Tester": {"OperatorIdentifier": "BADGE1001"},
        "RecipeName": "FCT_MAIN_BOARD",
        "RecipeRevision": "3.1",
        "TestedUnits": [
            {
                "UnitIdentifier": f"UNIT{seq:08d}",
                "UnitPositionNumber": 1,
                "OverallResult": "Failed" if failed else "Passed",
                "Tests": items,
            }
        ],
    }


def _units_inspected(seq: int, source: str, failed: bool) -> dict[str, Any]:
    defects = (
        [
            {
                "DefectCode": "ISFSLD112",
                "DefectCategory": "Solder Problems",
                "Description": "Insufficient solder",
                "ComponentOfInterest": {
                    "ReferenceDesignator": "R22",
                    "UnitPosition": None,
                    "PartNumber": "PN-1",
                },
            }
        ]
        if failed
        else []
    )
    return {
        "TransactionId": _uid("tx", source, seq),
        "InspectionMethod": "AOI",
        "Inspector": _operator(),
        "InspectedUnits": [
            {
                "UnitIdentifier": f"UNIT{seq:08d}",
                "UnitPositionNumber": 1,
                "OverallResult": "Failed" if failed else "Passed",
                "Inspections": [
                    {
                        "InspectionName": "INSPECT_R22",
                        "Result": "Failed" if failed else "Passed",
                        "DefectsFound": defects,
                    }
                ],
            }
        ],
    }


def _fault(seq: int, source: str, stamp: datetime) -> dict[str, Any]:
    return {
        "Cause": "MechanicalFailure",
        "Severity": "Error",
        "FaultCode": f"E{1000 + seq % 9000}",
        "FaultOccurrenceId": _uid("fault", source, seq),
        "Lane": 1,
        "Stage": None,
        "SideLocation": "Unknown",
        "AccessType": "Unknown",
        "Description": "Gripper did not close",
        "OccurredAt": stamp.isoformat(),
        "DueDateTime": None,
    }


# kind -> (CFX message name, body builder(seq, source, stamp, tests, failed))
_KINDS: dict[str, tuple[str, Callable[[int, str, datetime, int, bool], dict[str, Any]]]] = {
    "units-tested": ("CFX.Production.TestAndInspection.UnitsTested", _units_tested),
    "units-inspected": (
        "CFX.Production.TestAndInspection.UnitsInspected",
        lambda seq, src, ts, n, failed: _units_inspected(seq, src, failed),
    ),
    "work-started": (
        "CFX.Production.WorkStarted",
        lambda seq, src, ts, n, failed: {
            "TransactionID": _uid("tx", src, seq),
            "Lane": 1,
            "UnitCount": 2,
            "Units": _unit_positions(f"CARRIER{seq:06d}", 2),
        },
    ),
    "work-completed": (
        "CFX.Production.WorkCompleted",
        lambda seq, src, ts, n, failed: {
            "TransactionID": _uid("tx", src, seq),
            "Result": "Failed" if failed else "Completed",
            "UnitCount": 2,
            "Units": _unit_positions(f"CARRIER{seq:06d}", 2),
        },
    ),
    "units-arrived": (
        "CFX.Production.UnitsArrived",
        lambda seq, src, ts, n, failed: {"UnitCount": 1, "Units": _unit_positions(f"UNIT{seq:08d}", 1)},
    ),
    "units-departed": (
        "CFX.Production.UnitsDeparted",
        lambda seq, src, ts, n, failed: {"UnitCount": 1, "Units": _unit_positions(f"UNIT{seq:08d}", 1)},
    ),
    "units-disqualified": (
        "CFX.Production.UnitsDisqualified",
        lambda seq, src, ts, n, failed: {
            "Reason": "DefectiveRepairNotPossible",
            "Comments": "Dropped",
            "UnitCount": 1,
            "Units": _unit_positions(f"UNIT{seq:08d}", 1),
        },
    ),
    "materials-installed": (
        "CFX.Production.Assembly.MaterialsInstalled",
        lambda seq, src, ts, n, failed: {
            "TransactionId": _uid("tx", src, seq),
            "InstalledMaterials": [
                {
                    "UnitIdentifier": f"UNIT{seq:08d}",
                    "UnitPositionNumber": 1,
                    "QuantityInstalled": 2.0,
                    "Material": {
                        "UniqueIdentifier": f"REEL{seq:06d}",
                        "InternalPartNumber": "IPN47788",
                        "ManufacturerLotCode": "LOT2024010101",
                        "Quantity": 887.0,
                    },
                    "InstalledComponents": [
                        {"ReferenceDesignator": "R1", "InstallationTime": ts.isoformat()},
                        {"ReferenceDesignator": "R2", "InstallationTime": ts.isoformat()},
                    ],
                }
            ],
        },
    ),
    "materials-loaded": (
        "CFX.Materials.Storage.MaterialsLoaded",
        lambda seq, src, ts, n, failed: {
            "Materials": [
                {
                    "LocationIdentifier": f"LOC{seq:06d}",
                    "LocationName": "SLOT45",
                    "MaterialPackage": {
                        "UniqueIdentifier": f"REEL{seq:06d}",
                        "InternalPartNumber": "IPN47788",
                        "Quantity": 887.0,
                    },
                    "CarrierInformation": {"UniqueIdentifier": "FDR1", "Name": "TAPEFEEDER8mm"},
                }
            ]
        },
    ),
    "fault": (
        "CFX.ResourcePerformance.FaultOccurred",
        lambda seq, src, ts, n, failed: {"Fault": _fault(seq, src, ts)},
    ),
    "fault-cleared": (
        "CFX.ResourcePerformance.FaultCleared",
        lambda seq, src, ts, n, failed: {
            "FaultOccurrenceId": _uid("fault", src, seq),
            "Operator": _operator(),
        },
    ),
    "fault-acknowledged": (
        "CFX.ResourcePerformance.FaultAcknowledged",
        lambda seq, src, ts, n, failed: {
            "FaultOccurrenceId": _uid("fault", src, seq),
            "Operator": _operator(),
        },
    ),
    "state-changed": (
        "CFX.ResourcePerformance.StationStateChanged",
        lambda seq, src, ts, n, failed: {
            "OldState": "1100",
            "OldStateDuration": "00:01:25",
            "NewState": "5300" if failed else "2200",
            "RelatedFault": None,
        },
    ),
    "endpoint-connected": (
        "CFX.EndpointConnected",
        lambda seq, src, ts, n, failed: {
            "CFXHandle": src,
            "RequestNetworkUri": "amqp://broker/",
            "RequestTargetAddress": f"/queue/{src}",
        },
    ),
    "endpoint-shutting-down": (
        "CFX.EndpointShuttingDown",
        lambda seq, src, ts, n, failed: {"CFXHandle": src},
    ),
    "heartbeat": (
        "CFX.Heartbeat",
        lambda seq, src, ts, n, failed: {"CFXHandle": src, "HeartbeatFrequency": "00:01:00"},
    ),
}

#: The kinds ``generate_envelope`` knows.
GENERATOR_KINDS: tuple[str, ...] = tuple(_KINDS)


def generate_envelope(
    kind: str,
    *,
    seq: int = 0,
    source: str = DEFAULT_SOURCE,
    timestamp: datetime | None = None,
    tests: int = 1,
    failed: bool = False,
) -> dict[str, Any]:
    """Build a synthetic, valid CFX envelope (wire dict, as ``encode_envelope`` gives).

    The result depends only on the arguments: ``UniqueID`` is a UUID5 of (kind, source, seq) and the
    default time stamp is 2024-01-01T00:00:00Z plus ``seq`` milliseconds. With the defaults a
    ``units-tested`` envelope (one unit, one test with one numeric measurement, members written out
    with nulls as the SDK writes them) is about 1 KB of compact JSON; each further test adds ~360 bytes.

    Args:
        kind: one of ``GENERATOR_KINDS`` (``units-tested``, ``fault``, ``state-changed``, ...).
        seq: sequence number (>= 0); varies unit ids, transaction ids and the UniqueID.
        source: CFX handle of the (pretend) sender.
        timestamp: the envelope time; see above when None.
        tests: number of tests (each with one numeric measurement) in a ``units-tested`` envelope.
        failed: make the unit/inspection fail, the work fail, or the state change go to unscheduled downtime.

    Returns:
        The envelope dict; ``envelope_to_bytes`` makes the wire bytes.

    Raises:
        ValueError: unknown ``kind``.
    """
    try:
        message_name, build = _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(GENERATOR_KINDS)}") from None
    stamp = timestamp or (_EPOCH + timedelta(milliseconds=seq))
    return encode_envelope(
        message_name,
        build(seq, source, stamp, tests, failed),
        source=source,
        unique_id=_uid(kind, source, seq),
        timestamp=stamp,
    )


# --- command line ------------------------------------------------------------------------------------


class _UsageError(Exception):
    """A name or argument the explorer cannot use; reported as one line, exit status 2."""


def _samples(root: Path) -> dict[str, Path]:
    """Samples by their path relative to ``root`` without ``.json`` (``invalid/CFX.X__1``)."""
    if not root.is_dir():
        raise _UsageError(f"{root}: samples folder not found (use --samples DIR)")
    return {p.relative_to(root).with_suffix("").as_posix(): p for p in sorted(root.rglob("*.json"))}


def _find_sample(root: Path, name: str) -> Path:
    samples = _samples(root)
    key = name.removesuffix(".json")
    if key in samples:
        return samples[key]
    hits = [k for k in samples if k.endswith(("/" + key, "." + key)) or k.split("/")[-1] == key]
    if not hits:
        # A message name with examples: "CFX.Heartbeat" finds "CFX.Heartbeat__1".
        hits = [k for k in samples if k.split("/")[-1].startswith(key + "__")]
    if len(hits) == 1:
        return samples[hits[0]]
    if not hits:
        raise _UsageError(f"{name}: no such sample in {root} (see --list)")
    raise _UsageError(f"{name}: ambiguous sample name, matches {', '.join(hits[:5])}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _print_event(ev: Event) -> None:
    print(f"{ev.type}  [{ev.severity.value}]  {ev.timestamp.isoformat()}  source={ev.source}")
    print(f"  id:          {ev.id}")
    if ev.correlation_id:
        print(f"  correlation: {ev.correlation_id}")
    if ev.subjects:
        print(f"  subjects:    {', '.join(ev.subjects)}")
    payload = jsonsafe.dumps(ev.payload, indent=2, ensure_ascii=False)
    print("  payload:     " + payload.replace("\n", "\n               "))
    print()


def _cmd_list(root: Path) -> None:
    from .decoder import decode_cfx

    for key, path in _samples(root).items():
        try:
            events = decode_cfx(path.read_bytes(), DecodeContext(origin=str(path)))
            types = sorted({e.type for e in events})
            print(f"{key:<80} {len(events):>3} event(s)  {', '.join(types)}")
        except DecodeError as exc:
            print(f"{key:<80} invalid: {exc.reason}")


def _cmd_convert(root: Path, target: str, as_json: bool) -> None:
    from .decoder import decode_cfx

    path = Path(target)
    if not path.is_file():
        path = _find_sample(root, target)
    events = decode_cfx(_read(path), DecodeContext(origin=str(path)))
    for ev in events:
        if as_json:
            print(ev.to_json())
        else:
            _print_event(ev)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pywats_cfx.explorer",
        description="Explore IPC-CFX samples: list, show, convert to pyWATS events, generate.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="list the samples")
    action.add_argument("--sample", metavar="NAME", help="print a sample envelope")
    action.add_argument("--convert", metavar="NAME_OR_PATH", help="decode a sample or file into events")
    action.add_argument("--generate", metavar="KIND", help=f"print a synthetic envelope: {', '.join(_KINDS)}")
    action.add_argument("--mapping", action="store_true", help="print the message -> event mapping table")
    parser.add_argument("--json", action="store_true", help="with --convert: one event JSON per line")
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES_DIR, help="samples folder")
    parser.add_argument("--seq", type=int, default=0, help="with --generate: first sequence number")
    parser.add_argument("--count", type=int, default=1, help="with --generate: envelopes, one JSON per line")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="with --generate: CFX handle of the sender")
    parser.add_argument("--failed", action="store_true", help="with --generate: a failing variant")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the explorer; returns the exit status (0 success, 2 bad input or usage)."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader stopped early (``| head``): not an error. Point stdout at devnull so that the
        # interpreter's final flush does not raise again and print a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0


def _run(args: argparse.Namespace) -> int:
    try:
        if args.mapping:
            from .adapters import mapping_table

            sys.stdout.write(mapping_table())
        elif args.list:
            _cmd_list(args.samples)
        elif args.sample:
            print(_read(_find_sample(args.samples, args.sample)).decode("utf-8", "replace").rstrip("\n"))
        elif args.convert:
            _cmd_convert(args.samples, args.convert, args.json)
        else:
            if args.count < 1 or args.seq < 0:
                raise _UsageError("--count must be >= 1 and --seq >= 0")
            for seq in range(args.seq, args.seq + args.count):
                env = generate_envelope(args.generate, seq=seq, source=args.source, failed=args.failed)
                indent = None if args.count > 1 else 2
                print(jsonsafe.dumps(env, ensure_ascii=False, indent=indent, default=None, compact=False))
    except (DecodeError, _UsageError, ValueError) as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
