"""Call recording: both ways of a call's audio, written to one WAV file as the call goes.

A recording hangs on one RTP session, the recorded party's leg (the caller's; a callback's
first party). What arrives on that session is the party's voice; what it sends is everything
they hear: menus, prompts, ringback and, through a bridge, the other party. Every bridge
relays through such a session (`sip/bridge.py` taps the party's packets it relays, the
session taps what it sends), so transfers, team calls and any later bridged kind are recorded
the same way, both ways, as one file.

The media path only copies a packet's payload into a bytearray at the place its RTP timestamp
says (no decoding, no I/O). Once a second the recorder cuts what is settled (half a second
behind now, so late packets still find their place; a tenth of the recordings every 100 ms) and
hands it to one writer thread (niced, so the media loop goes first on a busy core), which
decodes, mixes (or interleaves: stereo, one party per channel), appends to the WAV and fixes up
its header. A node killed meanwhile leaves a WAV holding all but the last second or two.

The writer failing (disk full, store gone) or falling more than `MAX_BACKLOG` seconds behind
(a slow or stuck store) ends the recording, never the call: it is marked failed with the
reason, its taps stop and its buffers are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from openivr.audio import g711
from openivr.audio.wavstream import HEADER_BYTES, WavStream
from openivr.durable import write_atomically

if TYPE_CHECKING:
    from openivr.sip.media import RtpSession

log = logging.getLogger(__name__)

RATE = 8000
# A packet may arrive this late (samples) and still be placed; cuts stay this far behind now.
SETTLE = RATE // 2
# A stream whose timestamps stray further than this (samples) from when its packets arrive
# (a new source, a jump, a long pause under the same SSRC) is placed by arrival time again.
REBASE = RATE * 3 // 10
# The timeline starts this long (samples) before the first packet, so packets sent before it
# but arriving after it (reordered at the very start) still find their place.
LEAD_IN = RATE // 10
CUT_SECONDS = 1.0
# Recordings are cut in this many groups, one group per step of the period, so the writer's
# work is spread over the second rather than arriving for every call at once.
CUT_GROUPS = 10
# The writer thread's niceness: on a busy core the media loop goes first.
WRITER_NICE = 10
# The writer may fall this many seconds behind before the recording is given up.
MAX_BACKLOG = 20.0
# The file's data is made durable (fdatasync) every this many cuts, and at the end.
SYNC_EVERY = 5
_TS_SSRC = struct.Struct("!II")

RecordingStatus = Literal["recording", "complete", "failed"]


@dataclass(frozen=True)
class RecordingResult:
    """How a recording ended: its status, why it failed, its file's size and length."""

    status: RecordingStatus
    failure: str
    size: int
    seconds: float


def _payload_of(data: bytes) -> tuple[int, int, bytes] | None:
    """(timestamp, ssrc, payload) of a raw RTP packet; None when it is malformed."""
    if len(data) < 12:
        return None
    timestamp, ssrc = _TS_SSRC.unpack_from(data, 4)
    first = data[0]
    if first == 0x80:
        return timestamp, ssrc, data[12:]
    if first >> 6 != 2:
        return None
    start = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        if len(data) < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
    end = len(data) - (data[-1] if first & 0x20 else 0)
    if start > end:
        return None
    return timestamp, ssrc, data[start:end]


class Track:
    """One way of a recorded call: G.711 bytes placed on the recording's timeline."""

    __slots__ = ("recording", "buffer", "_ssrc", "_base_ts", "_base_pos")

    def __init__(self, recording: CallRecording) -> None:
        self.recording = recording
        self.buffer = bytearray()  # samples from `recording.flushed` on
        self._ssrc: int | None = None
        self._base_ts = 0
        self._base_pos = 0

    def packet(self, data: bytes, codec: g711.Codec) -> None:
        """Place a raw RTP audio packet in `codec` (its payload type's)."""
        parts = _payload_of(data)
        if parts is not None:
            self.add(parts[1], parts[0], parts[2], codec)

    def add(self, ssrc: int, timestamp: int, payload: bytes, codec: g711.Codec) -> None:
        """Place one packet's payload by its RTP timestamp (hot path: no decoding, no I/O);
        a packet in another codec than the recording's is re-coded byte by byte."""
        rec = self.recording
        if rec.state != "recording":
            return
        if codec != rec.codec:
            payload = g711.transcode(payload, codec, rec.codec)
        now = time.monotonic()
        if rec.origin is None:
            rec.origin = now - LEAD_IN / RATE
        arrived = int((now - rec.origin) * RATE)
        if ssrc != self._ssrc:
            self._ssrc, self._base_ts, self._base_pos = ssrc, timestamp, arrived
            at = arrived
        else:
            at = (
                self._base_pos
                + ((timestamp - self._base_ts + 0x80000000) & 0xFFFFFFFF)
                - (0x80000000)
            )
            if not -REBASE <= at - arrived <= REBASE:
                self._base_ts, self._base_pos = timestamp, arrived
                at = arrived
        index = at - rec.flushed
        if index < 0:  # older than what was cut already: its start is lost
            if index + len(payload) <= 0:
                return
            payload = payload[-index:]
            index = 0
        buffer = self.buffer
        gap = index - len(buffer)
        if gap > 0:
            buffer.extend(rec.silence * gap)
        buffer[index : index + len(payload)] = payload

    def take(self, count: int) -> bytes:
        """The first `count` samples (silence where nothing arrived), removed from the buffer."""
        buffer = self.buffer
        chunk = bytes(buffer[:count])
        del buffer[:count]
        if len(chunk) < count:
            chunk += self.recording.silence * (count - len(chunk))
        return chunk


class CallRecording:
    """One call's recording: two tracks, its file, and how it is going."""

    def __init__(
        self,
        recording_id: str,
        path: Path,
        codec: g711.Codec,
        channels: int,
        sidecar: tuple[Path, bytes] | None = None,
    ) -> None:
        self.recording_id = recording_id
        self.path = path
        self.codec = codec
        self.channels = channels
        self.sidecar = sidecar
        self.silence = bytes([g711.silence_code(codec)])
        self.state: RecordingStatus = "recording"
        self.failure = ""
        self.origin: float | None = None  # monotonic time of the first packet either way
        self.flushed = 0  # samples cut and handed to the writer (the loop's count)
        self.written = 0  # samples the writer stored (the writer's count)
        self.party = Track(self)  # what arrives on the session: the recorded party
        self.heard = Track(self)  # what the session sends: what the party hears
        self.session: RtpSession | None = None
        self.stream: WavStream | None = None  # the writer thread's alone
        self.cuts = 0
        self.group = 0  # which step of the cut period this recording is cut in

    def fail(self, reason: str) -> None:
        """Give the recording up (the call goes on); the first reason is kept."""
        if self.state == "recording":
            self.failure = reason
            self.state = "failed"
            log.warning(
                "recording %s lost: %s (the call goes on)",
                self.recording_id,
                reason,
                extra={"event": "recording_failed"},
            )

    def cut(self, final: bool = False) -> tuple[bytes, bytes] | None:
        """What is settled now (everything, when `final`), removed from the tracks."""
        if self.origin is None or self.state != "recording":
            self.party.buffer.clear()
            self.heard.buffer.clear()
            return None
        if final:
            count = max(len(self.party.buffer), len(self.heard.buffer))
        else:
            settled = int((time.monotonic() - self.origin) * RATE) - SETTLE
            count = settled - self.flushed
        if count <= 0:
            return None
        chunk = self.party.take(count), self.heard.take(count)
        self.flushed += count
        return chunk


_Job = tuple[str, CallRecording, object]


class Recorder:
    """A node's recordings: the cuts once a second on the loop and the one writer thread."""

    def __init__(self, cut_seconds: float = CUT_SECONDS, max_backlog: float = MAX_BACKLOG) -> None:
        self.cut_seconds = cut_seconds
        self.max_backlog = max_backlog
        self.active: set[CallRecording] = set()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._tables: dict[str, npt.NDArray[np.int16]] = {}
        self._mixes: dict[str, npt.NDArray[np.int16]] = {}
        self._next_group = 0
        self.failed = 0  # recordings given up since start (for the log and benches)

    def start(
        self,
        session: RtpSession,
        recording_id: str,
        path: Path,
        *,
        channels: int = 1,
        sidecar: tuple[Path, bytes] | None = None,
    ) -> CallRecording:
        """Record `session` both ways into `path` from its next packet on; `sidecar` (a path
        and its bytes) is written before the WAV, for a node that dies before the end."""
        recording = CallRecording(recording_id, path, session.codec, channels, sidecar)
        recording.session = session
        recording.group = self._next_group
        self._next_group = (self._next_group + 1) % CUT_GROUPS
        self.active.add(recording)
        self._submit(("open", recording, None))
        session.recording = recording
        return recording

    async def finish(self, recording: CallRecording, timeout: float = 10.0) -> RecordingResult:
        """Stop recording, write what is left, close the file; how it went. A writer that does
        not answer within `timeout` (a stuck store) makes it a failed recording."""
        session = recording.session
        if session is not None and session.recording is recording:
            session.recording = None
        self.active.discard(recording)
        self._cut(recording, final=True)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[RecordingResult] = loop.create_future()

        def answer(result: RecordingResult) -> None:
            loop.call_soon_threadsafe(_settle, done, result)

        self._submit(("close", recording, answer))
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            recording.fail(f"the recording store did not answer within {timeout:g} s")
            return RecordingResult("failed", recording.failure, 0, 0.0)

    async def run(self) -> None:
        """Cut every active recording once a period (a group per step), until cancelled."""
        step = 0
        while True:
            await asyncio.sleep(self.cut_seconds / CUT_GROUPS)
            for recording in [r for r in self.active if r.group == step]:
                self._cut(recording)
            step = (step + 1) % CUT_GROUPS

    def _cut(self, recording: CallRecording, final: bool = False) -> None:
        behind = (recording.flushed - recording.written) / RATE
        if recording.state == "recording" and behind > self.max_backlog:
            recording.fail(f"the recording store is more than {self.max_backlog:g} s behind")
        chunk = recording.cut(final)
        if chunk is not None:
            self._submit(("write", recording, chunk))
        if recording.state == "failed" and recording in self.active:
            self.active.discard(recording)
            self.failed += 1

    def _submit(self, job: _Job) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._work, name="openivr-recording", daemon=True
            )
            self._thread.start()
        self._jobs.put(job)

    def close(self) -> None:
        """Let the writer thread end once it has done what it was given."""
        if self._thread is not None:
            self._jobs.put(None)

    # The writer thread ----------------------------------------------------------------------

    def _work(self) -> None:
        # Linux applies setpriority(PRIO_PROCESS, tid) to this thread alone (elsewhere it would
        # renice the whole process, the media loop included).
        if sys.platform == "linux" and WRITER_NICE:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICE)
            except OSError as exc:  # a sandbox may forbid it: still off the loop
                log.debug("the recording writer keeps its priority: %s", exc)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, recording, arg = job
            try:
                if kind == "open":
                    self._open(recording)
                elif kind == "write":
                    assert isinstance(arg, tuple)
                    self._write(recording, arg[0], arg[1])
                else:
                    assert callable(arg)
                    arg(self._close(recording))
            except Exception as exc:  # never the thread: the next recording must be written
                log.exception("recording %s: writer failed", recording.recording_id)
                recording.fail(f"the writer failed: {exc}")

    def _open(self, recording: CallRecording) -> None:
        try:
            recording.path.parent.mkdir(parents=True, exist_ok=True)
            if recording.sidecar is not None:
                write_atomically(*recording.sidecar)
            recording.stream = WavStream(recording.path, recording.channels)
        except OSError as exc:
            recording.fail(f"cannot create {recording.path.name}: {exc.strerror or exc}")

    def _table(self, codec: g711.Codec) -> npt.NDArray[np.int16]:
        table = self._tables.get(codec)
        if table is None:
            table = self._tables[codec] = g711.decode(bytes(range(256)), codec)
        return table

    def _mix(self, codec: g711.Codec) -> npt.NDArray[np.int16]:
        """Every pair of codes (party << 8 | heard) → their decoded sum, clipped (128 KiB)."""
        mix = self._mixes.get(codec)
        if mix is None:
            table = self._table(codec).astype(np.int32)
            sums = table[:, None] + table[None, :]
            mix = self._mixes[codec] = np.clip(sums, -32768, 32767).astype("<i2").ravel()
        return mix

    def _write(self, recording: CallRecording, party: bytes, heard: bytes) -> None:
        stream = recording.stream
        if stream is None or recording.state != "recording":
            return
        one = np.frombuffer(party, np.uint8)
        two = np.frombuffer(heard, np.uint8)
        if recording.channels == 2:
            table = self._table(recording.codec)
            frames = np.empty(2 * len(one), dtype="<i2")
            frames[0::2] = table[one]
            frames[1::2] = table[two]
        else:  # one look-up per sample: decode both, add, clip
            pairs = one.astype(np.uint16) << 8
            pairs |= two
            frames = self._mix(recording.codec)[pairs]
        try:
            stream.append(frames.tobytes())
            stream.fix_sizes()
            recording.cuts += 1
            if recording.cuts % SYNC_EVERY == 0:
                stream.sync()
        except OSError as exc:
            recording.fail(f"writing failed after {stream.seconds:.1f} s: {exc.strerror or exc}")
            return
        recording.written += len(party)

    def _close(self, recording: CallRecording) -> RecordingResult:
        stream = recording.stream
        if stream is None:
            return RecordingResult("failed", recording.failure or "never opened", 0, 0.0)
        try:
            stream.fix_sizes()
            stream.sync()
        except OSError as exc:
            recording.fail(f"closing failed: {exc.strerror or exc}")
        finally:
            stream.close()
            recording.stream = None
        status: RecordingStatus = "complete" if recording.state == "recording" else "failed"
        recording.state = status
        return RecordingResult(
            status, recording.failure, HEADER_BYTES + stream.data_bytes, stream.seconds
        )


def _settle(future: asyncio.Future[RecordingResult], result: RecordingResult) -> None:
    if not future.done():
        future.set_result(result)
