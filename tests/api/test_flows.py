"""Simulate, validate and graph over the API, and `openivr simulate` on the command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

from tests.conftest import Account, RunningServer


def _apps(server: RunningServer, acc: Account) -> dict[str, dict[str, Any]]:
    r = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
    return {a["name"]: a for a in r.json()["response"]}


def test_simulate_pressing_1_leaves_a_voicemail(server: RunningServer) -> None:
    acc = server.account()
    menu = _apps(server, acc)["Main menu"]
    url = f"/account/{acc.account_id}/voiceapp/{menu['app_id']}/simulate"
    body = {"caller": "+46701234567", "timeline": [{"key": "1", "during": "menu"}, {"record": 4}]}
    r = server.client.post(url, headers=acc.headers, json=body)
    assert r.status_code == 200, r.text
    t = r.json()["response"]
    assert t["outcome"]["kind"] == "voicemail" and 3.5 <= t["outcome"]["voicemail_seconds"] <= 4.5
    prompts = [e for e in t["entries"] if e["kind"] == "prompt"]
    assert prompts[0]["prompt_text"] == "Welcome, and thank you for calling."
    assert (
        prompts[1]["prompt_text"] == "For Voice Mail, press 1."
        and prompts[1]["interrupted"] is True
    )
    entered = [e["app_id"] for e in t["entries"] if e["kind"] == "app"]
    assert entered == [menu["app_id"], menu["menu"]["digit_1"]["id"]]
    wav = server.client.post(url + "?format=wav", headers=acc.headers, json=body)
    assert wav.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(wav.content)) as w:
        assert w.getframerate() == 8000
        assert abs(w.getnframes() / 8000 - t["total_seconds"]) < 0.1


def test_simulate_a_key_at_the_first_moment_of_the_call(server: RunningServer) -> None:
    acc = server.account()
    apps = _apps(server, acc)
    url = f"/account/{acc.account_id}/voiceapp/{apps['Main menu']['app_id']}/simulate"
    r = server.client.post(url, headers=acc.headers, json={"timeline": [{"key": "1", "at": 0}]})
    assert r.status_code == 200, r.text
    t = r.json()["response"]
    welcome = next(e for e in t["entries"] if e["kind"] == "prompt")
    assert (welcome["key"], welcome["interrupted"], welcome["duration"]) == ("welcome", True, 0)
    entered = [e["app_id"] for e in t["entries"] if e["kind"] == "app"]
    assert entered == [apps["Main menu"]["app_id"], apps["Voice Mail"]["app_id"]]
    bad = {"timeline": [{"key": "1", "at": 0, "after": 1}]}
    r = server.client.post(url, headers=acc.headers, json=bad)
    assert r.status_code == 400 and "timeline[0].at" in r.json()["response"]["detail"], r.text


def test_simulate_invalid_key_then_timeout(server: RunningServer) -> None:
    acc = server.account()
    menu = _apps(server, acc)["Main menu"]
    r = server.client.post(
        f"/account/{acc.account_id}/voiceapp/{menu['app_id']}/simulate",
        headers=acc.headers,
        json={"keys": "7"},
    )
    t = r.json()["response"]
    keys = [e for e in t["entries"] if e["kind"] == "key"]
    assert "invalid" in keys[0]["text"]
    assert any(
        e.get("prompt_text") == "Sorry, that is not a valid option. Please try again."
        for e in t["entries"]
    )
    assert t["outcome"]["kind"] == "hangup"


def test_simulate_bad_input(server: RunningServer) -> None:
    acc = server.account()
    apps = _apps(server, acc)
    base = f"/account/{acc.account_id}/voiceapp"
    r = server.client.post(
        f"{base}/{apps['Main menu']['app_id']}/simulate", headers=acc.headers, json={"keys": "1x"}
    )
    # The error names the field that was sent.
    assert r.status_code == 400 and r.json()["response"]["detail"].startswith("keys:")
    r = server.client.post(
        f"{base}/{apps['System Prompt']['app_id']}/simulate", headers=acc.headers, json={}
    )
    assert r.status_code == 400
    r = server.client.post(f"{base}/VAnothere/simulate", headers=acc.headers, json={})
    assert r.status_code == 404


def test_validate_finds_a_user_nobody_can_reach(server: RunningServer) -> None:
    acc = server.account()
    menu = _apps(server, acc)["Main menu"]
    base = f"/account/{acc.account_id}/voiceapp/{menu['app_id']}"
    ok = server.client.get(f"{base}/validate", headers=acc.headers).json()["response"]
    assert ok["ok"] is True
    server.client.put(
        base,
        headers=acc.headers,
        json={"menu": {"digit_2": {"action": "call", "to": "user", "id": acc.user_id}}},
    )
    found = server.client.get(f"{base}/validate", headers=acc.headers).json()["response"]
    assert any(p["field"] == "menu.digit_2" for p in found["problems"]), found


def test_validate_and_graph_a_draft_before_it_is_saved(server: RunningServer) -> None:
    acc = server.account()
    menu = _apps(server, acc)["Main menu"]
    base = f"/account/{acc.account_id}/voiceapp/{menu['app_id']}"
    before = server.client.get(base, headers=acc.headers)
    draft = {
        "play_welcome": "no",
        "menu": {
            "digit_1": None,
            "digit_2": {"action": "call", "to": "user", "id": acc.user_id},
        },
    }
    found = server.client.post(f"{base}/validate", headers=acc.headers, json=draft)
    assert found.status_code == 200, found.text
    assert any(p["field"] == "menu.digit_2" for p in found.json()["response"]["problems"])
    drawn = server.client.post(f"{base}/graph", headers=acc.headers, json=draft).json()["response"]
    assert {e["label"] for e in drawn["edges"]} == {"2"}
    assert not any(n["kind"] == "mailbox" for n in drawn["nodes"])
    mermaid = server.client.post(f"{base}/graph?format=mermaid", headers=acc.headers, json=draft)
    assert "-->" in mermaid.text
    # Nothing was saved: the app, its ETag and the saved flow are as before.
    after = server.client.get(base, headers=acc.headers)
    assert after.headers["etag"] == before.headers["etag"]
    assert after.json() == before.json()
    saved = server.client.get(f"{base}/graph", headers=acc.headers).json()["response"]
    assert {e["label"] for e in saved["edges"]} == {"1"}
    # A draft the PUT would refuse is refused the same way, naming the field.
    bad = {"menu": {"digit_2": {"action": "call", "to": "user", "id": "999"}}}
    r = server.client.post(f"{base}/validate", headers=acc.headers, json=bad)
    assert r.status_code == 400 and "menu.digit_2.id" in r.json()["response"]["detail"]
    r = server.client.post(f"{base}/graph", headers=acc.headers, json={"app_type": "mailbox"})
    assert r.status_code == 400 and r.json()["response"]["code"] == "immutable_field"


def test_graph_formats(server: RunningServer) -> None:
    acc = server.account()
    apps = _apps(server, acc)
    base = f"/account/{acc.account_id}/voiceapp/{apps['Main menu']['app_id']}/graph"
    mermaid = server.client.get(base + "?format=mermaid", headers=acc.headers)
    assert mermaid.status_code == 200 and mermaid.text.startswith(("graph", "flowchart"))
    assert "Voice Mail" in mermaid.text and "-->" in mermaid.text
    dot = server.client.get(base + "?format=dot", headers=acc.headers)
    assert "digraph" in dot.text
    js = server.client.get(base, headers=acc.headers).json()["response"]
    assert js


def test_cli_simulate_prints_the_transcript(tmp_path: Path) -> None:
    env = dict(os.environ, OPENIVR_DATA_DIR=str(tmp_path / "data"))
    cli = [sys.executable, "-m", "openivr.cli"]
    created = subprocess.run(
        cli + ["account", "create", "--email", "cli@example.com", "--password", "secret12"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "account_id" in created.stdout
    import sqlite3

    db = sqlite3.connect(tmp_path / "data" / "openivr.db")
    app_id = db.execute("select app_id from voiceapp where name='Main menu'").fetchone()[0]
    out = subprocess.run(
        cli + ["simulate", app_id, "--keys", "1"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "For Voice Mail, press 1." in out.stdout
    assert "menu option 1" in out.stdout and "Outcome:" in out.stdout
    built = subprocess.run(
        cli + ["prompts", "build"], env=env, capture_output=True, text=True, check=True
    )
    counts = json.loads(built.stdout)
    assert counts["apps"] == 3 and counts["standard_renderings"] >= 11 * 8
    rendered = list((tmp_path / "data" / "audio" / "rendered").rglob("*.ulaw"))
    assert len(rendered) >= counts["standard_renderings"]
    bad = subprocess.run(
        cli + ["simulate", "VAnope", "--keys", "1"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "no voice app" in bad.stderr
