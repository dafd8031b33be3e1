"""Swagger UI at ``/docs``: the OpenAPI document (``/openapi.json``) rendered from assets shipped in a
package, so the page works on a line network with no internet.

The swagger-ui dist files come from the ``swagger-ui-bundle`` package (the ``http`` extra) and are served
as they are under ``/docs/assets/``. The page's start-up script is a file of its own (``/docs/init.js``),
not inline, because the page is sent with the same strict Content-Security-Policy as the console: scripts
from this origin only.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import ConfigError
from .problem import problem

__all__ = ["DOCS_CSP", "docs_routes", "swagger_ui_dir"]

log = logging.getLogger(__name__)

#: Scripts and styles from this origin only; swagger-ui's stylesheet draws its icons as ``data:`` images.
DOCS_CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"

_HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_INDEX = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>pyWATS events API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

# validatorUrl null: the default would send the document to an online validator for a badge.
_INIT = """"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
});
"""


def swagger_ui_dir() -> Path:
    """The directory of the swagger-ui dist files (``swagger-ui-bundle.js``, ``swagger-ui.css``...).

    Raises:
        ConfigError: the ``swagger-ui-bundle`` package is not installed (install the ``http`` extra).
    """
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        raise ConfigError(
            "/docs needs the swagger-ui-bundle package: pip install 'pywats-events[http]'"
        ) from None
    path = Path(swagger_ui_path)
    if not (path / "swagger-ui-bundle.js").is_file():
        raise ConfigError(f"swagger-ui-bundle is installed but has no swagger-ui-bundle.js in {path}")
    return path


async def _index(request: Request) -> Response:
    return HTMLResponse(_INDEX, headers=_HEADERS)


async def _init(request: Request) -> Response:
    return Response(_INIT, media_type="text/javascript", headers=_HEADERS)


def docs_routes() -> list[BaseRoute]:
    """The routes of ``/docs`` (the page), ``/docs/init.js`` and ``/docs/assets/*`` (swagger-ui dist).

    Without swagger-ui-bundle (an install that skipped the ``http`` extra) the service still starts:
    ``/docs`` answers 404 with the install command and the reason is logged once, since the API itself
    does not depend on its rendering.
    """
    try:
        assets = swagger_ui_dir()
    except ConfigError as exc:
        log.warning("%s; /docs answers 404", exc)
        reason = str(exc)

        async def _missing(request: Request) -> Response:
            return problem(404, reason)

        return [Route("/docs", _missing, methods=["GET"])]
    return [
        Route("/docs", _index, methods=["GET"]),
        Route("/docs/init.js", _init, methods=["GET"]),
        Mount("/docs/assets", app=StaticFiles(directory=assets), name="docs-assets"),
    ]
