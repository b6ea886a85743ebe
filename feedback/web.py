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
import io
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

import matplotlib

matplotlib.use("Agg")  # headless: pictures are drawn into PNG bytes, never a window
import matplotlib.pyplot as plt
import numpy as np
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
    PREFERENCES,
    Query,
    load_answers,
    load_queries,
    pending_queries,
    progress,
    query_files,
    rater_id,
    record_answer,
)
from upbringing.feedback.data import Segment, read_jsonl

_MAX_BODY = 4096  # an answer is a few dozen bytes; anything larger is refused unread
_FAMILIES = ("physics", "social", "moral")


# ------------------------------------------------------------------------------------------------- what is shown
def family(segment: Segment) -> str:
    """The env family (``physics``, ``social``, ``moral``) from the env id's prefix; empty when unknown."""
    prefix = segment.env.split("/", 1)[0]
    return prefix if prefix in _FAMILIES else ""


def segment_view(segment: Segment) -> dict[str, Any]:
    """A segment as the page shows it: per step the situation, the action taken, its reward and events.

    After the first step, lines the previous situation already said are left out (``repeated`` counts them): the
    social worlds restate the rules every round and the stories their title, which would bury what changed.
    """
    steps = []
    before: set[str] = set()
    for t in range(len(segment)):
        text = segment.texts[t] if t < len(segment.texts) else ""
        situation, sep, action = text.rpartition("\n-> ")
        if not sep:
            situation, action = text, ""
        if not text.strip():  # numeric envs: the observation stands in for the text
            obs = segment.obs[t] if t < len(segment.obs) else []
            situation = "observation [" + ", ".join(f"{x:.3g}" for x in obs) + "]"
            action = f"action {segment.actions[t]}"
        events = segment.events[t] if t < len(segment.events) else {}
        lines = situation.strip().splitlines()
        kept = [line for line in lines if line.strip() not in before]
        before = {line.strip() for line in lines if line.strip()}
        steps.append(
            {
                "situation": "\n".join(kept).strip(),
                "repeated": sum(1 for line in lines if line.strip()) - sum(1 for line in kept if line.strip()),
                "action": action.strip(),
                "reward": round(float(segment.rewards[t]), 4) if t < len(segment.rewards) else 0.0,
                "events": {k: round(float(v), 4) for k, v in events.items() if v},
            }
        )
    return {
        "stage": segment.stage,
        "env": segment.env,
        "family": family(segment),
        "level": segment.level,
        "steps": steps,
        "total_reward": round(float(sum(segment.rewards)), 4),
        "picture": family(segment) == "physics" and bool(segment.scenes or segment.obs),
    }


def state_picture(segment: Segment, title: str) -> bytes:
    """A PNG of a physics segment: the scene before each step and after the last (the env's bodies as recorded in
    ``segment.scenes``), events in red; for segments recorded without scenes, each step's numeric state as a row."""
    if segment.scenes:
        return _scene_strip(segment, title)
    obs = np.asarray(segment.obs, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(4.2, 0.35 * len(obs) + 1.1), dpi=100)
    ax.imshow(obs, cmap="coolwarm", vmin=-1.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(obs)), [str(t + 1) for t in range(len(obs))], fontsize=7)
    ax.set_xlabel("state feature", fontsize=8)
    ax.set_ylabel("step", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=9)
    for t, events in enumerate(segment.events[: len(obs)]):
        names = ", ".join(k for k, v in events.items() if v)
        if names:
            ax.annotate(names, (1.01, t), xycoords=("axes fraction", "data"), fontsize=7, color="crimson", va="center")
    return _png(fig)


def _png(fig: Any) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _scene_strip(segment: Segment, title: str) -> bytes:
    scenes = segment.scenes
    # Frame what matters: every body and post, not the floor lines that run far beyond the table.
    pts = np.array(
        [p for scene in scenes for sh in scene if sh["kind"] != "segment" or not sh["static"] for p in sh["points"]]
        or [[0.0, 0.0], [1.0, 1.0]]
    )
    pad = 0.25 + max((sh["radius"] for scene in scenes for sh in scene), default=0.0)
    x0, x1 = pts[:, 0].min() - pad, pts[:, 0].max() + pad
    y0, y1 = min(pts[:, 1].min(), 0.0) - 0.05, pts[:, 1].max() + pad
    n = len(scenes)
    cols = min(n, 3)
    rows = -(-n // cols)
    aspect = (y1 - y0) / max(x1 - x0, 1e-6)
    fig, axes = plt.subplots(
        rows, cols, figsize=(6.0, rows * (6.0 / cols) * min(max(aspect, 0.35), 1.2) + 0.5), dpi=100
    )
    axes = np.atleast_1d(axes).ravel()
    for t, ax in enumerate(axes):
        ax.set_axis_off()
        if t >= n:
            continue
        for sh in scenes[t]:
            colour = "#8c8c8c" if sh["static"] else ("#bfe8f0" if sh["glass"] else "#4a78b5")
            edge = "crimson" if sh["broken"] else "#333333"
            xy = np.asarray(sh["points"], dtype=np.float64)
            if sh["kind"] == "poly":
                ax.add_patch(plt.Polygon(xy, closed=True, facecolor=colour, edgecolor=edge, linewidth=0.6))
            elif sh["kind"] == "circle":
                ax.add_patch(plt.Circle(xy[0], sh["radius"], facecolor=colour, edgecolor=edge, linewidth=0.6))
            else:
                ax.plot(xy[:, 0], xy[:, 1], color="#555555", linewidth=1.5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        label = f"before step {t + 1}" if t < len(segment) else "at the end"
        ax.set_title(label, fontsize=8)
        events = segment.events[t - 1] if 0 < t <= len(segment.events) else {}
        names = ", ".join(k for k, v in events.items() if v)
        if names:  # what the step before this picture set off
            ax.text(0.5, -0.02, names, transform=ax.transAxes, ha="center", va="top", fontsize=7, color="crimson")
    fig.suptitle(title, fontsize=9)
    return _png(fig)


def query_view(query: Query) -> dict[str, Any]:
    """What the page needs to show one query."""
    return {"id": query.query_id, "a": segment_view(query.pref.a), "b": segment_view(query.pref.b)}


# ----------------------------------------------------------------------------------------------------- agreement
@dataclass(frozen=True)
class PairAgreement:
    """How often two label sources agree on the queries both answered with a label.

    Attributes:
        first: A human rater (``human:<name>``).
        second: Another human, a simulated rater or ``reward model``.
        n: Queries both labelled (for the reward model: the human's strict preferences where it had a prediction).
        agree: Share of them with the same label (reward model: the side it gave more than 0.5).
    """

    first: str
    second: str
    n: int
    agree: float


def agreement(run_dir: str | Path) -> tuple[dict[str, int], list[PairAgreement]]:
    """Answers per human rater, and agreement of each human with every other label source of the run."""
    labels: dict[str, dict[str, float]] = {}
    model: dict[str, float] = {}
    counts: dict[str, int] = {}
    for path in query_files(run_dir):
        rows = load_answers(path.parent)
        if (path.parent / PREFERENCES).exists():
            rows += list(read_jsonl(path.parent / PREFERENCES))
        for row in rows:
            if row.rater.startswith("human:"):
                counts[row.rater] = counts.get(row.rater, 0) + 1
            if row.label is not None:
                labels.setdefault(row.rater, {})[row.query_id] = float(row.label)
        for q in read_jsonl(path):
            p = q.meta.get("rm_p_a")
            if isinstance(p, int | float):
                model[q.query_id] = float(p)
    out: list[PairAgreement] = []
    humans = sorted(r for r in counts)
    others = sorted(r for r in labels if not r.startswith("human:"))
    for h in humans:
        mine = labels.get(h, {})
        for o in [*humans, *others]:
            if o == h:
                continue
            common = [q for q in mine if q in labels[o]] if o in labels else []
            same = sum(mine[q] == labels[o][q] for q in common)
            out.append(PairAgreement(h, o, len(common), same / len(common) if common else float("nan")))
        strict = [q for q, lab in mine.items() if lab != 0.5 and q in model]
        same = sum((model[q] > 0.5) == (mine[q] == 1.0) for q in strict)
        out.append(PairAgreement(h, "reward model", len(strict), same / len(strict) if strict else float("nan")))
    return counts, out


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
        body = _PAGE.replace("{{csrf}}", security.csrf(session)).replace("{{name}}", html.escape(default_name))
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
            _AGREEMENT.replace("{{raters}}", raters or "<li>no answers yet</li>").replace("{{rows}}", rows)
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


# --------------------------------------------------------------------------------------------------------- pages
_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
header{display:flex;gap:1.2em;align-items:center;padding:.6em 1em;background:#2d3a4a;color:#fff;flex-wrap:wrap}
header a{color:#cde}
main{padding:1em}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.side{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.6em 1em}
.side h2{margin:.2em 0}
.meta{color:#555;font-size:.9em}
ol{padding-left:1.6em}
li.step{margin:.35em 0;padding:.25em .4em;border-radius:4px;cursor:pointer}
li.step:hover{background:#eef3f8}
li.step.decisive{background:#ffe9a8;outline:2px solid #d9a400}
.situation{white-space:pre-wrap}
.action{font-weight:600}
.ev{display:inline-block;background:#fbe0e0;color:#900;border-radius:3px;padding:0 .3em;margin-right:.3em;
  font-size:.85em}
.answers{display:flex;gap:.6em;margin:1em 0;flex-wrap:wrap}
.answers button{font-size:1.05em;padding:.5em 1em}
kbd{background:#eee;border:1px solid #aaa;border-radius:3px;padding:0 .3em;font-size:.85em}
#status{min-height:1.4em;color:#064}
#status.err{color:#a00}
progress{width:12em}
img{max-width:100%}
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .7em}
"""

_PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Upbringing feedback</title>
<meta name="csrf" content="{{csrf}}"><style>"""
    + _STYLE
    + """</style></head><body>
<header><strong>Upbringing: which episode is better?</strong>
<label>Your name <input id="name" value="{{name}}" size="14" autocomplete="off"></label>
<span><progress id="bar" value="0" max="1"></progress> <span id="progress"></span></span>
<a href="/agreement" target="_blank">agreement</a></header>
<main>
<div id="status" role="status"></div>
<div id="query"></div>
<div class="answers" id="buttons" hidden>
<button id="ans-a" data-answer="a">A is better <kbd>1</kbd>/<kbd>a</kbd></button>
<button id="ans-b" data-answer="b">B is better <kbd>2</kbd>/<kbd>b</kbd></button>
<button id="ans-equal" data-answer="equal">Equally good <kbd>=</kbd>/<kbd>e</kbd></button>
<button id="ans-skip" data-answer="skip">Can't tell (skip) <kbd>s</kbd></button>
</div>
<p class="meta">Optional: click the step that decided it (click again to clear). Answers are saved at once and the
training run reads them at its next chunk boundary.</p>
</main>
<script>
"use strict";
const csrf = document.querySelector('meta[name=csrf]').content;
const nameBox = document.getElementById('name');
nameBox.value = localStorage.getItem('upbringing-rater') || nameBox.value;
let current = null, decisive = null, busy = false;
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function status(msg, err) {
  const s = document.getElementById('status');
  s.textContent = msg; s.className = err ? 'err' : '';
}
function showProgress(p) {
  const budget = p.budget ? `, budget ${p.budget}` : '';
  document.getElementById('progress').textContent = `${p.answered} of ${p.asked} answered${budget}`;
  const bar = document.getElementById('bar');
  bar.max = Math.max(p.asked, 1); bar.value = p.answered;
}
function side(label, key, s) {
  const box = el('section', 'side'); box.id = 'side-' + key;
  box.appendChild(el('h2', null, label));
  const level = s.level === null ? '' : `, level ${s.level}`;
  box.appendChild(el('div', 'meta', `stage ${s.stage}${s.env ? ' (' + s.env + ')' : ''}${level}; ` +
    `${s.steps.length} steps, task reward ${s.total_reward}`));
  if (s.picture) {
    const img = el('img'); img.alt = 'state of ' + label + ' step by step';
    img.src = `/picture/${encodeURIComponent(current.id)}/${key}.png`; box.appendChild(img);
  }
  const ol = el('ol');
  s.steps.forEach((st, i) => {
    const li = el('li', 'step'); li.dataset.side = key; li.dataset.step = i;
    if (st.repeated) li.appendChild(el('div', 'meta', `(${st.repeated} line(s) as in the step before)`));
    li.appendChild(el('div', 'situation', st.situation));
    if (st.action) li.appendChild(el('div', 'action', '\\u2192 ' + st.action));
    const line = el('div', 'meta', `reward ${st.reward} `);
    for (const [k, v] of Object.entries(st.events)) line.appendChild(el('span', 'ev', `${k} ${v}`));
    li.appendChild(line);
    li.addEventListener('click', () => {
      const same = decisive && decisive.side === key && decisive.step === i;
      document.querySelectorAll('li.decisive').forEach(x => x.classList.remove('decisive'));
      decisive = same ? null : {side: key, step: i};
      if (!same) li.classList.add('decisive');
    });
    ol.appendChild(li);
  });
  box.appendChild(ol);
  return box;
}
async function load() {
  const r = await fetch('/api/next?rater=' + encodeURIComponent(nameBox.value));
  const data = await r.json();
  if (!r.ok) { status(data.error, true); return; }
  showProgress(data.progress);
  current = data.query; decisive = null;
  const q = document.getElementById('query'); q.replaceChildren();
  document.getElementById('buttons').hidden = !current;
  if (!current) { q.appendChild(el('p', null, 'No pending queries for you. Thank you!')); return; }
  q.appendChild(el('div', 'meta', 'query ' + current.id));
  const pair = el('div', 'pair');
  pair.appendChild(side('A', 'a', current.a)); pair.appendChild(side('B', 'b', current.b));
  q.appendChild(pair);
}
async function answer(choice) {
  if (!current || busy) return;
  busy = true;
  try {
    const r = await fetch('/api/answer', {method: 'POST',
      headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
      body: JSON.stringify({query_id: current.id, rater: nameBox.value, answer: choice, decisive: decisive})});
    const data = await r.json();
    if (!r.ok) { status(data.error, true); return; }
    status(`${current.id}: ${data.message}`);
    await load();
  } catch (e) { status('not saved: ' + e, true); } finally { busy = false; }
}
document.querySelectorAll('#buttons button').forEach(b => b.addEventListener('click', () => answer(b.dataset.answer)));
const KEYS = {'1': 'a', 'a': 'a', '2': 'b', 'b': 'b', '=': 'equal', 'e': 'equal', 's': 'skip'};
document.addEventListener('keydown', e => {
  if (e.target === nameBox || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = KEYS[e.key];
  if (k) { e.preventDefault(); answer(k); }
});
nameBox.addEventListener('keydown', e => { if (e.key === 'Enter') nameBox.blur(); });  // back to the shortcuts
nameBox.addEventListener('change', () => {
  localStorage.setItem('upbringing-rater', nameBox.value); status(''); load();
});
load();
</script></body></html>"""
)

_AGREEMENT = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Upbringing feedback: agreement</title><style>"""
    + _STYLE
    + """</style></head><body><header><strong>Agreement between raters</strong><a href="/">back to the queries</a>
</header><main><ul>{{raters}}</ul>
<p class="meta">Each person against every other source, on the queries both labelled (skips left out). The reward
model is its prediction when the query was asked (before training on that chunk), counted on strict preferences.</p>
<table><thead><tr><th>rater</th><th>compared with</th><th>queries</th><th>agree</th></tr></thead>
<tbody>{{rows}}</tbody></table></main></body></html>"""
)
