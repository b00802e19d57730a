"""GET /dashboard: the monitoring page, one self-contained file (no CDN: the box may have no
internet). The page holds no data: its script asks for an admin key (or reads it from the URL
fragment, ``/dashboard#key=...``, which browsers never send) and reads the admin API with it
every few seconds. Its content security policy lets only its own script and style run, and
lets it talk only to this service."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["operations"])


@cache
def _page() -> tuple[str, str]:
    """The page and its content security policy (the hashes of its inline script and style)."""
    html = resources.files("feedback_api").joinpath("static/dashboard.html").read_text()

    def digest(tag: str) -> str:
        body = re.search(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        assert body is not None, tag
        sha = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        return f"'sha256-{sha}'"

    policy = (f"default-src 'none'; script-src {digest('script')}; "
              f"style-src {digest('style')}; connect-src 'self'; img-src 'self' data:; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
    return html, policy


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    html, policy = _page()
    return HTMLResponse(html, headers={"content-security-policy": policy})
