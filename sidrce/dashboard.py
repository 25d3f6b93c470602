"""The built-in dashboard: ``GET /dashboard`` (``/`` redirects there) and its static files, served
by the SIDRCE app.

The page carries no data and no secret, so it is public; its script fetches ``/report`` (which the
token guards) with ``Authorization: Bearer`` when the person gave a token. Everything it needs is
in ``sidrce/static/`` (plain JS and inline SVG; no CDN, nothing vendored), and a strict
Content-Security-Policy keeps it that way.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

# only these files are served: no path from a request ever reaches the file system
STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
PAGE = "dashboard.html"

SECURITY_HEADERS = {
    # same-origin script, style and fetches only: a page that shows telemetry loads nothing else
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return resources.files("sidrce").joinpath("static", name).read_bytes()


async def page(request: Request) -> Response:
    return Response(_read(PAGE), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


async def slash(request: Request) -> Response:
    return RedirectResponse("/dashboard", status_code=308)


async def root(request: Request) -> Response:
    # where `sidrce serve` says it serves: the page (public, like /dashboard); the redirect carries
    # nothing from the request, so no token or query string is echoed back
    return RedirectResponse("/dashboard", status_code=307)


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    media = STATIC.get(name)
    if media is None:
        return PlainTextResponse("not found", status_code=404)
    return Response(_read(name), media_type=media, headers=SECURITY_HEADERS)


def routes() -> list[BaseRoute]:
    """The routes to add to the SIDRCE app (``sidrce.server.create_app`` does)."""
    return [
        Route("/", root),
        Route("/dashboard", page),
        Route("/dashboard/", slash),
        Route("/dashboard/static/{name}", static),
    ]
