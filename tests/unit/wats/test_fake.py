"""The fake WATS's validation (WATS.md §5): the documented minimal report passes, each rule catches its
violation, and the HTTP side answers 401/400/200 and stores by id (in-process, httpx ASGI transport)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from pywats_wats.client import WatsClient
from pywats_wats.errors import WatsAuthError, WatsRejectedError, WatsUnavailableError
from pywats_wats.testing import FakeWats, validate_report

#: WATS.md §3, the minimal valid example.
MINIMAL: dict[str, Any] = {
    "type": "T",
    "id": "3f0c1a52-9b1e-4c1e-8a51-2f6f4b6c9d10",
    "pn": "PCBA-1000",
    "sn": "SN-000123",
    "rev": "A",
    "processCode": 10,
    "result": "F",
    "machineName": "ICT-01",
    "location": "Line 3",
    "purpose": "Production",
    "start": "2024-05-02T10:15:30.000+02:00",
    "startUTC": "2024-05-02T08:15:30.000Z",
    "uut": {"user": "BADGE489499", "execTime": 12.5},
    "miscInfos": [{"description": "cfx.transaction_id", "text": "c16bb3f4-8088-4697-b789-80faec48ac5a"}],
    "root": {
        "stepType": "SequenceCall",
        "name": "MainSequence Callback",
        "group": "M",
        "status": "F",
        "seqCall": {"path": "cfx://SMTPlus.Model_21232.SN23123", "name": "UnitsTested", "version": "1.0.0"},
        "steps": [
            {
                "stepType": "SequenceCall",
                "name": "RESISTANCE_CHECK_R21",
                "group": "M",
                "status": "P",
                "seqCall": {"path": "cfx", "name": "RESISTANCE_CHECK_R21", "version": "1.0.0"},
                "steps": [
                    {
                        "stepType": "ET_NLT",
                        "name": "RESISTANCE_MEASUREMENT_R21",
                        "group": "M",
                        "status": "P",
                        "numericMeas": [
                            {
                                "status": "P",
                                "value": 28.3,
                                "unit": "Ohm",
                                "compOp": "GELE",
                                "lowLimit": 28.0,
                                "highLimit": 28.4,
                            }
                        ],
                    }
                ],
            },
            {
                "stepType": "ET_PFT",
                "name": "RESISTANCE_CHECK_R22",
                "group": "M",
                "status": "F",
                "causedUUTFailure": True,
                "errorMessage": "RESFAIL2: Resistance Value Out of Tolerance",
                "booleanMeas": [{"status": "F"}],
            },
            {
                "stepType": "ET_SVT",
                "name": "Firmware version",
                "group": "M",
                "status": "P",
                "stringMeas": [{"status": "P", "value": "1.4.2", "compOp": "CASESENSIT", "limit": "1.4.2"}],
            },
            {
                "stepType": "ET_NLT",
                "name": "Supply current",
                "group": "M",
                "status": "P",
                "numericMeas": [{"status": "P", "value": 0.41, "unit": "A", "compOp": "LE", "lowLimit": 0.5}],
            },
        ],
    },
}
PROCESSES = {10, 20}


def mutate(fn: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    body = copy.deepcopy(MINIMAL)
    fn(body)
    return body


def test_the_documented_minimal_report_is_valid_in_strict_mode() -> None:
    assert validate_report(MINIMAL, PROCESSES, strict=True) == []


@pytest.mark.parametrize(
    ("broken", "needle"),
    [
        (mutate(lambda b: b.pop("pn")), "pn: required"),
        (mutate(lambda b: b.pop("startUTC")), "startUTC: required"),
        (mutate(lambda b: b.update(type="X")), "type"),
        (mutate(lambda b: b.update(result="Q")), "result"),
        (mutate(lambda b: b.update(sn="SN*1")), "forbidden character"),
        (mutate(lambda b: b.update(sn="S" * 101)), "at most 100"),
        (mutate(lambda b: b.update(processCode="ten")), "not an integer"),
        (mutate(lambda b: b.update(processCode=99)), "not a process"),
        (mutate(lambda b: b.update(start="2024-05-02T10:15:30")), "offset"),
        (mutate(lambda b: b.update(startUTC="2024-05-02T09:15:30Z")), "same instant"),
        (mutate(lambda b: b["miscInfos"][0].update(text="x" * 101)), "miscInfos"),
        (mutate(lambda b: b.update(subUnits=[{"partType": "p" * 51, "sn": "1", "pn": "2"}])), "partType"),
        (mutate(lambda b: b.pop("uut")), "uut"),
        (mutate(lambda b: b["root"].pop("seqCall")), "seqCall"),
        (mutate(lambda b: b["root"]["steps"][1].update(group="X")), "group"),
        (mutate(lambda b: b["root"]["steps"][1].update(name="")), "name"),
        (mutate(lambda b: b["root"]["steps"][1].update(booleanMeas={"status": "F"})), "must be an array"),
        (
            mutate(lambda b: b["root"]["steps"][3]["numericMeas"][0].update(compOp="GELE")),
            "needs lowLimit and highLimit",
        ),
        (mutate(lambda b: b["root"]["steps"][3]["numericMeas"][0].update(compOp="BETWEEN")), "not a CompOp"),
        (mutate(lambda b: b["root"]["steps"][2]["stringMeas"][0].pop("limit")), "needs a limit"),
    ],
)
def test_each_rule_catches_its_violation(broken: dict[str, Any], needle: str) -> None:
    problems = validate_report(broken, PROCESSES, strict=False)
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize(
    ("broken", "needle"),
    [
        (mutate(lambda b: b["root"]["steps"][3]["numericMeas"][0].update(value=0.7)), "fails LE"),
        (mutate(lambda b: b["root"].update(status="P")), "a child step failed"),
        (mutate(lambda b: b.update(result="P")), "root step failed"),
    ],
)
def test_strict_mode_catches_inconsistent_statuses_the_real_server_accepts(broken: dict[str, Any], needle: str) -> None:
    assert validate_report(broken, PROCESSES, strict=False) == []
    assert any(needle in p for p in validate_report(broken, PROCESSES, strict=True))


async def test_fake_checks_auth_stores_by_id_records_and_injects_faults() -> None:
    fake = FakeWats("t0k3n", processes={10: "ICT"})
    transport = httpx.ASGITransport(app=fake.app)
    async with WatsClient("http://wats", "wrong", transport=transport) as bad:
        with pytest.raises(WatsAuthError) as auth:
            await bad.submit_report(MINIMAL)
        assert auth.value.status == 401 and "wrong" not in str(auth.value)
        assert bad.config_problem is not None and "401" in bad.config_problem
    async with WatsClient("http://wats", "t0k3n", transport=transport) as client:
        assert await client.submit_report(MINIMAL) == MINIMAL["id"]
        assert await client.submit_report({**MINIMAL, "sn": "SN-000124"}) == MINIMAL["id"]
        assert list(fake.reports) == [MINIMAL["id"]] and fake.reports[MINIMAL["id"]]["sn"] == "SN-000124"
        assert (await client.get_report(MINIMAL["id"]))["sn"] == "SN-000124"
        fake.fail_next(1, 503)
        with pytest.raises(WatsUnavailableError) as down:
            await client.submit_report(MINIMAL)
        assert down.value.status == 503
        fake.reject_next("Process code 10 is not a test operation")
        with pytest.raises(WatsRejectedError, match="Process code 10 is not a test operation"):
            await client.submit_report(MINIMAL)
        with pytest.raises(WatsRejectedError, match="processCode: 20 is not a process"):
            await client.submit_report({**MINIMAL, "processCode": 20})
        assert await client.processes() == [{"code": 10, "name": "ICT", "isTestOperation": True}]
    statuses = [r.status for r in fake.calls("POST", "/api/Report/WSJF")]
    assert statuses == [401, 200, 200, 503, 400, 400]


async def test_client_turns_a_refused_connection_and_a_timeout_into_unavailable() -> None:
    async with WatsClient("http://127.0.0.1:9", "t", timeout=2) as client:
        with pytest.raises(WatsUnavailableError, match="cannot reach"):
            await client.submit_report(MINIMAL)
    fake = FakeWats("t")
    fake.timeout_delay = 3
    fake.fail_next(1, "timeout")
    with fake.serve() as url:  # a real socket: the in-process ASGI transport has no read timeout
        async with WatsClient(url, "t", timeout=0.3) as client:
            with pytest.raises(WatsUnavailableError, match="no answer within"):
                await client.submit_report(MINIMAL)
            assert await client.submit_report(MINIMAL) == MINIMAL["id"]


def export_style_report() -> dict[str, Any]:
    """Shapes a real server export carries (olreppe/pyWATS ``uut-wsjf-export.json``, written anew here):
    step ids, a chart step type WSJF does not name with named measurements, a loop whose iterations leave
    ``seqCall.version`` out, a loop summary step without measurements, sub-unit positions."""
    body = copy.deepcopy(MINIMAL)
    body["uut"]["stepIdCausedUUTFailure"] = 5
    body["subUnits"] = [{"partType": "PSU", "sn": "PSU-1", "pn": "PSU-24V", "rev": "B", "position": 0}]
    chart = {
        "id": 47,
        "stepType": "WATS_XYGMNLT",
        "name": "Current from burn-in test",
        "group": "M",
        "status": "P",
        "chart": {
            "chartType": "Line",
            "series": [{"dataType": "XYG", "name": "Current", "xdata": "0;1", "ydata": "60;61"}],
        },
        "numericMeas": [
            {"name": "MinValue", "status": "P", "value": 60.0, "unit": "A", "compOp": "GE", "lowLimit": 52.0},
            {"name": "Mean", "status": "P", "value": 60.5, "unit": "A", "compOp": "LOG"},
        ],
    }
    loop = {
        "id": 50,
        "stepType": "SequenceCall",
        "name": "SequenceCallLoop",
        "group": "M",
        "status": "P",
        "loop": {"num": 3, "endingIndex": 3, "passed": 3, "failed": 0},
        "seqCall": {"path": "Seq1", "name": "SequenceCallLoop", "version": None},
        "steps": [
            {"id": 51, "stepType": "ET_NLT", "name": "Loop summary", "group": "M", "status": "P", "loop": {"num": 3}}
        ],
    }
    body["root"]["steps"] += [chart, loop]
    return body


def test_shapes_of_a_real_server_export_are_accepted_by_the_fake_and_the_model() -> None:
    from pywats_wats.models import UUTReport

    body = export_style_report()
    assert validate_report(body, PROCESSES, strict=True) == []
    assert UUTReport.model_validate(body).to_wsjf()["root"]["steps"][4]["chart"]["chartType"] == "Line"
    del body["root"]["steps"][5]["loop"]  # outside a loop the version is required again
    assert any("seqCall" in p for p in validate_report(body, PROCESSES))
