"""Messages: play them, upload a WAV by drag and drop, type a text, go back to the default."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

from tests.console.browser import by_text, find
from tests.console.conftest import Console


def tone_wav(seconds: float = 1.5, rate: int = 16000) -> bytes:
    """A 440 Hz tone as a 16-bit mono WAV."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def _open_messages(console: Console, app: str = "Main menu") -> tuple[str, dict[str, str]]:
    app_id = str(console.app_named(app)["app_id"])
    prompts = console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt"))
    console.go(f"#/apps/{app_id}/prompts")
    by_text(console.driver, "main h1", "Messages of")
    return app_id, {p["key"] or p["name"]: p["prompt_id"] for p in prompts}


def test_play_the_default_recording(console: Console) -> None:
    _app_id, ids = _open_messages(console)
    card = f"li[data-prompt-id='{ids['welcome']}']"
    assert "Welcome, and thank you for calling." in console.text(card)
    assert 1.5 < console.plays(f"{card} audio") < 3


def test_upload_a_wav_by_drag_and_drop_and_play_it(console: Console) -> None:
    app_id, ids = _open_messages(console)
    card = f"li[data-prompt-id='{ids['welcome']}']"
    console.drop_file(card, "our-greeting.wav", tone_wav(1.5))
    by_text(console.driver, f"{card} .description", "Your recording (our-greeting.wav)")
    prompt = console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt/{ids['welcome']}"))
    assert prompt["exists"] is True and prompt["file_name"] == "our-greeting.wav"
    audio = find(console.driver, f"{card} audio")
    assert "/audio/prompt/" in str(audio.get_attribute("src"))
    assert 1.2 < console.plays(f"{card} audio") < 1.8
    assert console.page_errors() == []


def test_a_refused_upload_shows_the_servers_own_words(console: Console, tmp_path: Path) -> None:
    app_id, ids = _open_messages(console)
    card = f"li[data-prompt-id='{ids['menu']}']"
    broken = tone_wav(0.5)[:30]  # cut inside the header
    expected = console.server.client.post(
        console.acct(f"/voiceapp/{app_id}/prompt/{ids['menu']}/message"),
        headers=console.account.headers,
        files={"file": ("cut.wav", broken, "audio/wav")},
    ).json()["response"]["detail"]
    find(console.driver, f"{card} button[name=upload]").click()
    # Chosen with the file input, as a keyboard user does (the other test drops a file).
    path = tmp_path / "cut.wav"
    path.write_bytes(broken)
    find(console.driver, f"{card} input[name=file]").send_keys(str(path))
    refusal = find(console.driver, f"{card} .upload-status .alert.error")
    assert "cut.wav was not accepted" in refusal.text and expected in refusal.text
    prompt = console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt/{ids['menu']}"))
    assert prompt["exists"] is False


def test_type_a_text_hear_it_keep_it_then_go_back_to_the_default(console: Console) -> None:
    app_id, ids = _open_messages(console)
    card = f"li[data-prompt-id='{ids['welcome']}']"
    driver = console.driver
    find(driver, f"{card} button[name=type]").click()
    text = find(driver, f"{card} textarea[name=text]")
    text.clear()
    text.send_keys("Welcome to Andersson Dental. We are closed over Christmas.")
    from selenium.webdriver.support.ui import Select

    Select(find(driver, f"{card} select[name=tts_voice]")).select_by_value("en-uk-fe")
    find(driver, f"{card} button[name=listen]").click()
    heard = find(driver, f"{card} .tts-out audio")
    assert "/audio/render/" in str(heard.get_attribute("src"))
    assert console.plays(f"{card} .tts-out audio") > 2
    # Listening saved nothing; keeping it does.
    before = console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt/{ids['welcome']}"))
    assert before["exists"] is False
    find(driver, f"{card} button[name=keep]").click()
    by_text(driver, card, "Text to speech")
    kept = console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt/{ids['welcome']}"))
    assert kept["exists"] is True and kept["message_voice"] == "en-uk-fe"
    assert kept["message_text"] == "Welcome to Andersson Dental. We are closed over Christmas."
    assert "closed over Christmas" in console.text(card)
    find(driver, f"{card} button[name=clear]").click()
    by_text(driver, "dialog button", "Remove").click()
    by_text(driver, card, "Standard recording")
    back = console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt/{ids['welcome']}"))
    assert back["exists"] is False


def test_add_and_delete_a_message_of_your_own(console: Console) -> None:
    app_id, _ids = _open_messages(console)
    driver = console.driver
    find(driver, "input[name=prompt_name]").send_keys("Holiday greeting")
    console.button("Add").click()
    card = by_text(driver, "li.card.prompt", "Holiday greeting")
    assert "Empty" in card.text
    names = [p["name"] for p in console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt"))]
    assert "Holiday greeting" in names
    card.find_element("css selector", "button[name=delete]").click()
    by_text(driver, "dialog button", "Delete").click()
    console.wait(lambda: "Holiday greeting" not in console.text())
    names = [p["name"] for p in console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt"))]
    assert "Holiday greeting" not in names


def test_each_message_shows_the_number_that_records_it_by_phone(console: Console) -> None:
    app_id, _ids = _open_messages(console)
    for prompt in console.api("GET", console.acct(f"/voiceapp/{app_id}/prompt")):
        code = prompt["record_code"]
        shown = console.text(f"li[data-prompt-id='{prompt['prompt_id']}'] .record-code")
        assert f"Number {code}" in shown and f"*22, {code}#" in shown
    assert "dial *22" in console.text("main")
    assert console.page_errors() == []
