"""Answer a run's feedback queries in the browser (``upbringing feedback RUN_DIR --web``).

A small Starlette app served by uvicorn (the optional extra ``web``). The page shows the two episode excerpts of a
pending query side by side (each step's situation, the action taken, its task reward and events, the stage, env and
level; for physics stages a picture of the numeric state step by step), takes the answer A, B, equal or can't tell
(keys 1/a, 2/b, =/e, s), optionally the step that decided it (click a step), and saves it at once through
:mod:`feedback.answers`, the module the terminal command uses: the same ``human:<name>`` rows in the same
``human.jsonl`` files, which a training run reads at its next chunk boundary. ``/agreement`` compares raters with
each other, with the simulated raters and with the reward model's prediction when the query was asked.

Security follows a local notebook server:

- it listens on loopback unless ``allow_remote`` is given (and then warns);
- a random token is printed at start; every request needs it, as ``?token=`` once (answered with a cookie and a
  redirect that drops it from the address bar) or as that cookie (``HttpOnly``, ``SameSite=Strict``, named after the
  port, since cookies ignore ports);
- the only state-changing request, ``POST /api/answer``, needs a JSON body, the per-session CSRF token the page
  carries (an HMAC of the session cookie) in ``X-CSRF-Token``, and an ``Origin``, when sent, equal to the server's;
- the ``Host`` header must name the loopback address (DNS-rebinding protection) when bound to loopback;
- a request names a query only by its id, looked up among the queries the run wrote; nothing from a request becomes
  a path or code. An unknown id or a malformed answer gets a 4xx with a message and writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import json
import secrets
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from upbringing.feedback.answers import (
    HUMAN,
    LABELS,
    Query,
    load_queries,
    pending_queries,
    progress,
    rater_id,
    record_answer,
)
from upbringing.feedback.page import AGREEMENT, PAGE
from upbringing.feedback.views import agreement, family, query_view, state_picture

_MAX_BODY = 4096  # an answer is a few dozen bytes; anything larger is refused unread


# ------------------------------------------------------------------------------------------------------ the app
@dataclass(frozen=True)
class Security:
    """The secrets of one server run.

    Attributes:
        token: The access token printed at start.
        secret: Key of the CSRF tokens (never leaves the server).
        port: The port served (names the cookies: browsers share cookies across ports of one host).
        hosts: Host names the ``Host`` header may carry (empty: any, when bound to all interfaces).
    """

    token: str
    secret: bytes
    port: int
    hosts: tuple[str, ...]

    @property
    def auth_cookie(self) -> str:
        return f"upbringing-token-{self.port}"

    @property
    def session_cookie(self) -> str:
        return f"upbringing-session-{self.port}"

    def csrf(self, session: str) -> str:
        """The CSRF token of a browser session: an HMAC of its session cookie."""
        return hmac.new(self.secret, session.encode(), hashlib.sha256).hexdigest()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Guard(BaseHTTPMiddleware):
    """Token, host, origin and CSRF checks in front of every route."""

    def __init__(self, app: Any, security: Security):
        super().__init__(app)
        self.sec = security

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        sec = self.sec
        host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]")
        if sec.hosts and host not in sec.hosts:
            return PlainTextResponse(f"refused: unexpected Host header {host!r}", status_code=400)
        given = request.query_params.get("token")
        if given is not None:
            if not hmac.compare_digest(given.encode(), sec.token.encode()):
                return PlainTextResponse("refused: wrong token (use the URL printed at start)", status_code=403)
            if request.method == "GET":  # swap the token for a cookie and drop it from the address bar
                query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                response: Response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
                self._set_cookies(request, response)
                return response
        else:
            cookie = request.cookies.get(sec.auth_cookie, "")
            if not hmac.compare_digest(cookie.encode(), sec.token.encode()):
                return PlainTextResponse(
                    "refused: no token (open the URL with ?token= printed when the server started)", status_code=403
                )
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
                return _error(403, f"refused: cross-origin request from {origin}")
            session = request.cookies.get(sec.session_cookie, "")
            csrf = request.headers.get("x-csrf-token", "")
            if not session or not hmac.compare_digest(csrf.encode(), sec.csrf(session).encode()):
                return _error(403, "refused: missing or wrong CSRF token (reload the page)")
        response = await call_next(request)
        if sec.session_cookie not in request.cookies:
            self._set_cookies(request, response)
        response.headers["X-Frame-Options"] = "DENY"  # no framing: clickjacking cannot press the answer buttons
        response.headers["Cache-Control"] = "no-store"
        return response

    def _set_cookies(self, request: Request, response: Response) -> None:
        common: dict[str, Any] = {"httponly": True, "samesite": "strict", "path": "/"}
        response.set_cookie(self.sec.auth_cookie, self.sec.token, **common)
        if self.sec.session_cookie not in request.cookies:
            response.set_cookie(self.sec.session_cookie, secrets.token_urlsafe(24), **common)


def create_app(run_dir: str | Path, security: Security, default_name: str = "") -> Starlette:
    """The web app answering ``run_dir``'s queries behind ``security``'s checks.

    Args:
        run_dir: The run folder (its ``feedback/`` holds the queries).
        security: Token, CSRF key, port and allowed hosts.
        default_name: Rater name the page starts with (each browser remembers its own).
    """
    run_dir = Path(run_dir)
    pictures: dict[tuple[str, str], bytes] = {}
    pictures_lock = threading.Lock()

    def find(query_id: str) -> Query | None:
        # Looked up afresh each time: a training run may have asked new queries since the page loaded.
        return next((q for q in load_queries(run_dir) if q.query_id == query_id), None)

    def name_from(value: Any) -> str:
        return rater_id(value)  # ValueError names what a valid name is

    async def page(request: Request) -> Response:
        session = request.cookies.get(security.session_cookie)
        if session is None:  # first visit without a session: the guard sets one on this response; reload to use it
            return RedirectResponse("/", 303)
        body = PAGE.replace("{{csrf}}", security.csrf(session)).replace("{{name}}", html.escape(default_name))
        return HTMLResponse(body)

    async def next_query(request: Request) -> Response:
        try:
            rater = name_from(request.query_params.get("rater", ""))
        except ValueError as e:
            return _error(400, str(e))
        pending = pending_queries(run_dir, rater)
        prog = progress(run_dir, rater)
        return JSONResponse(
            {
                "query": query_view(pending[0]) if pending else None,
                "progress": {"answered": prog.answered, "asked": prog.asked, "budget": prog.budget},
            }
        )

    async def answer(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "send the answer as JSON (Content-Type: application/json)")
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _error(413, f"answer too large ({len(body)} bytes; at most {_MAX_BODY})")
        try:
            data = json.loads(body)
        except ValueError:
            return _error(400, "the answer is not valid JSON")
        if not isinstance(data, dict):
            return _error(400, "the answer must be a JSON object {query_id, rater, answer, decisive}")
        unknown = set(data) - {"query_id", "rater", "answer", "decisive"}
        if unknown:
            return _error(400, f"unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        try:
            rater = name_from(data.get("rater"))
        except ValueError as e:
            return _error(400, str(e))
        choice = data.get("answer")
        if choice not in LABELS:
            return _error(400, f"answer must be one of {', '.join(LABELS)}, got {choice!r}")
        query_id = data.get("query_id")
        query = find(query_id) if isinstance(query_id, str) else None
        if query is None:
            return _error(404, f"no query {query_id!r} in this run")
        extra: dict[str, Any] = {}
        decisive = data.get("decisive")
        if decisive is not None:
            side = decisive.get("side") if isinstance(decisive, dict) else None
            seg = {"a": query.pref.a, "b": query.pref.b}.get(side) if isinstance(side, str) else None
            step = decisive.get("step") if isinstance(decisive, dict) else None
            if seg is None or isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(seg):
                return _error(400, "decisive must be null or {side: 'a' or 'b', step: a step index of that excerpt}")
            extra["decisive"] = {"side": decisive["side"], "step": step}
        recorded = record_answer(query, rater, choice, answered_in="web", extra=extra)
        prog = progress(run_dir, rater)
        return JSONResponse(
            {
                "saved": recorded.new,
                "label": recorded.row.label,
                "message": "saved" if recorded.new else "already answered (your first answer is kept)",
                "progress": {"answered": prog.answered, "asked": prog.asked, "budget": prog.budget},
            }
        )

    async def picture(request: Request) -> Response:
        query = find(request.path_params["query_id"])
        side = request.path_params["side"]
        if query is None or side not in ("a", "b"):
            return _error(404, "no such query or side")
        seg = query.pref.a if side == "a" else query.pref.b
        if family(seg) != "physics" or not seg.obs:
            return _error(404, "pictures are drawn for physics stages only")
        key = (query.query_id, side)
        with pictures_lock:
            if key not in pictures:
                pictures[key] = state_picture(seg, f"{side.upper()}: {seg.env}")
            png = pictures[key]
        return Response(png, media_type="image/png")

    async def agreement_page(request: Request) -> Response:
        counts, pairs = agreement(run_dir)
        rows = "".join(
            f"<tr><td>{html.escape(p.first)}</td><td>{html.escape(p.second)}</td><td>{p.n}</td>"
            f"<td>{'' if p.n == 0 else f'{100 * p.agree:.0f}%'}</td></tr>"
            for p in pairs
        )
        raters = "".join(f"<li>{html.escape(r)}: {n} answer(s)</li>" for r, n in sorted(counts.items()))
        return HTMLResponse(
            AGREEMENT.replace("{{raters}}", raters or "<li>no answers yet</li>").replace("{{rows}}", rows)
        )

    routes = [
        Route("/", page),
        Route("/api/next", next_query),
        Route("/api/answer", answer, methods=["POST"]),
        Route("/picture/{query_id:path}/{side}.png", picture),
        Route("/agreement", agreement_page),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, security=security)])


# ------------------------------------------------------------------------------------------------------ serving
def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    """The feedback page served on ``host:port`` (port 0: a free one), started with :meth:`start` or :meth:`run`.

    Args:
        run_dir: The run folder.
        host: Address to listen on (default loopback).
        port: Port (0: any free port).
        name: Rater name the page starts with.
        allow_remote: Required to listen on a non-loopback address.
        token: Access token (default: a fresh random one).

    Raises:
        ValueError: A non-loopback host without ``allow_remote``.
        OSError: The address cannot be bound (port in use, unknown host).
    """

    def __init__(
        self,
        run_dir: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str = "",
        allow_remote: bool = False,
        token: str | None = None,
    ):
        if not is_loopback(host) and not allow_remote:
            raise ValueError(f"--host {host} is not a loopback address; add --allow-remote to listen on it")
        self.host = host
        family_ = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family_, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)  # connections wait in the backlog from the moment the URL is printed
        self.port = int(self.sock.getsockname()[1])
        any_host = host in ("0.0.0.0", "::")
        hosts = () if any_host else (("127.0.0.1", "localhost", "::1") if is_loopback(host) else (host,))
        self.security = Security(token or secrets.token_urlsafe(32), secrets.token_bytes(32), self.port, hosts)
        self.app = create_app(run_dir, self.security, name)
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address with the token (what a person opens)."""
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/?token={self.security.token}"

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        self.server.run(sockets=[self.sock])

    def start(self) -> str:
        """Serve in a background thread; return the URL once it accepts connections."""
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the feedback web server stopped while starting")
            threading.Event().wait(0.02)
        return self.url

    def stop(self) -> None:
        """Stop a server started with :meth:`start`."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sock.close()


def serve(
    run_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    name: str = "",
    allow_remote: bool = False,
    out: TextIO = sys.stdout,
) -> None:
    """Serve the feedback page until Ctrl-C, printing its URL (with the token) and, off loopback, a warning."""
    server = WebServer(run_dir, host, port, name=name, allow_remote=allow_remote)
    if not is_loopback(host):
        print(
            f"WARNING: listening on {host}, reachable from other machines. Anyone with the token can answer "
            "queries; the connection is plain HTTP (not encrypted).",
            file=out,
        )
    n = len(load_queries(run_dir))
    print(f"Feedback page for {run_dir} ({n} queries asked; answers go to feedback/<stage>/{HUMAN}).", file=out)
    print(f"Open {server.url}", file=out, flush=True)
    server.run()
