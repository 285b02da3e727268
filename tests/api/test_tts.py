"""Text to speech over the API, default recordings, and the menu prompt built from the menu."""

from __future__ import annotations

import io
import wave

from tests.conftest import RunningServer


def test_voices_list_has_one_default_per_language(server: RunningServer) -> None:
    acc = server.account()
    voices = server.client.get("/tts/prompt/voice", headers=acc.headers).json()["response"]
    assert len(voices) == 11
    for v in voices:
        assert set(v) >= {
            "language",
            "language_label",
            "voice",
            "speaker",
            "gender",
            "default_variant",
            "default_voice",
        }
    languages = {v["language"] for v in voices}
    for lang in languages:
        assert sum(1 for v in voices if v["language"] == lang and v["default_voice"]) == 1


def test_convert_text_to_a_playable_wav(server: RunningServer) -> None:
    acc = server.account()
    r = server.client.post(
        "/tts/prompt/convert",
        headers=acc.headers,
        json={
            "text": "Our office is open from nine to five.",
            "language": "en_GB",
            "voice": "en-uk-fe",
        },
    )
    assert r.status_code == 200, r.text
    url = r.json()["response"]["url"]
    wav = server.client.get(url)
    assert wav.status_code == 200
    with wave.open(io.BytesIO(wav.content)) as w:
        assert w.getframerate() == 8000 and w.getnframes() > 8000
    for body, field in (
        ({"text": "hi", "language": "xx_XX"}, "language"),
        ({"text": "hi", "voice": "nobody"}, "voice"),
        ({"text": "", "language": "en_US"}, "text"),
        ({"text": "a" * 3001, "language": "en_US"}, "text"),
        ({"text": "hi", "language": "sv_SE", "voice": "en"}, "voice"),
    ):
        r = server.client.post("/tts/prompt/convert", headers=acc.headers, json=body)
        assert r.status_code == 400, body
        assert r.json()["response"]["detail"].startswith(field), r.text


def test_default_recording_is_reported_and_playable(server: RunningServer) -> None:
    acc = server.account()
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
        "response"
    ]
    box = next(a for a in apps if a["app_type"] == "mailbox")
    prompts = server.client.get(
        f"/account/{acc.account_id}/voiceapp/{box['app_id']}/prompt", headers=acc.headers
    ).json()["response"]
    greeting = next(p for p in prompts if p["key"] == "greeting")
    msg = server.client.get(
        f"/prompt/{greeting['prompt_id']}?fields=message", headers=acc.headers
    ).json()["response"]
    assert msg["exists"] is False
    assert "default recording" in msg["file_details"]
    assert 1.0 < msg["audio_length"] < 15
    wav = server.client.get(msg["message_url"])
    with wave.open(io.BytesIO(wav.content)) as w:
        assert abs(w.getnframes() / 8000 - msg["audio_length"]) < 0.05


def test_menu_prompt_follows_the_menu(server: RunningServer) -> None:
    acc = server.account()
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
        "response"
    ]
    menu_app = next(a for a in apps if a["app_type"] == "ivr")
    url = f"/account/{acc.account_id}/voiceapp/{menu_app['app_id']}/prompt"
    menu = next(
        p
        for p in server.client.get(url, headers=acc.headers).json()["response"]
        if p["key"] == "menu"
    )
    assert menu["default_text"] == "For Voice Mail, press 1."
    r = server.client.post(
        f"/account/{acc.account_id}/user",
        headers=acc.headers,
        json={
            "user_fname": "Anna",
            "user_lname": "Berg",
            "email": f"anna-{acc.account_id}@example.com",
            "password": "password1",
        },
    )
    anna = r.json()["response"]["user_id"]
    server.client.put(
        f"/account/{acc.account_id}/voiceapp/{menu_app['app_id']}",
        headers=acc.headers,
        json={
            "voice": "en-fe",
            "menu": {
                "digit_1": {"action": "call", "to": "user", "id": anna},
                "digit_2": {
                    "action": "connect",
                    "to": "app",
                    "id": menu_app["menu"]["digit_1"]["id"],
                },
            },
        },
    )
    again = server.client.get(f"{url}/{menu['prompt_id']}", headers=acc.headers).json()["response"]
    assert again["default_text"] == "For Anna Berg, press 1. For Voice Mail, press 2."
    assert again["default_voice"] == "en-fe"
    assert again["message_url"] != menu["message_url"]


def test_prompt_message_from_text(server: RunningServer) -> None:
    acc = server.account()
    apps = server.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
        "response"
    ]
    menu_app = next(a for a in apps if a["app_type"] == "ivr")
    welcome = next(
        p
        for p in server.client.get(
            f"/account/{acc.account_id}/voiceapp/{menu_app['app_id']}/prompt", headers=acc.headers
        ).json()["response"]
        if p["key"] == "welcome"
    )
    r = server.client.post(
        f"/prompt/{welcome['prompt_id']}/message",
        headers=acc.headers,
        json={"text": "Välkommen till Acme.", "voice": "swe"},
    )
    assert r.status_code == 200, r.text
    shown = r.json()["response"]
    assert (
        shown["exists"] is True
        and shown["message_text"] == "Välkommen till Acme."
        and shown["audio_length"] > 0.5
    )
    assert server.client.get(shown["message_url"]).status_code == 200
    r = server.client.post(
        f"/prompt/{welcome['prompt_id']}/message",
        headers=acc.headers,
        json={"text": "hi", "voice": "xx"},
    )
    assert r.status_code == 400 and r.json()["response"]["detail"].startswith("voice")
    r = server.client.post(
        f"/prompt/{welcome['prompt_id']}/message",
        headers={**acc.headers, "Content-Type": "application/json"},
        content=b"{oops",
    )
    assert r.status_code == 400 and r.json()["response"]["code"] == "malformed_json"
    still = server.client.get(f"/prompt/{welcome['prompt_id']}", headers=acc.headers).json()[
        "response"
    ]
    assert still["record_id"] == shown["record_id"]


def test_the_spoken_menu_names_people_by_name_and_numbers_in_words(
    any_server: RunningServer,
) -> None:
    server = any_server
    acc = server.account()  # its admin has no name but the e-mail's local part
    base = f"/account/{acc.account_id}"
    r = server.client.post(
        f"{base}/user",
        headers=acc.headers,
        json={
            "user_fname": "Anna",
            "user_lname": "Berg",
            "email": f"anna-{acc.account_id}@example.com",
            "password": "password1",
            "phnum": "+46701112233",
        },
    )
    anna = r.json()["response"]["user_id"]
    apps = server.client.get(f"{base}/voiceapp", headers=acc.headers).json()["response"]
    menu_app = next(a for a in apps if a["app_type"] == "ivr")
    box = next(a for a in apps if a["app_type"] == "mailbox")
    menu = {
        "digit_1": {"action": "call", "to": "user", "id": anna},
        "digit_2": {"action": "call", "to": "user", "id": acc.user_id},
        "digit_3": {"action": "call", "to": "phnum", "id": "+46701234567"},
        "digit_4": {"action": "call", "to": "phnum", "id": "+46701112233"},  # Anna's number
        "digit_5": {"action": "call", "to": "other", "id": box["sip_address"]},
    }

    def spoken(voice: str) -> str:
        r = server.client.put(
            f"{base}/voiceapp/{menu_app['app_id']}",
            headers=acc.headers,
            json={"voice": voice, "menu": menu},
        )
        assert r.status_code == 200, r.text
        prompts = server.client.get(
            f"{base}/voiceapp/{menu_app['app_id']}/prompt", headers=acc.headers
        ).json()["response"]
        return str(next(p for p in prompts if p["key"] == "menu")["default_text"])

    assert spoken("en") == (
        "For Anna Berg, press 1. For the operator, press 2. "
        "For an external number, press 3. For Anna Berg, press 4. For Voice Mail, press 5."
    )
    assert spoken("swe") == (
        "För Anna Berg, tryck 1. För växeln, tryck 2. "
        "För ett externt nummer, tryck 3. För Anna Berg, tryck 4. För Voice Mail, tryck 5."
    )
    # A name the user gives themselves is said as given.
    server.client.put(
        f"{base}/user/{acc.user_id}", headers=acc.headers, json={"user_fname": "Rita"}
    )
    assert "For Rita, press 2." in spoken("en")
