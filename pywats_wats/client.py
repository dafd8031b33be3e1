"""The WATS REST client (async, httpx): reports, assets, production units, processes.

Every call sends ``Authorization: Basic <token>`` (support.wats.com "Authentication", article 207424253;
the token from Control Panel → Tokens is sent as it is) and JSON. One connection pool per client, kept
alive and reused. Answers become exceptions the bus knows how to treat:

- 2xx: done (the body is not relied on: the report id is the one sent);
- 400 and other 4xx but 401/403/408/429: ``WatsRejectedError`` (unrecoverable) with the server's text
  ("Post WSJF", support article 360014879119: 400 carries the validation error);
- 401/403: ``WatsAuthError`` (parked, not spent; readiness says so);
- 5xx, 408, 429, timeouts, refused connections: ``WatsUnavailableError`` (retried, then parked).

Paths (olreppe/pyWATS ``core/routes.py``): ``POST /api/Report/WSJF``, ``GET /api/Report/Wsjf/{id}``,
``GET /api/App/Processes``, ``/api/Asset/...``, ``/api/Production/...``.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Self

import httpx
from pydantic import SecretStr

from pywats_events import jsonsafe, tracing

from .errors import WatsAuthError, WatsConfigError, WatsRejectedError, WatsUnavailableError
from .models import UURReport, UUTReport
from .settings import ClientSettings

__all__ = ["REPORT_PATH", "WatsClient"]

log = logging.getLogger(__name__)

REPORT_PATH = "/api/Report/WSJF"
_TRANSIENT = frozenset({408, 425, 429})


def _message(response: httpx.Response) -> str:
    """The server's error text: ``message``/``Message``/``error`` of a JSON body, else the text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:2000]
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        for key in ("message", "Message", "error", "detail"):
            if data.get(key):
                return str(data[key])[:2000]
    return response.text[:2000]


def _tls(verify: bool | str, client_cert: str | None) -> bool | ssl.SSLContext:
    """httpx's ``verify``: ``False``, ``True`` (its own CA bundle), or a context with our CA and client
    certificate.

    Raises:
        WatsConfigError: a CA or certificate file that cannot be read.
    """
    if verify is False or (verify is True and not client_cert):
        return verify
    try:
        ctx = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        if client_cert:
            ctx.load_cert_chain(client_cert)
    except (OSError, ssl.SSLError) as exc:
        raise WatsConfigError(f"TLS files (verify={verify!r}, client_cert={client_cert!r}): {exc}") from None
    return ctx


class WatsClient:
    """Async client of one WATS server.

    Args:
        base_url: the server (``https://wats.example.com``).
        token: the API token (kept secret: never in ``repr``, logs or error messages).
        timeout: seconds for connecting and for each answer.
        verify: verify TLS certificates (``True``), skip it (``False``), or a CA bundle path.
        client_cert: path of a PEM client certificate (key included), if the server asks for one.
        max_connections: connections kept open (keep-alive).
        transport: an httpx transport instead of the network (tests: ``httpx.ASGITransport(fake.app)``).

    Raises:
        WatsConfigError: a CA or client certificate file that cannot be used.
        WatsUnavailableError, WatsAuthError, WatsRejectedError: from the calls, see the module docstring.
    """

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        timeout: float = 30.0,
        verify: bool | str = True,
        client_cert: str | None = None,
        max_connections: int = 10,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.timeout = timeout
        self._client_args: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": httpx.Timeout(timeout),
            "verify": _tls(verify, client_cert),
            "limits": httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            "transport": transport,
        }
        self._http: httpx.AsyncClient | None = None
        #: What a person must fix (token refused, TLS certificate not trusted); ``None`` after any accepted
        #: call. Shown in the bus's readiness.
        self.config_problem: str | None = None

    @classmethod
    def from_settings(cls, settings: ClientSettings, transport: httpx.AsyncBaseTransport | None = None) -> Self:
        """A client for ``settings`` (token resolved from ``token_env`` now).

        Raises:
            WatsConfigError: ``token_env`` is not set.
        """
        return cls(
            settings.base_url,
            settings.resolved_token(),
            timeout=settings.timeout,
            verify=settings.verify,
            client_cert=settings.client_cert,
            max_connections=settings.max_connections,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"WatsClient({self.base_url!r})"

    def set_token(self, token: str | SecretStr) -> None:
        """Use another token from the next call on (a fixed token takes effect without a restart)."""
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(**self._client_args)
        return self._http

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        """One call; returns the 2xx response.

        Args:
            method: ``GET``, ``POST``, ``PUT``.
            path: the API path (``/api/Report/WSJF``).
            params: query parameters (``None`` values left out).
            body: JSON-serializable body, or ``None``.

        Raises:
            WatsUnavailableError: no answer, or 5xx/408/425/429.
            WatsAuthError: 401/403.
            WatsRejectedError: another non-2xx answer, with the server's text.
        """
        what = f"{method} {self.base_url}{path}"
        headers = {"Authorization": f"Basic {self._token.get_secret_value()}", "Accept": "application/json"}
        content = None
        if body is not None:
            content = jsonsafe.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        # A CLIENT span while tracing; its W3C trace context goes with the request (pywats_events.tracing).
        with tracing.client_span(method, f"{self.base_url}{path}") as trace:
            headers.update(trace)
            response = await self._send(what, method, path, query, content, headers)
            tracing.set_status_code(response.status_code)
        status = response.status_code
        if 200 <= status < 300:
            self.config_problem = None
            return response
        text = _message(response)
        if status in (401, 403):
            self._problem(f"WATS refused the token ({status}) at {what}; check token/token_env")
            raise WatsAuthError(f"{what} answered {status}: {text}", status)
        if status >= 500 or status in _TRANSIENT:
            raise WatsUnavailableError(f"{what} answered {status}: {text}", status)
        raise WatsRejectedError(f"{what} answered {status}: {text}", status)

    async def _send(
        self,
        what: str,
        method: str,
        path: str,
        query: dict[str, Any],
        content: bytes | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        """Send one request; transport failures become ``WatsUnavailableError`` (TLS ones held as a
        configuration problem)."""
        try:
            return await self._client().request(method, path, params=query, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise WatsUnavailableError(f"{what}: no answer within {self.timeout:g}s ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, ssl.SSLError):
                cause = cause.__cause__ or cause.__context__
            if isinstance(cause, ssl.SSLError):
                # A certificate that is not trusted does not fix itself: held like a refused token.
                self._problem(f"TLS with {self.base_url} failed ({cause}); check verify/client_cert")
                raise WatsUnavailableError(f"{what}: TLS failed: {cause}") from None
            raise WatsUnavailableError(f"{what}: cannot reach the server: {type(exc).__name__}: {exc}") from None

    def _problem(self, problem: str) -> None:
        if self.config_problem is None:  # once per episode: the breaker's probes would repeat it
            log.error("%s; deliveries are held until a call is accepted", problem)
        self.config_problem = problem

    # -- reports -----------------------------------------------------------------------------
    async def submit_report(self, report: UUTReport | UURReport | Mapping[str, Any]) -> str:
        """Post one report (``POST /api/Report/WSJF``) and return its id (the one sent).

        Raises:
            as ``request``.
        """
        body = report.to_wsjf() if isinstance(report, UUTReport | UURReport) else dict(report)
        await self.request("POST", REPORT_PATH, body=body)
        return str(body.get("id", ""))

    async def get_report(self, report_id: str) -> dict[str, Any]:
        """Read a stored report back (``GET /api/Report/Wsjf/{id}``). Raises as ``request``."""
        data: dict[str, Any] = (await self.request("GET", f"/api/Report/Wsjf/{report_id}")).json()
        return data

    async def processes(self) -> list[dict[str, Any]]:
        """The server's processes (``GET /api/App/Processes``): ``[{"code", "name", ...}]``.
        Raises as ``request``."""
        data = (await self.request("GET", "/api/App/Processes")).json()
        return list(data) if isinstance(data, list) else []

    # -- assets (olreppe/pyWATS domains/asset/async_repository.py) ---------------------------
    async def asset_message(self, asset_id: str, comment: str) -> None:
        """Write the asset log (``POST /api/Asset/Message``)."""
        await self.request("POST", "/api/Asset/Message", body={"assetId": asset_id, "comment": comment})

    async def asset_count(self, serial_number: str, increment_by: int = 1) -> None:
        """Raise an asset's usage count (``PUT /api/Asset/Count``)."""
        await self.request(
            "PUT", "/api/Asset/Count", params={"serialNumber": serial_number, "incrementBy": increment_by}
        )

    async def asset_state(self, serial_number: str, state: int) -> None:
        """Set an asset's state, a WATS AssetState code 0-6 (``PUT /api/Asset/State``)."""
        await self.request("PUT", "/api/Asset/State", params={"serialNumber": serial_number, "state": state})

    async def asset_service(self, kind: str, serial_number: str, when: str, comment: str | None) -> None:
        """Record a calibration or maintenance (``kind`` ``Calibration`` / ``Maintenance``; ``when`` ISO 8601)
        (``POST /api/Asset/Calibration`` / ``/api/Asset/Maintenance``)."""
        params = {"serialNumber": serial_number, "dateTime": when, "comment": comment}
        await self.request("POST", f"/api/Asset/{kind}", params=params)

    # -- production (olreppe/pyWATS domains/production/async_repository.py) -----------------
    async def register_units(self, units: Sequence[Mapping[str, Any]]) -> None:
        """Register units (``PUT /api/Production/Units``; ``[{"serialNumber", "partNumber", "revision", ...}]``)."""
        await self.request("PUT", "/api/Production/Units", body=[dict(u) for u in units])

    async def set_unit_phase(
        self, serial_number: str, part_number: str, phase: int, comment: str | None = None
    ) -> None:
        """Set a unit's phase, a UnitPhaseFlag (16 finalized, 32 scrapped) (``PUT /api/Production/SetUnitPhase``)."""
        params = {"serialNumber": serial_number, "partNumber": part_number, "phase": phase, "comment": comment}
        await self.request("PUT", "/api/Production/SetUnitPhase", params=params)

    async def add_child_unit(self, parent_sn: str, parent_pn: str, child_sn: str, child_pn: str) -> None:
        """Record box-build traceability (``POST /api/Production/AddChildUnit``)."""
        params = {
            "parentSerialNumber": parent_sn,
            "parentPartNumber": parent_pn,
            "childSerialNumber": child_sn,
            "childPartNumber": child_pn,
        }
        await self.request("POST", "/api/Production/AddChildUnit", params=params)

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
