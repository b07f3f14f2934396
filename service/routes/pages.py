"""/dashboard (operators) and /me (end users): static HTML shells whose scripts call the JSON API.

The pages carry no credential and no data: the operator's key and the user's token stay in the
browser (sessionStorage) and travel only as Bearer headers, never in a URL the server could log.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Response

from service.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Only this origin's own scripts and styles: no inline script, nothing from elsewhere. If user data ever
# reached the DOM as markup, an injected <img onerror> or <script> would still not run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@cache
def assets() -> dict[str, bytes]:
    """Every file of service/web (package data) by name, read once: requests can name nothing else."""
    web = resources.files("service").joinpath("web")
    return {f.name: f.read_bytes() for f in web.iterdir() if f.is_file() and suffix(f.name) in ASSET_TYPES}


def suffix(name: str) -> str:
    return name[name.rfind(".") :] if "." in name else ""


def page(name: str) -> Response:
    body = assets().get(name)
    if body is None:  # a packaging mistake, not a user error: the page file did not ship
        raise RuntimeError(f"service/web/{name} is missing from the package")
    # no-store: the shell is tiny, and a cached copy must never outlive a deploy that changed the script
    return Response(body, media_type=ASSET_TYPES[".html"], headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


@router.get("/dashboard")
async def dashboard() -> Response:
    """Live operations view; the script asks for an app API key and polls /v1/ops/stats."""
    return page("dashboard.html")


@router.get("/me")
async def my_memories() -> Response:
    """The end user's memory page; the app links here as /me#token=<user token>."""
    return page("me.html")


@router.get("/web/{name}")
async def web_asset(name: str) -> Response:
    body = assets().get(name)
    if body is None:
        raise NotFound(f"no file {name!r}")
    media_type = ASSET_TYPES[suffix(name)]
    return Response(body, media_type=media_type, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})
