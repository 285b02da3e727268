"""Serves the console's static files under /console/ with a strict Content-Security-Policy.

The console is plain ES modules and CSS shipped as package data: no build step, nothing
fetched from elsewhere. Files are read once, kept in memory (also gzipped) and answered with
an ETag, so a reload costs a few 304s.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

router = APIRouter(include_in_schema=False)

# Nothing foreign: scripts, styles, audio and API calls come from this origin only; audio of a
# simulated call is played from a blob: URL the page made itself. No inline script or style.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class StaticFile:
    """One file of the console, ready to send."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _walk(folder: Traversable, prefix: str) -> dict[str, StaticFile]:
    found: dict[str, StaticFile] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
            continue
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if suffix not in MEDIA_TYPES:
            continue
        body = entry.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        found[name] = StaticFile(body, gzip.compress(body, 9, mtime=0), MEDIA_TYPES[suffix], digest)
    return found


def load_files() -> dict[str, StaticFile]:
    """Every file under console/static, by its path below /console/."""
    return _walk(resources.files("openivr.console") / "static", "")


FILES = load_files()


def _answer(request: Request, file: StaticFile) -> Response:
    etag = f'"{file.etag}"'
    headers = dict(SECURITY_HEADERS)
    # Revalidate every time: a new version of OpenIVR must never run with an old module.
    headers.update({"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"})
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    body = file.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = file.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=file.media_type, headers=headers)


@router.api_route("/", methods=["GET", "HEAD"])
async def root() -> RedirectResponse:
    """A browser opening the node lands on the console."""
    return RedirectResponse("/console/", status_code=307)


# The slash-tolerant middleware routes /console/ as /console: one page answers both. Its
# links are absolute, so they resolve the same from either.
@router.api_route("/console", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    """The console's single page."""
    return _answer(request, FILES["index.html"])


@router.api_route("/console/{path:path}", methods=["GET", "HEAD"])
async def asset(request: Request, path: str) -> Response:
    """A script, style sheet or image of the console; anything else is 404."""
    file = FILES.get(path)
    if file is None:
        headers = dict(SECURITY_HEADERS)
        return Response("not found", status_code=404, media_type="text/plain", headers=headers)
    return _answer(request, file)
