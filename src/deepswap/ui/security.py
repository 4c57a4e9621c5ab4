"""What keeps the web UI to its owner: an access token (on loopback too: other accounts on the
same machine reach loopback as well), no cross-site writes, capped and timed uploads under
sanitised names, hardened response headers, no path that leads outside ROOT and no URL that leads
into the owner's network.

``Guard`` is one ASGI middleware doing the request checks, in this order:

1. **Access token** (unless the server runs with ``--no-token``): ``?token=…`` in the URL sets an
   HttpOnly, SameSite=Strict cookie (named after the port, so two servers on one host keep their
   own) and redirects to the same URL without it; every other request needs that cookie: 401
   without a token, 403 with a wrong one.
2. **Cross-site writes**: every request other than GET/HEAD must carry the page's CSRF token in the
   ``X-CSRF-Token`` header (a custom header, which another site cannot send without a CORS
   preflight this server never grants), and a browser's ``Sec-Fetch-Site`` / ``Origin`` must say
   it came from this origin: 403 otherwise.
3. **Upload cap and pace**: a body over ``max_body`` bytes (by its Content-Length, or counted as
   it arrives) is answered 413; one that arrives slower than ``MIN_BODY_RATE`` bytes a second on
   average after ``BODY_GRACE_SECONDS`` is answered 408. Either way the connection is closed.

Every response carries ``SECURITY_HEADERS`` (a Content-Security-Policy allowing only this origin's
scripts and styles, no framing, no MIME sniffing, no referrer). Slow or half-sent request headers
and too many connections are the server's business (``connections``). On loopback the app is also
wrapped in Starlette's ``TrustedHostMiddleware`` (see ``app``) so that a page on another site
cannot reach it by DNS rebinding.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import re
import socket
import time
import unicodedata
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import URL, Headers, MutableHeaders, QueryParams
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import DeepswapError

TOKEN_COOKIE = "deepswap_token"
CSRF_HEADER = "x-csrf-token"
MIN_BODY_RATE = 64 * 2 ** 10
BODY_GRACE_SECONDS = 20.0
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                               "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
SAFE_METHODS = ("GET", "HEAD")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class BodyTooLarge(Exception):
    """The request body passed the cap while it was being read."""


class BodyTooSlow(Exception):
    """The request body arrived slower than ``MIN_BODY_RATE`` allows."""


class Guard:
    """The request checks described in the module docstring, around the whole app."""

    def __init__(self, app: ASGIApp, *, csrf_token: str, access_token: str | None, max_body: int) -> None:
        self.app = app
        self.csrf_token = csrf_token
        self.access_token = access_token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _hardened(send)
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self._capped(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        """The answer to a request that fails a check, or None when it passes them all."""
        headers = Headers(scope=scope)
        if self.access_token is not None:
            query = QueryParams(scope.get("query_string", b""))
            if "token" in query:
                if not _same(query["token"], self.access_token):
                    return PlainTextResponse("wrong access token", 403)
                return self._let_in(scope, query)
            cookie = _cookie(headers, token_cookie(scope))
            if cookie is None:
                return PlainTextResponse("this server needs its access token: open the URL it printed", 401)
            if not _same(cookie, self.access_token):
                return PlainTextResponse("wrong access token", 403)
        if scope["method"] not in SAFE_METHODS and not self._same_origin_write(headers):
            return PlainTextResponse("refused: a change must come from this server's own page", 403)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return _too_large(self.max_body)
        return None

    def _let_in(self, scope: Scope, query: QueryParams) -> Response:
        """Keep the access token in a cookie and send the browser on to the URL without it."""
        rest = urlencode([(key, value) for key, value in query.multi_items() if key != "token"])
        url = URL(scope=scope).replace(query=rest)
        response = RedirectResponse(url.path + (f"?{rest}" if rest else ""), 303)
        response.set_cookie(token_cookie(scope), self.access_token or "", httponly=True, samesite="strict", path="/")
        return response

    def _same_origin_write(self, headers: Headers) -> bool:
        if not _same(headers.get(CSRF_HEADER, ""), self.csrf_token):
            return False
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = headers.get("origin")
        return origin is None or urlsplit(origin).netloc == headers.get("host")

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with a ``receive`` that stops a body growing past the cap or arriving too
        slowly (the wait for a disconnect after the body, as event streams do, is not timed)."""
        received = 0
        body_done = False
        started_at = time.monotonic()
        response_started = False

        async def checked_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            deadline = started_at + BODY_GRACE_SECONDS + received / MIN_BODY_RATE
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise BodyTooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, checked_receive, tracking_send)
        except (BodyTooLarge, BodyTooSlow) as error:
            if not response_started:
                answer = _too_large(self.max_body) if isinstance(error, BodyTooLarge) else too_slow()
                await answer(scope, receive, send)


def token_cookie(scope: Scope) -> str:
    """The access token's cookie, one per port: cookies do not tell ports apart, servers must."""
    server = scope.get("server")
    return f"{TOKEN_COOKIE}_{server[1]}" if server and server[1] else TOKEN_COOKIE


def _hardened(send: Send) -> Send:
    """``send`` adding ``SECURITY_HEADERS`` to the response, and closing the connection after a
    refused body (the rest of it is not read)."""

    async def hardened_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message.setdefault("headers", [])
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                headers.setdefault(name, value)
            if message["status"] in (408, 413):
                headers["connection"] = "close"
        await send(message)

    return hardened_send


def _too_large(limit: int) -> Response:
    return PlainTextResponse(f"upload too large: the limit is {limit / 2 ** 20:.0f} MiB", 413)


def too_slow() -> Response:
    return PlainTextResponse(f"upload too slow: it must arrive at {MIN_BODY_RATE // 1024} KiB/s or faster", 408)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def check_web_url(url: str, allow_private: bool = False) -> None:
    """Refuse (one-line ``DeepswapError``) anything but an http(s) URL whose host resolves to public
    addresses only: the web form must not read the owner's local files nor, unless the owner's
    settings allow it (``allow_private``), reach into their loopback, link-local or private network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeepswapError(f"{url}: not an http(s) URL; add local files with the upload button")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError, ValueError):
        raise DeepswapError(f"{url}: cannot find the host {parts.hostname!r}") from None
    for address in found:
        ip = ipaddress.ip_address(address.split("%")[0])
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if not ip.is_global or ip.is_multicast:
            raise DeepswapError(f"{url}: {parts.hostname} is a loopback, link-local or private address; "
                                "the web UI fetches only public URLs (set ui_allow_private_urls = true in "
                                "the [settings] of your deepswap config.toml to allow them)")


def inside(root: Path, relative: str | Path) -> Path | None:
    """``root / relative`` resolved (symlinks followed), or None when that leads outside ``root``."""
    base = root.resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) else None


def safe_name(name: str) -> str:
    """A file name from a browser made safe to store: its last part only, ASCII letters, digits,
    ``.-_``, no leading dot, at most 80 characters (the suffix kept); "upload" when nothing is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._")
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot:
        stem, suffix = cleaned, ""
    suffix = suffix[:10].lower()
    stem = stem[:80 - len(suffix) - 1].strip("._") or "upload"
    return f"{stem}.{suffix}" if suffix else stem
