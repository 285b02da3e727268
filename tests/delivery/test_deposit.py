"""The hand-off point: bad input is refused clearly; files without a row are adopted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openivr.audio.wav import write_wav
from openivr.context import ServerContext
from openivr.delivery.deposit import VoicemailError, deposit_voicemail, message_count
from openivr.delivery.messagefiles import MessageFiles, Sidecar
from openivr.store.voicemail import remove_message
from tests.delivery.conftest import MailServer, VoicemailNode, node_settings, run_node


def _deposit(node: VoicemailNode, **kw: Any) -> str:
    assert node.ctx is not None
    args: dict[str, Any] = {
        "caller": "+1",
        "dialed": "+2",
        "call_id": "c1",
        "pcm": np.zeros(800, dtype=np.int16),
    }
    args.update(kw)
    return node.run(deposit_voicemail(node.ctx, **args))


def test_bad_deposits_name_the_problem(node: VoicemailNode) -> None:
    acc, other = node.account(), node.account()
    box = node.mailbox(acc)
    apps = node.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers).json()[
        "response"
    ]
    ivr = next(a["app_id"] for a in apps if a["app_type"] == "ivr")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"pcm": np.zeros(800, dtype=np.float32)}, "pcm: expected int16"),
        ({"pcm": np.zeros((800, 2), dtype=np.int16)}, "pcm: expected mono"),
        ({"pcm": np.zeros(0, dtype=np.int16)}, "pcm: the recording is empty"),
        ({"pcm": [0, 1, 2]}, "pcm: expected a numpy"),
        ({"app_id": ivr}, "not a mailbox"),
        ({"app_id": node.mailbox(other)}, "app_id: no voice app"),
        ({"app_id": "VAnothere0000"}, "app_id: no voice app"),
    ]
    for kw, expected in cases:
        args = {"account_id": acc.account_id, "app_id": box, **kw}
        with pytest.raises(VoicemailError, match=expected):
            _deposit(node, **args)
    assert node.ctx is not None
    assert node.run(message_count(node.ctx.sessions, box)) == 0
    _deposit(node, account_id=acc.account_id, app_id=box)
    _deposit(node, account_id=acc.account_id, app_id=box)
    assert node.run(message_count(node.ctx.sessions, box)) == 2


def test_started_at_and_wav_on_disk(node: VoicemailNode) -> None:
    acc = node.account()
    box = node.mailbox(acc, deliver_to="")
    pcm = (np.arange(4000) % 100).astype(np.int16)
    started = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    msg = _deposit(node, account_id=acc.account_id, app_id=box, pcm=pcm, started_at=started)
    [wav] = list((node.settings.audio_dir / "voicemail").rglob(f"{msg}.wav"))
    assert wav.read_bytes() == write_wav(pcm, 8000)
    assert (
        Sidecar.from_json(wav.with_suffix(".json").read_bytes()).started_at == started.isoformat()
    )
    assert node.message(acc, box, msg)["duration"] == 0.5


def test_files_without_a_row_are_adopted_at_start(tmp_path: Path, mail: MailServer) -> None:
    first = node_settings(tmp_path, smtp_url=mail.url)
    for node in run_node(first):
        acc = node.account()
        box = node.mailbox(acc, deliver_to="email", deliver_to_details="adopt@example.com")
        kept = node.deposit(acc.account_id, box)
        deleted = node.deposit(acc.account_id, box)
    mail.wait_for(2)
    files = MessageFiles(first.audio_dir)
    now = datetime.now(UTC).isoformat()

    def meta(ident: str) -> Sidecar:
        return Sidecar(ident, acc.account_id, box, "+4612345", "+4699", "c", 0.25, 2044, None, now)

    # A crash after the files were fsynced but before the row committed.
    orphan_wav = write_wav(np.full(2000, 7, dtype=np.int16), 8000)
    files.write(meta("VMorphan00001"), orphan_wav)
    # A crash after the sidecar but before the WAV: nothing to keep.
    half = files.wav_path(files.key(acc.account_id, box, "VMhalfdone001")).with_suffix(".json")
    half.write_bytes(meta("VMhalfdone001").to_json())
    # A crash in the middle of a delete: the tombstone is written, the row still exists.
    row_key = files.key(acc.account_id, box, deleted)
    files.mark_deleted(row_key)

    for node in run_node(node_settings(tmp_path, smtp_url=mail.url, secret=first.secret)):
        listed = node.client.get(
            f"/account/{acc.account_id}/voiceapp/{box}/voicemail", headers=acc.headers
        ).json()["response"]
        assert {m["message_id"] for m in listed} == {kept, deleted, "VMorphan00001"}
        adopted = node.wait_state(
            acc, box, "VMorphan00001", lambda v: v["delivery_state"] == "delivered"
        )
        assert adopted["caller"] == "+4612345"
        audio = node.client.get(
            f"/account/{acc.account_id}/voiceapp/{box}/voicemail/VMorphan00001/audio",
            headers=acc.headers,
        )
        assert audio.content == orphan_wav
        assert not half.exists()
        # The half-deleted message kept its row, so it stays, sidecar restored.
        assert files.wav_path(row_key).with_suffix(".json").exists()
    received = mail.wait_for(3)
    assert [m["X-OpenIVR-Message"] for m in received].count("VMorphan00001") == 1
    assert received[-1].get_body(preferencelist=("plain",)) is not None


async def _drop_row(ctx: ServerContext, message_id: str) -> None:
    async with ctx.sessions() as db:
        await remove_message(db, message_id)
        await db.commit()


def test_tombstone_without_row_is_cleared(tmp_path: Path) -> None:
    first = node_settings(tmp_path)
    for node in run_node(first):
        acc = node.account()
        box = node.mailbox(acc, deliver_to="")
        msg = node.deposit(acc.account_id, box)
        # The API deletes row then file; simulate a crash after the row went.
        files = MessageFiles(first.audio_dir)
        key = files.key(acc.account_id, box, msg)
        files.mark_deleted(key)
        assert node.ctx is not None
        node.run(_drop_row(node.ctx, msg))
    for node in run_node(node_settings(tmp_path, secret=first.secret)):
        listed = node.client.get(
            f"/account/{acc.account_id}/voiceapp/{box}/voicemail", headers=acc.headers
        ).json()["response"]
        assert listed == []  # not resurrected
        assert not files.wav_path(key).exists()
