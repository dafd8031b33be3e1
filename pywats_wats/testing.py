"""A validating fake WATS server, to commission a line before WATS is reachable and to test against.

``FakeWats`` is a Starlette app with the REST endpoints the handlers use. It checks what WATS.md §5 lists
(from Virinco support "Post WSJF" article 360014879119 and the olreppe/pyWATS report model):

1. ``Authorization: Basic <token>`` with the configured token, else 401;
2. a JSON object, ``type`` T or R, every required top-level field, lengths (100; ``partType`` 50; miscInfo
   ``text`` 100), ``sn``/``pn`` free of ``* % ? [ ] ^ ! / \\``, ``start`` with an offset and ``startUTC`` the
   same instant, ``processCode`` one of the configured processes, ``result`` P/F/E/T;
3. for ``R``: ``uur`` an object, the repaired unit as sub-unit ``idx`` 0, every failure with category and
   code; for ``T``: ``uut`` an object, ``root`` a SequenceCall with ``seqCall {path, name, version}``; every step's
   name, group and status; measurement keys are arrays (one element for single steps, named elements for
   multi steps); every ``compOp`` known and given the limits it needs;
4. with ``strict``, what the real server does not check: a numeric status agrees with its value and limits,
   a parent is F when a child is, the report is F when its root is;
5. reports stored by ``id`` (a second POST with the same id replaces the first); every request recorded;
6. fault injection: ``fail_next(n, status)`` (503/500/...), ``fail_next(n, "timeout")``, ``reject_next(text)``;
7. the asset and production endpoints, same auth, recorded.

In-process::

    fake = FakeWats(token="t0k3n")
    client = WatsClient("http://wats", "t0k3n", transport=httpx.ASGITransport(fake.app))

On a real port (a thread running uvicorn)::

    with fake.serve(port=0) as url:      # url like http://127.0.0.1:54321
        ...

From a shell: ``python -m pywats_wats.testing --port 8085 --token t0k3n [--strict]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .models import COMP_OP_LIMITS, FORBIDDEN_SN_CHARACTERS, CompOp, compare_numeric

__all__ = ["FakeWats", "RecordedRequest", "validate_report"]

_REQUIRED = (
    "type",
    "id",
    "pn",
    "sn",
    "rev",
    "processCode",
    "result",
    "machineName",
    "location",
    "purpose",
    "start",
    "startUTC",
)
_STEP_STATUS = frozenset("PFSDET")
_GROUPS = frozenset("SMC")
_SEQ = frozenset({"SequenceCall", "WATS_SeqCall"})
_MEAS_KEYS = ("numericMeas", "booleanMeas", "stringMeas")
_MULTI = frozenset({"ET_MNLT", "MultiNumericLimitTest", "ET_MPFT", "MultiBooleanTest", "ET_MSVT", "MultiStringTest"})
_SINGLE = frozenset({"ET_NLT", "NumericLimitTest", "ET_PFT", "PassFailTest", "ET_SVT", "StringValueTest"})
_STRING_OPS = frozenset({"LOG", "EQ", "CASESENSIT", "IGNORECASE", "NE"})


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _check_step(step: Any, where: str, strict: bool, errors: list[str]) -> str | None:
    """Check one step (and its children); returns its status letter when readable."""
    if not isinstance(step, dict):
        errors.append(f"{where}: a step must be an object")
        return None
    name = step.get("name")
    if not isinstance(name, str) or not name or len(name) > 100:
        errors.append(f"{where}.name: must be a non-empty string of at most 100 characters")
    where = f"{where}[{name!r}]"
    if step.get("group", "M") not in _GROUPS:
        errors.append(f"{where}.group: {step.get('group')!r} is not S, M or C")
    status = step.get("status")
    if status not in _STEP_STATUS:
        errors.append(f"{where}.status: {status!r} is not one of P F S D E T")
        status = None
    step_type = step.get("stepType")
    if not isinstance(step_type, str) or not step_type:
        errors.append(f"{where}.stepType: missing")
    if step_type in _SEQ:
        seq = step.get("seqCall")
        # A loop iteration may leave the version out (servers export it so); every other call names it.
        needed = ("path", "name") if isinstance(step.get("loop"), dict) else ("path", "name", "version")
        if not isinstance(seq, dict) or any(not isinstance(seq.get(k), str) or not seq.get(k) for k in needed):
            errors.append(f"{where}.seqCall: needs path, name and version")
        children = step.get("steps")
        if not isinstance(children, list):
            errors.append(f"{where}.steps: must be an array")
            children = []
        statuses = [_check_step(c, f"{where}.steps[{i}]", strict, errors) for i, c in enumerate(children)]
        if strict and "F" in statuses and status != "F":
            errors.append(f"{where}: a child step failed but the sequence status is {status!r}, not 'F'")
    for key in _MEAS_KEYS:
        if key not in step:
            continue
        meas = step[key]
        if not isinstance(meas, list):
            errors.append(f"{where}.{key}: must be an array, got {type(meas).__name__}")
            continue
        if not meas:
            errors.append(f"{where}.{key}: empty")
        if step_type in _SINGLE:
            if len(meas) > 1:
                errors.append(f"{where}.{key}: a single step takes one measurement, got {len(meas)}")
        elif (step_type in _MULTI or len(meas) > 1) and any(not isinstance(m, dict) or not m.get("name") for m in meas):
            # Multi steps, and step types WSJF does not name (WATS_XYGMNLT charts) with several elements.
            errors.append(f"{where}.{key}: a multi step's measurements each need a name")
        for i, m in enumerate(meas):
            _check_measurement(m, key, f"{where}.{key}[{i}]", strict, errors)
        if (
            strict
            and status is not None
            and status != "F"
            and any(isinstance(m, dict) and m.get("status") == "F" for m in meas)
        ):
            errors.append(f"{where}: a measurement failed but the step status is {status!r}")
    return status


def _check_measurement(m: Any, key: str, where: str, strict: bool, errors: list[str]) -> None:
    if not isinstance(m, dict):
        errors.append(f"{where}: must be an object")
        return
    if m.get("status") not in _STEP_STATUS:
        errors.append(f"{where}.status: {m.get('status')!r} is not one of P F S D E T")
    if key == "booleanMeas":
        return
    op = m.get("compOp", "LOG")
    if key == "stringMeas":
        if op not in _STRING_OPS:
            errors.append(f"{where}.compOp: {op!r} does not compare strings")
        elif (op == "LOG") != (m.get("limit") is None):
            errors.append(f"{where}: compOp {op} {'takes no' if op == 'LOG' else 'needs a'} limit")
        if not isinstance(m.get("value"), str):
            errors.append(f"{where}.value: must be a string")
        return
    try:
        comp = CompOp(op)
    except ValueError:
        errors.append(f"{where}.compOp: {op!r} is not a CompOp")
        return
    need = COMP_OP_LIMITS[comp]
    low, high = m.get("lowLimit"), m.get("highLimit")
    if comp in (CompOp.CASESENSIT, CompOp.IGNORECASE):
        errors.append(f"{where}.compOp: {op} is for strings")
        return
    if (need >= 1 and not isinstance(low, int | float)) or (need == 2 and not isinstance(high, int | float)):
        errors.append(f"{where}: compOp {op} needs {'lowLimit and highLimit' if need == 2 else 'lowLimit'}")
        return
    value = m.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        errors.append(f"{where}.value: must be a number")
        return
    if strict and m.get("status") in ("P", "F"):
        passed = compare_numeric(comp, float(value), low, high if need == 2 else None)
        if passed != (m.get("status") == "P"):
            errors.append(
                f"{where}: value {value} {'passes' if passed else 'fails'} {op} but status is {m.get('status')}"
            )


def validate_report(report: Any, processes: set[int], strict: bool = False) -> list[str]:
    """Every problem WATS would refuse (and, with ``strict``, every inconsistency) in a WSJF body.

    Args:
        report: the decoded JSON body.
        processes: the process codes the server knows.
        strict: also check statuses against values, limits and children.

    Returns:
        The problems, each naming the field; empty when the report is acceptable.
    """
    if not isinstance(report, dict):
        return ["the body must be a JSON object (one report)"]
    errors: list[str] = []
    for key in _REQUIRED:
        if report.get(key) in (None, ""):
            errors.append(f"{key}: required")
    if report.get("type") not in (None, "T", "R"):
        errors.append(f"type: {report.get('type')!r} is not T or R")
    for key in ("pn", "sn", "rev", "machineName", "location", "purpose", "processName"):
        value = report.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 100):
            errors.append(f"{key}: must be a string of at most 100 characters")
    for key in ("pn", "sn"):
        value = report.get(key)
        if isinstance(value, str) and set(value) & FORBIDDEN_SN_CHARACTERS:
            errors.append(f"{key}: {value!r} contains a forbidden character (* % ? [ ] ^ ! / \\)")
    code = report.get("processCode")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        errors.append(f"processCode: {code!r} is not an integer")
    elif code is not None and code not in processes:
        errors.append(f"processCode: {code} is not a process on this server")
    if report.get("result") not in (None, "P", "F", "E", "T"):
        errors.append(f"result: {report.get('result')!r} is not P, F, E or T")
    start, start_utc = _parse_time(report.get("start")), _parse_time(report.get("startUTC"))
    if report.get("start") is not None and (start is None or start.tzinfo is None):
        errors.append("start: must be an ISO 8601 date-time with a UTC offset")
    if report.get("startUTC") is not None and (start_utc is None or start_utc.tzinfo is None):
        errors.append("startUTC: must be an ISO 8601 date-time in UTC")
    if start and start_utc and start.tzinfo and start_utc.tzinfo and start != start_utc:
        errors.append("startUTC: is not the same instant as start")
    for i, info in enumerate(report.get("miscInfos") or []):
        if not isinstance(info, dict) or not info.get("description"):
            errors.append(f"miscInfos[{i}]: needs a description")
        elif isinstance(info.get("text"), str) and len(info["text"]) > 100:
            errors.append(f"miscInfos[{i}].text: longer than 100 characters")
    for i, sub in enumerate(report.get("subUnits") or []):
        if not isinstance(sub, dict) or not isinstance(sub.get("partType"), str) or len(sub["partType"]) > 50:
            errors.append(f"subUnits[{i}].partType: required, at most 50 characters")
    if report.get("type") == "R":
        if not isinstance(report.get("uur"), dict):
            errors.append("uur: required for a repair report, an object")
        subs = report.get("subUnits")
        if not isinstance(subs, list) or not any(isinstance(u, dict) and u.get("idx", 0) == 0 for u in subs):
            errors.append("subUnits: a repair report needs the repaired unit itself (idx 0)")
        for i, sub in enumerate(subs if isinstance(subs, list) else []):
            for j, failure in enumerate(sub.get("failures") or [] if isinstance(sub, dict) else []):
                for key in ("category", "code"):
                    value = failure.get(key) if isinstance(failure, dict) else None
                    if not isinstance(value, str) or not value or len(value) > 100:
                        errors.append(f"subUnits[{i}].failures[{j}].{key}: required, at most 100 characters")
    if report.get("type") == "T":
        if not isinstance(report.get("uut"), dict):
            errors.append("uut: required, an object")
        root = report.get("root")
        if not isinstance(root, dict) or root.get("stepType") not in _SEQ:
            errors.append("root: must be a SequenceCall step")
        else:
            status = _check_step(root, "root", strict, errors)
            if strict and status == "F" and report.get("result") != "F":
                errors.append(f"result: the root step failed but the report result is {report.get('result')!r}")
    return errors


@dataclass
class RecordedRequest:
    """One request the fake received: method, path, query, JSON body (or ``None``), answer status."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    at: float = field(default_factory=time.time)


class FakeWats:
    """A validating fake WATS server (see the module docstring).

    Args:
        token: the token the fake accepts in ``Authorization: Basic <token>``.
        processes: process code → name served at ``GET /api/App/Processes`` and accepted in reports.
        strict: also reject inconsistent statuses (the real server accepts them).

    Attributes:
        reports: stored reports by id (the last POST of each id).
        requests: every request, in arrival order.
    """

    def __init__(
        self,
        token: str = "fake-wats-token",
        *,
        processes: dict[int, str] | None = None,
        strict: bool = True,
    ) -> None:
        self.token = token
        self.processes = dict(processes or {10: "ICT", 20: "FCT", 30: "AOI", 40: "SPI", 50: "Final Function"})
        self.strict = strict
        self.reports: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.units: dict[str, dict[str, Any]] = {}
        self._faults: list[int | str] = []
        self._reject: list[str] = []
        self.timeout_delay = 30.0
        self.app = Starlette(
            routes=[
                Route("/api/Report/WSJF", self._post_report, methods=["POST"]),
                Route("/api/Report/Wsjf/{id}", self._get_report, methods=["GET"]),
                Route("/api/App/Processes", self._get_processes, methods=["GET"]),
                Route("/api/Asset/{op}", self._asset, methods=["GET", "POST", "PUT"]),
                Route("/api/Production/{op:path}", self._production, methods=["GET", "POST", "PUT"]),
            ]
        )

    # -- fault injection ---------------------------------------------------------------------
    def fail_next(self, n: int, status: int | str = 503) -> None:
        """Answer the next ``n`` authorized requests with ``status`` (an HTTP code, or ``"timeout"``:
        no answer for ``timeout_delay`` seconds)."""
        self._faults.extend([status] * n)

    def reject_next(self, text: str) -> None:
        """Answer the next report POST with 400 and ``text`` as the validation message."""
        self._reject.append(text)

    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """The recorded requests with that method and path prefix."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path.startswith(path))
        ]

    # -- request handling --------------------------------------------------------------------
    async def _begin(self, request: Request) -> tuple[RecordedRequest, Response | None]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        rec = RecordedRequest(request.method, request.url.path, dict(request.query_params), body)
        self.requests.append(rec)
        if request.headers.get("authorization") != f"Basic {self.token}":
            rec.status = 401
            return rec, JSONResponse({"message": "Authorization has been denied for this request."}, 401)
        if self._faults:
            fault = self._faults.pop(0)
            if fault == "timeout":
                await asyncio.sleep(self.timeout_delay)
                rec.status = 504
                return rec, PlainTextResponse("timeout", 504)
            rec.status = int(fault)
            return rec, JSONResponse({"message": f"injected fault {fault}"}, int(fault))
        return rec, None

    async def _post_report(self, request: Request) -> Response:
        rec, refused = await self._begin(request)
        if refused is not None:
            return refused
        if self._reject:
            rec.status = 400
            return JSONResponse({"message": self._reject.pop(0)}, 400)
        if isinstance(rec.body, bytes | str):
            rec.status = 400
            return JSONResponse({"message": "The request body is not JSON"}, 400)
        problems = validate_report(rec.body, set(self.processes), self.strict)
        if problems:
            rec.status = 400
            return JSONResponse({"message": "; ".join(problems)}, 400)
        self.reports[rec.body["id"]] = rec.body
        rec.status = 200
        return JSONResponse({"ID": rec.body["id"]})

    async def _get_report(self, request: Request) -> Response:
        rec, refused = await self._begin(request)
        if refused is not None:
            return refused
        report = self.reports.get(request.path_params["id"])
        rec.status = 200 if report is not None else 404
        return JSONResponse(report, 200) if report is not None else JSONResponse({"message": "not found"}, 404)

    async def _get_processes(self, request: Request) -> Response:
        rec, refused = await self._begin(request)
        if refused is not None:
            return refused
        rec.status = 200
        return JSONResponse([{"code": c, "name": n, "isTestOperation": True} for c, n in self.processes.items()])

    async def _asset(self, request: Request) -> Response:
        rec, refused = await self._begin(request)
        if refused is not None:
            return refused
        op = request.path_params["op"]
        q = rec.query
        need = {
            "Count": ("serialNumber", "incrementBy"),
            "State": ("serialNumber", "state"),
            "Calibration": ("serialNumber", "dateTime"),
            "Maintenance": ("serialNumber", "dateTime"),
        }
        if op == "Message":
            ok = (
                isinstance(rec.body, dict)
                and bool(rec.body.get("assetId"))
                and isinstance(rec.body.get("comment"), str)
            )
        elif op in need:
            ok = all(q.get(k) for k in need[op])
            if ok and op == "State":
                ok = q["state"].isdigit() and 0 <= int(q["state"]) <= 6
            if ok and op in ("Calibration", "Maintenance"):
                ok = _parse_time(q["dateTime"]) is not None
        else:
            ok = request.method == "GET"
        rec.status = 200 if ok else 400
        return JSONResponse({}, 200) if ok else JSONResponse({"message": f"bad Asset/{op} request"}, 400)

    async def _production(self, request: Request) -> Response:
        rec, refused = await self._begin(request)
        if refused is not None:
            return refused
        op, q = request.path_params["op"], rec.query
        ok = False
        if op == "Units" and isinstance(rec.body, list) and rec.body:
            ok = all(isinstance(u, dict) and u.get("serialNumber") and u.get("partNumber") for u in rec.body)
            if ok:
                for u in rec.body:
                    self.units[f"{u['serialNumber']}/{u['partNumber']}"] = dict(u)
        elif op == "SetUnitPhase":
            ok = bool(q.get("serialNumber") and q.get("partNumber") and q.get("phase", "").isdigit())
        elif op == "AddChildUnit":
            ok = all(
                q.get(k) for k in ("parentSerialNumber", "parentPartNumber", "childSerialNumber", "childPartNumber")
            )
        elif request.method == "GET":
            ok = True
        rec.status = 200 if ok else 400
        return JSONResponse({}, 200) if ok else JSONResponse({"message": f"bad Production/{op} request"}, 400)

    # -- running on a port -------------------------------------------------------------------
    @contextlib.contextmanager
    def serve(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> Iterator[str]:
        """Run the fake with uvicorn in a background thread; yields its base URL (``https://`` with a
        certificate and key, PEM files). ``port`` 0 picks a free one.

        Raises:
            RuntimeError: the server did not start within 10 s.
        """
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=30,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("fake WATS server did not start")
            time.sleep(0.01)
        try:
            yield f"{'https' if ssl_certfile else 'http'}://{host}:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m pywats_wats.testing --port N [--token T] [--lenient]``: run the fake in the foreground."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m pywats_wats.testing", description="validating fake WATS server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--token", default="fake-wats-token")
    parser.add_argument("--lenient", action="store_true", help="skip the consistency checks of strict mode")
    args = parser.parse_args(argv)
    fake = FakeWats(args.token, strict=not args.lenient)
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
