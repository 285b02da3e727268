"""A real phone (baresip) calls a running node over TLS with SRTP: the menu hears its key, the
voicemail keeps what it said (decrypted), and the call record says how the call travelled."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from openivr.audio import tones
from tests.calls.conftest import SmtpSink, ended, free_udp_port, rtp_range, wait_for
from tests.conftest import RunningServer, base_settings, free_port, run_server
from tests.sip.softphone import Certificates, Softphone

pytestmark = pytest.mark.peer


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


@pytest.fixture
def tls_node(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[tuple[RunningServer, Certificates]]:
    """A node that takes SIP over TLS (SRTP when offered), with voicemail mailed to a sink."""
    certs = Certificates.make(tmp_path / "certs")
    settings = base_settings(
        tmp_path,
        sip_port=free_udp_port(),
        sip_tls_port=free_port(),
        tls_cert=str(certs.cert),
        tls_key=str(certs.key),
        rtp_ports=rtp_range(),
        smtp_url=f"smtp://127.0.0.1:{smtp_sink.port}",
        smtp_from="voicemail@openivr.test",
    )
    for server in run_server(settings):
        yield server, certs


def test_a_tls_srtp_caller_presses_1_and_leaves_a_voicemail(
    tls_node: tuple[RunningServer, Certificates], tmp_path: Path
) -> None:
    node, certs = tls_node
    acc = node.account()
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
        "response"
    ]
    menu = next(a for a in apps if a["app_type"] == "ivr")
    box = next(a for a in apps if a["app_type"] == "mailbox")
    box_url = f"/account/{acc.account_id}/voiceapp/{box['app_id']}"
    node.client.put(
        box_url, headers=acc.headers, json={"greeting_prompt": "no", "goodbye_prompt": "no"}
    )
    # Silent while the menu plays and the key is pressed, then "aaah" at 600 Hz for 3 s.
    voice = np.concatenate([tones.silence(4000), tones.beep(600.0, 3000, -12.0)])
    phone = Softphone.prepare(
        tmp_path / "phone",
        "<sip:+46701234567@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand",
        voice=np.concatenate([voice, tones.silence(9000)]),
        ca=certs.ca,
    )
    port = node.settings.sip_tls_port

    def voicemail() -> list[dict[str, object]]:
        return list(node.client.get(f"{box_url}/voicemail", headers=acc.headers).json()["response"])

    async def call() -> tuple[list[dict[str, object]], str]:
        await phone.start(f"/dial sip:{menu['app_id']}@127.0.0.1:{port};transport=tls", seconds=25)
        try:
            await phone.wait_for_output("incoming rtp for 'audio' established")
            # At once, during the welcome: the key stops it and counts. baresip holds the key
            # (events between its audio packets) while the mailbox records, which must not
            # count as silence.
            phone.press("1")  # to the voicemail box (the default menu's key 1)
            messages = await asyncio.to_thread(wait_for, voicemail, 25)
        finally:
            out = await phone.stop()
        return messages, out

    messages, out = asyncio.run(call())
    assert "SRTP is Enabled" in out
    with wave.open(io.BytesIO(node.client.get(str(messages[0]["audio_url"])).content)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert abs(dominant_hz(samples, 8000) - 600) < 10  # the caller's voice, decrypted
    [record] = wait_for(
        lambda: ended(node.client.get(f"/account/{acc.account_id}/call", headers=acc.headers))
    )
    assert record["keys"] == "1" and record["outcome"] == "voicemail", record
    assert record["detail"]["signalling"] == "TLS" and record["detail"]["media"] == "SRTP"
