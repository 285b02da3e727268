"""One phone call as the IVR sees it: play, record, DTMF and hang-up, as commands and events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from openivr.audio import g711
from openivr.sip.clock import MediaClock
from openivr.sip.dtmf import EventDeduplicator, ToneDetector
from openivr.sip.jitterbuffer import JitterBuffer
from openivr.sip.media import RtpSession, RtpStats
from openivr.sip.message import SipRequest
from openivr.sip.rtp import SAMPLES_PER_FRAME, RtpError, RtpPacket, TelephoneEvent, silence_frame
from openivr.sip.sdp import MediaAgreement
from openivr.sip.transport import TransportName

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
DtmfSource = Literal["rfc4733", "info", "inband"]
HangupSide = Literal["caller", "us", "timeout"]
RecordingReason = Literal["key", "silence", "max_length", "stopped", "hangup"]


class MediaCallStateError(RuntimeError):
    """A call command that the call's state does not allow (e.g. play before answer)."""


# Events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaybackFinished:
    """The prompt started by play() ended; `interrupted` when stopped (key, stop, hang-up)."""

    interrupted: bool


@dataclass(frozen=True)
class Dtmf:
    """The caller pressed a key."""

    key: str
    source: DtmfSource


@dataclass(frozen=True)
class AudioRecorded:
    """A recording ended: 16-bit little-endian 8 kHz mono PCM and why it ended."""

    pcm: bytes
    reason: RecordingReason
    seconds: float
    key: str | None = None


@dataclass(frozen=True)
class HungUp:
    """The call is over; `by` says which side ended it."""

    by: HangupSide
    reason: str


MediaCallEvent = PlaybackFinished | Dtmf | AudioRecorded | HungUp


@dataclass
class SipCallRecord:
    """What the server reports when a call ends (for call records)."""

    call_id: str
    caller: str
    dialed: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    ended_by: HangupSide
    status: int
    reason: str
    transport: str = ""  # the caller's SIP transport: UDP, TCP or TLS
    srtp: bool = False  # whether the caller's media was SRTP


@runtime_checkable
class Playable(Protocol):
    """Anything that can render itself as 20 ms frames in a call's codec (e.g. a prompt)."""

    def frames(self, codec: g711.Codec) -> Sequence[bytes]:
        """Encoded 160-byte frames for `codec` ('PCMU' or 'PCMA')."""
        ...


class CallSignalling(Protocol):
    """The SIP side of a call, implemented by `dialog.IncomingDialog`."""

    def send_ringing(self) -> None:
        """Send 180 Ringing."""

    def send_answer(self) -> None:
        """Send 200 OK with our SDP (retransmitted until ACK)."""

    def send_bye(self) -> None:
        """Send BYE (retransmitted until answered)."""

    def send_reject(self, status: int, reason: str) -> None:
        """Send a final error response to the INVITE."""

    def send_refer(self, target_uri: str) -> asyncio.Future[int]:
        """Send REFER to `target_uri`; the future holds its final status (0: node stopped)."""
        ...

    def watch_notifies(self, sink: Callable[[SipRequest], None] | None) -> None:
        """Hand NOTIFYs about our REFER to `sink` (None: stop)."""


@dataclass
class _Recording:
    max_samples: int
    max_silent_samples: int | None
    stop_keys: str
    threshold: float
    buffer: JitterBuffer
    codec: g711.Codec  # what the buffer holds: the call's codec when recording started
    max_seconds: float = 120.0
    max_silence: float | None = 5.0
    started_at: float = 0.0
    heard_at: float = 0.0  # when the last audio packet arrived (monotonic)
    watchdog: asyncio.TimerHandle | None = None
    chunks: list[npt.NDArray[np.int16]] = field(default_factory=list)
    samples: int = 0
    silent_samples: int = 0


class MediaCall:
    """A call routed to a handler: answer it, play prompts, record, and read its events."""

    def __init__(
        self,
        *,
        call_id: str,
        caller: str,
        dialed: str,
        agreement: MediaAgreement,
        session: RtpSession,
        clock: MediaClock,
        remote_sip: tuple[str, int],
        transport: TransportName,
        on_end: Callable[[MediaCall], None],
    ) -> None:
        self.call_id = call_id
        self.caller = caller
        self.dialed = dialed
        self.agreement = agreement
        self.remote_sip = remote_sip
        self.transport = transport
        self.state: Literal["new", "ringing", "answered", "ended"] = "new"
        self.started_at = datetime.now(UTC)
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.hangup_event: HungUp | None = None
        self.final_status = 0
        self.signalling: CallSignalling | None = None
        self._session = session
        self._session._on_audio = self._on_audio
        self._session._on_event = self._on_telephone_event
        self._clock = clock
        self._on_end = on_end
        self._events: asyncio.Queue[MediaCallEvent] = asyncio.Queue()
        self._barge_in = False
        self._recording: _Recording | None = None
        self._dedupe = EventDeduplicator()
        self._detector = ToneDetector() if agreement.event_payload_type is None else None
        # In-band detection only without RFC 4733; otherwise audio is not even parsed until a
        # recording wants it (the media path's biggest per-packet saving).
        session.audio_wanted = self._detector is not None
        self._ended = asyncio.Event()
        # While bridged to another leg, keys go there instead of to the event queue.
        self.key_sink: Callable[[str, DtmfSource], None] | None = None

    # Properties -----------------------------------------------------------------------------

    @property
    def codec(self) -> g711.Codec:
        """The negotiated codec: 'PCMU' or 'PCMA'."""
        return self.agreement.codec

    @property
    def remote_rtp(self) -> tuple[str, int]:
        """Where our RTP goes now (latched to where the caller's RTP comes from)."""
        return self._session.remote

    @property
    def local_rtp_port(self) -> int:
        """Our RTP port for this call."""
        return self._session.local_port

    @property
    def stats(self) -> RtpStats:
        """RTP counters and send-interval statistics."""
        return self._session.stats

    @property
    def ended(self) -> bool:
        """Whether the call is over."""
        return self.state == "ended"

    @property
    def rtp_session(self) -> RtpSession:
        """The call's RTP session (a transfer bridges it to another leg)."""
        return self._session

    @property
    def clock(self) -> MediaClock:
        """The clock that paces the call's outgoing audio."""
        return self._clock

    def follow(self, agreement: MediaAgreement) -> None:
        """Take a new SDP agreement (a re-INVITE, a late answer): where our RTP goes, and
        whether we send it at all (hold), and in which codec."""
        self._session.use(agreement.codec, agreement.payload_type, agreement.receives)
        self._session.remote = (agreement.remote_address, agreement.remote_port)
        self._session.sending = agreement.may_send
        self.agreement = agreement

    async def wait_ended(self) -> None:
        """Return once the call is over (without taking events from the queue)."""
        await self._ended.wait()

    # Call progress ---------------------------------------------------------------------------

    async def ring(self) -> None:
        """Tell the caller the phone rings (180)."""
        if self.state == "new" and self.signalling is not None:
            self.state = "ringing"
            self.signalling.send_ringing()

    async def answer(self) -> None:
        """Answer (200 OK with SDP) and start sending audio (silence until play())."""
        if self.state == "ended":
            raise MediaCallStateError(f"call {self.call_id} has already ended")
        if self.state == "answered" or self.signalling is None:
            return
        self.state = "answered"
        self.answered_at = datetime.now(UTC)
        self.signalling.send_answer()
        self._clock.add(self._session)

    async def hangup(self) -> None:
        """End the call from our side: BYE when answered, 480 before."""
        if self.state == "ended" or self.signalling is None:
            return
        if self.state == "answered":
            self.signalling.send_bye()
        else:
            self.signalling.send_reject(480, "Temporarily Unavailable")
        self.finish("us", "hangup")

    # Audio out -------------------------------------------------------------------------------

    def play(self, source: Sequence[bytes] | Playable, *, barge_in: bool = False) -> None:
        """Start playing encoded frames (replacing any prompt); PlaybackFinished follows."""
        if self.state == "ended":
            return
        if self.state != "answered":
            raise MediaCallStateError(f"call {self.call_id} must be answered before play()")
        if isinstance(source, Playable):
            frames = source.frames(self.codec)  # 20 ms frames already (not walked per call)
        elif any(len(f) != SAMPLES_PER_FRAME for f in source):
            frames = g711.split_frames(b"".join(source), self.codec)
        else:
            frames = source
        self.stop_playing()
        self._barge_in = barge_in
        if not frames:
            self._events.put_nowait(PlaybackFinished(interrupted=False))
            return
        self._session.play(frames, self._playback_done)

    def play_pcm(self, samples: npt.NDArray[np.int16], *, barge_in: bool = False) -> None:
        """Encode 8 kHz 16-bit samples in the call's codec and play them (tones, beeps)."""
        self.play(
            g711.encode_frames(np.asarray(samples, dtype=np.int16), self.codec),
            barge_in=barge_in,
        )

    def stop_playing(self) -> None:
        """Stop the prompt now; PlaybackFinished(interrupted=True) follows if one was playing."""
        self._barge_in = False
        if self._session.stop_playing():
            self._events.put_nowait(PlaybackFinished(interrupted=True))

    @property
    def playing(self) -> bool:
        """Whether a prompt is playing."""
        return self._session.playing

    def _playback_done(self) -> None:
        # Barge-in was the prompt's: what plays next on the session (a transfer's ringback)
        # is not stopped by a key.
        self._barge_in = False
        self._events.put_nowait(PlaybackFinished(interrupted=False))

    # Recording -------------------------------------------------------------------------------

    def start_recording(
        self,
        *,
        max_seconds: float = 120.0,
        max_silence: float | None = 5.0,
        stop_keys: str = "#",
        silence_threshold: float = 300.0,
    ) -> None:
        """Record the caller until a stop key, `max_silence` s of quiet, the limit or hang-up."""
        if self.state != "answered":
            raise MediaCallStateError(f"call {self.call_id} must be answered before recording")
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        if self._recording is not None:
            self.stop_recording()
        now = time.monotonic()
        self._recording = _Recording(
            max_samples=int(max_seconds * SAMPLE_RATE),
            max_silent_samples=None if max_silence is None else int(max_silence * SAMPLE_RATE),
            stop_keys=stop_keys,
            threshold=silence_threshold,
            buffer=JitterBuffer(silence_frame(self.codec)),
            codec=self.codec,
            max_seconds=max_seconds,
            max_silence=max_silence,
            started_at=now,
            heard_at=now,
        )
        self._session.audio_wanted = True
        self._watch_recording()

    def _watch_recording(self) -> None:
        # Limits counted in received audio never fire for a caller who sends no RTP at all
        # (on hold, or media lost): the wall clock ends such a recording too.
        rec = self._recording
        if rec is None:
            return
        now = time.monotonic()
        if rec.max_silence is not None and now - rec.heard_at >= rec.max_silence:
            self._finish_recording("silence")
        elif now - rec.started_at >= rec.max_seconds + 1.0:
            self._finish_recording("max_length")
        else:
            rec.watchdog = asyncio.get_running_loop().call_later(0.25, self._watch_recording)

    def stop_recording(self) -> None:
        """Stop recording now; AudioRecorded(reason='stopped') follows."""
        self._finish_recording("stopped")

    @property
    def recording(self) -> bool:
        """Whether a recording runs."""
        return self._recording is not None

    def _finish_recording(self, reason: RecordingReason, key: str | None = None) -> None:
        rec = self._recording
        if rec is None:
            return
        if reason != "silence":
            for frame in rec.buffer.flush():
                self._append(rec, frame)
        self._recording = None
        self._session.audio_wanted = self._detector is not None
        if rec.watchdog is not None:
            rec.watchdog.cancel()
        pcm = np.concatenate(rec.chunks) if rec.chunks else np.zeros(0, dtype=np.int16)
        if reason == "silence":
            # Leave out the quiet stretch that ended the message.
            pcm = pcm[: max(0, len(pcm) - rec.silent_samples)]
        pcm = pcm[: rec.max_samples]
        data = pcm.astype("<i2").tobytes()
        self._events.put_nowait(AudioRecorded(data, reason, len(pcm) / SAMPLE_RATE, key))

    def _append(self, rec: _Recording, frame: bytes) -> None:
        samples = g711.decode(frame, rec.codec)
        rec.chunks.append(samples)
        rec.samples += len(samples)
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
        rec.silent_samples = rec.silent_samples + len(samples) if rms < rec.threshold else 0

    # Incoming media and keys -----------------------------------------------------------------

    def _on_audio(self, packet: RtpPacket) -> None:
        if self.state != "answered":
            return
        codec = self._session.receives.get(packet.payload_type)
        if codec is None:
            return  # not audio the caller offered: never decoded as if it were
        if self._detector is not None:
            for key in self._detector.feed(g711.decode(packet.payload, codec)):
                self.receive_key(key, "inband")
        rec = self._recording
        if rec is None:
            return
        rec.heard_at = time.monotonic()
        payload = g711.transcode(packet.payload, codec, rec.codec)
        self._record_frames(
            rec, rec.buffer.push(packet.sequence, payload, packet.ssrc, packet.timestamp)
        )

    def _record_frames(self, rec: _Recording, frames: list[bytes]) -> None:
        for frame in frames:
            self._append(rec, frame)
            if rec.samples >= rec.max_samples:
                self._finish_recording("max_length")
                return
            if rec.max_silent_samples is not None and rec.silent_samples >= rec.max_silent_samples:
                self._finish_recording("silence")
                return

    def _on_telephone_event(self, packet: RtpPacket) -> None:
        try:
            event = TelephoneEvent.parse(packet.payload)
        except RtpError:
            return
        rec = self._recording
        if rec is not None:
            # Not a gap in the caller's audio: a held key would otherwise add a silent frame
            # per event packet and end the message early as "silence".
            self._record_frames(rec, rec.buffer.skip(packet.sequence, packet.ssrc))
        key = self._dedupe.feed(packet.timestamp, event)
        if key is not None:
            self.receive_key(key, "rfc4733")

    def receive_key(self, key: str, source: DtmfSource) -> None:
        """A key arrived (RTP event, INFO or tone): stop recording/barge in, then report it."""
        if self.state != "answered":
            return
        if self.key_sink is not None:
            self.key_sink(key, source)
            return
        rec = self._recording
        if rec is not None and key in rec.stop_keys:
            self._finish_recording("key", key)
            return
        if self._barge_in and self._session.playing:
            self.stop_playing()
        self._events.put_nowait(Dtmf(key, source))

    # Events ----------------------------------------------------------------------------------

    async def next_event(self) -> MediaCallEvent:
        """The next event; after the call ended and the queue drained, HungUp again."""
        if self._events.empty() and self.hangup_event is not None:
            return self.hangup_event
        return await self._events.get()

    def pending_events(self) -> list[MediaCallEvent]:
        """Events already queued, without waiting (for tests and polling drivers)."""
        out: list[MediaCallEvent] = []
        while not self._events.empty():
            out.append(self._events.get_nowait())
        return out

    def finish(self, by: HangupSide, reason: str) -> None:
        """End the call locally (called by the server on BYE, CANCEL, timeouts, hang-up)."""
        if self.state == "ended":
            return
        self.stop_playing()
        if self._recording is not None:
            self._session.drain()  # what arrived before the hang-up belongs to the recording
        self._finish_recording("hangup")
        self.state = "ended"
        self.ended_at = datetime.now(UTC)
        self._clock.remove(self._session)
        self._session.close()
        self.hangup_event = HungUp(by, reason)
        self._events.put_nowait(self.hangup_event)
        self._ended.set()
        try:
            self._on_end(self)
        except Exception:
            log.exception("call-end hook failed for %s", self.call_id)
