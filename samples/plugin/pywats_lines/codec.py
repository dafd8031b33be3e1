"""Decoder ``result-csv``: one ``station,serial,result`` line to one ``test.result`` event.

The line carries no id of its own, so the event id is derived from its content: a line sent again after a
lost ``ACK`` gives the same event id, and the idempotency records make the copy a no-op.
"""

from pywats_events import DecodeContext, Event, derive_event_id

from .errors import BadResultLineError

__all__ = ["decode_result_csv"]

_RESULTS = {"pass": "Passed", "passed": "Passed", "fail": "Failed", "failed": "Failed"}


def decode_result_csv(body: bytes, ctx: DecodeContext) -> list[Event]:
    """``b"ict-1,SN123,pass"`` -> one ``test.result`` event from source ``ict-1``.

    Raises:
        BadResultLineError: not three comma-separated fields, or a result other than pass/fail.
    """
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise BadResultLineError(f"invalid UTF-8 at byte {exc.start}", ctx.origin) from None
    fields = [f.strip() for f in text.split(",")]
    if len(fields) != 3 or not all(fields):
        raise BadResultLineError(f"expected 'station,serial,result', got {text[:80]!r}", ctx.origin)
    station, serial, result = fields
    if result.lower() not in _RESULTS:
        raise BadResultLineError(f"result {result!r} is not pass or fail", ctx.origin)
    return [
        Event(
            id=derive_event_id(f"result-csv:{station},{serial},{result}", 0),
            type="test.result",
            source=station,
            payload={"serial_number": serial, "result": _RESULTS[result.lower()]},
            subjects=[serial],
            headers=dict(ctx.headers),
        )
    ]
