"""The feedback page: what it shows per env family, its security checks, and a person answering in real Chromium."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv
from upbringing import envs
from upbringing.feedback.answers import load_answers
from upbringing.feedback.config import FeedbackConfig, RewardModelConfig
from upbringing.feedback.features import StepFeaturizer
from upbringing.feedback.loop import FeedbackLoop, stage_dir
from upbringing.feedback.raters import RaterConfig
from upbringing.feedback.views import segment_view, state_picture
from upbringing.feedback.web import WebServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# ------------------------------------------------------------------------------------------------ a tiny run
def tiny_run(line_walk, run_dir: Path) -> tuple[FeedbackLoop, object]:
    """A stage whose feedback loop has asked 8 queries over two chunks (the second with a reward model's view)."""
    cfg = FeedbackConfig(
        mode="learned",
        budget=8,
        per_chunk=0.5,
        segment_length=4,
        raters=[RaterConfig(name="r1")],
        reward_model=RewardModelConfig(ensemble_size=2, hidden=(16,), epochs=5, min_steps=10),
    )
    loop = FeedbackLoop(cfg, StepFeaturizer(obs_dim=2, n_actions=3), stage="walk", run_dir=run_dir, seed=3)
    loop.level = 0
    venv = loop.recorder(DummyVecEnv([lambda: loop.wrap(line_walk(horizon=8)) for _ in range(2)]))
    for chunk in range(2):
        play_chunk(venv, chunk)
        loop.end_chunk()
    return loop, venv


def play_chunk(venv, chunk: int, steps: int = 16) -> None:
    venv.seed(100 + chunk)
    venv.reset()
    rng = np.random.default_rng(chunk)
    for _ in range(steps):
        venv.step(rng.integers(0, 3, venv.num_envs))


def rows(run_dir: Path) -> list[tuple[str, str, float | None, dict | None]]:
    return [(r.query_id, r.rater, r.label, r.meta.get("decisive")) for r in load_answers(stage_dir(run_dir, "walk"))]


# ------------------------------------------------------------------------------------------- what the page shows
def played_segment(env_id: str, steps: int = 4, **kwargs):
    """A segment recorded by a feedback loop from a real env, taking the first valid action each step."""
    env = envs.make(env_id, **kwargs)
    loop = FeedbackLoop(
        FeedbackConfig(budget=2, segment_length=steps, raters=[RaterConfig(name="r")]),
        StepFeaturizer(obs_dim=int(np.prod(env.observation_space.shape)), n_actions=int(env.action_space.n)),
        stage=env_id.split("/")[0],
        env=env_id,
    )
    loop.level = 1
    assert "scene" not in env.reset(seed=0)[1]  # off by default: it costs a few percent of a physics step
    env = loop.wrap(env)  # the feedback wrapper, as in a feedback stage's envs: physics ones then draw their scenes
    obs, info = env.reset(seed=0)
    for _ in range(steps):
        action = int(np.flatnonzero(info["action_mask"])[0])
        next_obs, reward, term, trunc, next_info = env.step(action)
        loop.add_transition(0, obs, action, next_info, term or trunc, obs_info=info, reward=float(reward))
        obs, info = next_obs, next_info
        if term or trunc:
            break
    loop.end_chunk()  # closes the open segment
    return loop.segments[-1]


@pytest.mark.parametrize(
    ("env_id", "kwargs", "family"),
    [
        ("physics/Support-v0", {}, "physics"),
        ("social/IteratedPDSolo-v0", {"opponents": ["tit_for_tat"]}, "social"),
        ("moral/Stories-v0", {}, "moral"),
    ],
)
def test_page_shows_situations_actions_events_and_physics_pictures(env_id, kwargs, family):
    seg = played_segment(env_id, **kwargs)
    view = segment_view(seg)
    assert view["family"] == family and view["env"] == env_id and view["level"] == 1
    assert view["steps"] and view["steps"][0]["situation"] and all(s["action"] for s in view["steps"])
    # What changed stays; what the step before already said is counted, not repeated.
    for t in range(1, len(seg)):
        said = {line.strip() for line in seg.texts[t - 1].rpartition("\n-> ")[0].splitlines()}
        now = [line for line in view["steps"][t]["situation"].splitlines() if line.strip()]
        full = [line for line in seg.texts[t].rpartition("\n-> ")[0].splitlines() if line.strip()]
        assert not said & set(now) and len(now) + view["steps"][t]["repeated"] == len(full)
    if family == "social":
        assert view["steps"][1]["repeated"] > 0  # the rules of the game are said once
    assert view["picture"] == (family == "physics")
    # Physics segments carry the scene before each step and after the last: the picture draws the bodies.
    assert len(seg.scenes) == (len(seg) + 1 if family == "physics" else 0)
    if family == "physics":
        assert all(any(not sh["static"] for sh in scene) for scene in seg.scenes)  # the plank is in every scene
        png = state_picture(seg, "A")
        assert png.startswith(b"\x89PNG") and len(png) > 2000


# ------------------------------------------------------------------------------------------------------ security
def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def status_of(open_, request) -> tuple[int, str]:
    try:
        with open_(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def post(base: str, body: bytes, headers: dict[str, str]) -> urllib.request.Request:
    return urllib.request.Request(base + "/api/answer", data=body, headers=headers, method="POST")


def test_token_csrf_origin_host_and_forged_queries_are_refused_and_write_nothing(line_walk, tmp_path):
    tiny_run(line_walk, tmp_path)
    with pytest.raises(ValueError, match="allow-remote"):
        WebServer(tmp_path, host="0.0.0.0")
    server = WebServer(tmp_path, name="ann")
    url = server.start()
    base = url.split("/?")[0]
    human = stage_dir(tmp_path, "walk") / "human.jsonl"
    try:
        plain = urllib.request.urlopen
        for path in ("/", "/api/next?rater=ann", "/agreement", "/?token=wrong"):
            code, text = status_of(plain, base + path)
            assert code == 403 and "token" in text, path
        good = json.dumps({"query_id": "walk/c0/q0", "rater": "ann", "answer": "a", "decisive": None}).encode()
        code, _ = status_of(plain, post(base, good, {"Content-Type": "application/json"}))
        assert code == 403
        # DNS rebinding: the token alone does not help a page served under another name.
        code, text = status_of(plain, urllib.request.Request(url, headers={"Host": f"evil.example:{server.port}"}))
        assert code == 400 and "Host" in text

        browser = opener()
        code, page = status_of(browser.open, url)  # the token is swapped for cookies
        assert code == 200 and 'name="csrf"' in page
        csrf = page.split('name="csrf" content="')[1].split('"')[0]
        json_headers = {"Content-Type": "application/json"}
        # A POST with the cookies but without the CSRF token, or with a forged one, or from another origin.
        for headers in (
            json_headers,
            {**json_headers, "X-CSRF-Token": "0" * 64},
            {**json_headers, "X-CSRF-Token": csrf, "Origin": "http://evil.example"},
        ):
            code, text = status_of(browser.open, post(base, good, headers))
            assert code == 403 and "refused" in text
        ok = {**json_headers, "X-CSRF-Token": csrf}
        cases = {
            json.dumps({"query_id": "walk/c9/q9", "rater": "ann", "answer": "a"}): (404, "no query"),
            json.dumps({"query_id": "../../etc/passwd", "rater": "ann", "answer": "a"}): (404, "no query"),
            json.dumps({"query_id": "walk/c0/q0", "rater": "ann", "answer": "maybe"}): (400, "answer must be"),
            json.dumps({"query_id": "walk/c0/q0", "rater": "a b/../c", "answer": "a"}): (400, "rater name"),
            json.dumps({"query_id": "walk/c0/q0", "rater": "ann", "answer": "a", "path": "/tmp/x"}): (400, "unknown"),
            json.dumps(
                {"query_id": "walk/c0/q0", "rater": "ann", "answer": "a", "decisive": {"side": "a", "step": 99}}
            ): (400, "decisive"),
            json.dumps(["walk/c0/q0", "a"]): (400, "JSON object"),
            "{not json": (400, "not valid JSON"),
        }
        for body, (want, message) in cases.items():
            code, text = status_of(browser.open, post(base, body.encode(), ok))
            assert code == want and message in json.loads(text)["error"], body
        code, text = status_of(browser.open, post(base, good, {**ok, "Content-Type": "text/plain"}))
        assert code == 415
        assert not human.exists()  # nothing above wrote anything

        code, text = status_of(browser.open, post(base, good, ok))
        assert code == 200 and json.loads(text)["saved"] is True
        code, text = status_of(browser.open, post(base, good.replace(b'"a",', b'"b",'), ok))  # a retry, changed
        assert code == 200 and json.loads(text)["saved"] is False
        assert rows(tmp_path) == [("walk/c0/q0", "human:ann", 1.0, None)]
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------- in a real browser
@pytest.mark.slow
@pytest.mark.browser
def test_person_answers_in_chromium_and_the_reward_model_trains_on_it(line_walk, tmp_path):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make install` installs it (apt-get install chromium)"
    from playwright.sync_api import expect, sync_playwright

    started = time.perf_counter()
    loop, venv = tiny_run(line_walk, tmp_path)
    asked = [q.query_id for q in loop.queries]
    assert len(asked) == 8 and "rm_p_a" in loop.queries[-1].meta  # the second chunk's queries carry the model's view
    server = WebServer(tmp_path, name="ann")
    url = server.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            assert "token=" not in page.url  # swapped for a cookie
            status = page.locator("#status")
            shown = page.locator("#query > .meta")

            def answered(i: int) -> None:
                expect(status).to_contain_text(f"{asked[i]}: saved")
                expect(page.locator("#progress")).to_contain_text(f"{i + 1} of 8 answered, budget 8")

            expect(shown).to_have_text(f"query {asked[0]}")
            expect(page.locator("#side-a li.step")).not_to_have_count(0)
            expect(page.locator("#side-a")).to_contain_text("You stand on cell")
            expect(page.locator("#side-a")).to_contain_text("stage walk, level 0")
            page.screenshot(path=str(tmp_path / "feedback-page.png"), full_page=True)
            if os.environ.get("UPBRINGING_SCREENSHOT"):  # where a person wants to look at it
                shutil.copy(tmp_path / "feedback-page.png", os.environ["UPBRINGING_SCREENSHOT"])
            page.click("#ans-a")  # 1: a click
            answered(0)
            expect(shown).to_have_text(f"query {asked[1]}")
            page.keyboard.press("2")  # 2: a key
            answered(1)
            expect(shown).to_have_text(f"query {asked[2]}")
            page.locator("#side-b li.step").nth(1).click()  # the step that decided it, then "equal" by key
            page.keyboard.press("=")
            answered(2)

            page.reload()  # mid-way: nothing lost, the next pending query is shown
            expect(shown).to_have_text(f"query {asked[3]}")
            expect(page.locator("#progress")).to_contain_text("3 of 8 answered")
            second = browser.new_page()  # a second tab on the same query
            second.goto(url)
            expect(second.locator("#query > .meta")).to_have_text(f"query {asked[3]}")
            page.keyboard.press("s")  # 4: can't tell
            answered(3)
            second.click("#ans-b")  # the stale tab answers the same query again: kept once, first answer wins
            expect(second.locator("#status")).to_contain_text("already answered")
            page.click("#ans-b")  # 5
            answered(4)

            page.fill("#name", "bob")  # a second rater in the same browser starts from the first query
            page.locator("#name").press("Enter")
            expect(shown).to_have_text(f"query {asked[0]}")
            page.keyboard.press("b")
            expect(status).to_contain_text(f"{asked[0]}: saved")

            page.goto(url.split("/?")[0] + "/agreement")
            expect(page.locator("body")).to_contain_text("human:ann: 5 answer(s)")
            expect(page.locator("tbody")).to_contain_text("sim:r1")
            expect(page.locator("tbody")).to_contain_text("reward model")
            browser.close()
    finally:
        server.stop()

    assert rows(tmp_path) == [
        (asked[0], "human:ann", 1.0, None),
        (asked[1], "human:ann", 0.0, None),
        (asked[2], "human:ann", 0.5, {"side": "b", "step": 1}),
        (asked[3], "human:ann", None, None),
        (asked[4], "human:ann", 0.0, None),
        (asked[0], "human:bob", 0.0, None),
    ]
    assert {r.meta["answered_in"] for r in load_answers(stage_dir(tmp_path, "walk"))} == {"web"}
    # The next chunk boundary trains the reward model on every labelled answer (the skip carries no label).
    labels_before = len(loop._train)
    play_chunk(venv, 2)
    metrics = loop.end_chunk()
    assert metrics["feedback/human_answers"] == 5
    assert len(loop._train) == labels_before + 5
    assert {(p.query_id, p.rater) for p in loop._train[-5:]} == {
        (asked[0], "human:ann"),
        (asked[1], "human:ann"),
        (asked[2], "human:ann"),
        (asked[4], "human:ann"),
        (asked[0], "human:bob"),
    }
    print(f"browser test: {time.perf_counter() - started:.1f} s")


# ----------------------------------------------------------------------------------------------------- the CLI
EXE = shutil.which("upbringing") or str(Path(sys.executable).parent / "upbringing")


def start_cli(*args: str) -> tuple[subprocess.Popen, list[str]]:
    """Start ``upbringing feedback ... --web`` and read its output up to the URL line."""
    proc = subprocess.Popen(
        [EXE, "feedback", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ}
    )
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Open "):
        line = proc.stdout.readline()
        assert line, f"the server stopped: {proc.stderr.read() if proc.stderr else ''}"
        lines.append(line.strip())
    return proc, lines


@pytest.mark.slow
def test_cli_serves_the_page_on_loopback_and_needs_a_flag_for_other_addresses(line_walk, tmp_path):
    tiny_run(line_walk, tmp_path)
    proc, lines = start_cli(str(tmp_path), "--web", "--port", "0", "--name", "ann")
    try:
        url = lines[-1].removeprefix("Open ")
        assert url.startswith("http://127.0.0.1:") and "?token=" in url and "8 queries asked" in lines[0]
        code, page = status_of(opener().open, url)
        assert code == 200 and 'value="ann"' in page
        assert status_of(urllib.request.urlopen, url.split("?")[0])[0] == 403
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0

    out = subprocess.run(
        [EXE, "feedback", str(tmp_path), "--web", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "--allow-remote" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(
        [EXE, "feedback", str(tmp_path), "--web", "--name", "a b"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1 and "--name" in out.stderr and "Traceback" not in out.stderr
    proc, lines = start_cli(str(tmp_path), "--web", "--host", "0.0.0.0", "--port", "0", "--allow-remote")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert lines[0].startswith("WARNING: listening on 0.0.0.0")
