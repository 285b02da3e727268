"""Talking callers for the SIP benches: what they stream, how their key arrives, what they hear.

Real phones send RTP the whole call (50 packets a second) and press keys inside that stream.
The callers here are SIPp playing a pcap built per run from Debian's sip-tester files:

- speech: the audio of `g711a.pcap` (7 s of PCMA speech in 30 ms packets), decoded and sent
  again as 20 ms PCMA packets (what phones send), looped for the whole call;
- `rfc4733`: at the key time the speech pauses for the telephone-event packets of
  `dtmf_2833_1.pcap` (key 1: 140 ms, start packet and three end packets), as a phone sends them;
- `inband`: at the key time 120 ms of the speech are replaced by the DTMF tone of 1;
- `info`: speech only, the key goes as SIP INFO.

What callers receive is captured with tcpdump on the loopback interface (kernel timestamps),
so the arrival intervals of our RTP are measured outside the node's process.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import numpy as np

from openivr.audio import g711, tones

SIPP_SHARE = Path("/usr/share/sip-tester")
SPEECH_PCAP = SIPP_SHARE / "g711a.pcap"
DTMF_PCAP = SIPP_SHARE / "dtmf_2833_1.pcap"
KEY_MODES = ("rfc4733", "info", "inband")
# Callers, tcpdump and the API mix on the second core; the node (taskset -c 0) has the first.
CORE1 = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread's) of a running process; NaN once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_threads(pid: int) -> int:
    """How many threads a running process has (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[17])
    except OSError:
        return 0


def wait_cpu(proc: subprocess.Popen[bytes]) -> float:
    """Wait for a child to end; the CPU seconds it used in all (its rusage, threads included)."""
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return float(usage.ru_utime + usage.ru_stime)


def read_pcap(path: Path) -> list[tuple[float, bytes]]:
    """(time, RTP bytes) of every UDP packet of an Ethernet pcap."""
    data = path.read_bytes()
    offset, packets = 24, []
    while offset + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", data, offset)
        offset += 16
        frame = data[offset : offset + incl]
        offset += incl
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        packets.append((sec + usec / 1e6, bytes(ip[ihl + 8 :])))
    return packets


def speech_pcm() -> np.ndarray:
    """The speech of Debian's g711a.pcap as 8 kHz int16."""
    payloads = [rtp[12:] for _t, rtp in read_pcap(SPEECH_PCAP) if rtp[1] & 0x7F == 8]
    return g711.decode(b"".join(payloads), "PCMA")


def _write(path: Path, packets: list[tuple[float, bytes]]) -> None:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, (at, rtp) in enumerate(packets):
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
            bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
        )  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        out += struct.pack("<IIII", int(at), round((at % 1) * 1e6), len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))


def write_caller_pcap(path: Path, seconds: float, key_at: float | None, mode: str) -> None:
    """A caller's RTP for `seconds`: speech in 20 ms PCMA packets, the key 1 at `key_at`."""
    speech = speech_pcm()
    frames_needed = int(seconds / 0.020)
    pcm = np.resize(speech, frames_needed * 160).astype(np.int16)
    key_frame = None if key_at is None else int(key_at / 0.020)
    if mode == "inband" and key_frame is not None:
        tone = tones.dtmf("1", 120.0, -10.0)
        start = key_frame * 160
        pcm[start : start + tone.size] = tone[: max(0, min(tone.size, pcm.size - start))]
    frames = g711.encode_frames(pcm, "PCMA")
    events = []
    if mode == "rfc4733":
        events = [rtp for _t, rtp in read_pcap(DTMF_PCAP) if rtp[1] & 0x7F == 101]
    packets: list[tuple[float, bytes]] = []
    seq, ssrc, n, resumed = 1000, 0x5EED, 0, True
    while n < len(frames):
        if n == key_frame and events:
            # Every packet of one event carries the RTP timestamp of its start; a phone sends
            # no audio meanwhile. The end packets repeat (same sequence number in the pcap).
            last_seq = None
            for rtp in events:
                if struct.unpack_from("!H", rtp, 2)[0] == last_seq:
                    at = packets[-1][0]  # a repeat goes right after its original
                else:
                    at = n * 0.020
                    n += 1
                    seq += 1
                last_seq = struct.unpack_from("!H", rtp, 2)[0]
                header = struct.pack(
                    "!BBHII", 0x80, 101 | (rtp[1] & 0x80), seq, key_frame * 160, ssrc
                )
                packets.append((at, header + rtp[12:]))
            resumed = True
            continue
        seq += 1
        marker, resumed = (0x80 if resumed else 0), False
        header = struct.pack("!BBHII", 0x80, 8 | marker, seq & 0xFFFF, n * 160, ssrc)
        packets.append((n * 0.020, header + frames[n]))
        n += 1
    _write(path, packets)


class Capture:
    """tcpdump of our RTP towards the callers (kernel timestamps), on the callers' core."""

    def __init__(
        self, path: Path, media_ports: int | list[int], rtp_ports: tuple[int, int]
    ) -> None:
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None
        tcpdump = shutil.which("tcpdump")
        if tcpdump is None:
            return
        ports = [media_ports] if isinstance(media_ports, int) else media_ports
        to = " or ".join(f"dst port {port}" for port in ports)
        self.proc = subprocess.Popen(
            [
                *CORE1,
                tcpdump,
                "-i",
                "lo",
                "-s",
                "64",
                "-B",
                "65536",
                "-n",
                "-w",
                str(path),
                f"udp and ({to}) and src portrange {rtp_ports[0]}-{rtp_ports[1]}",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> dict[str, float]:
        """Stop capturing; the arrival intervals' p50/p99/max (ms), share > 25 ms, drops."""
        if self.proc is None:
            return {}
        self.proc.send_signal(signal.SIGINT)
        _out, err = self.proc.communicate(timeout=60)
        dropped = 0
        for line in err.decode(errors="replace").splitlines():
            if "dropped by kernel" in line:
                dropped = int(line.split()[0])
        intervals = arrival_intervals(self.path)
        self.path.unlink(missing_ok=True)
        if intervals.size == 0:
            return {"callers_packets": 0.0}
        ms = intervals * 1000
        return {
            "callers_intervals": float(ms.size),
            "callers_p50_ms": float(np.percentile(ms, 50)),
            "callers_p99_ms": float(np.percentile(ms, 99)),
            "callers_max_ms": float(ms.max()),
            "callers_over_25ms_pct": float(100 * np.mean(ms > 25)),
            "capture_dropped": float(dropped),
        }


def arrival_intervals(path: Path) -> np.ndarray:
    """Per-stream (our source port) intervals between packets, in seconds, from a pcap."""
    data = path.read_bytes()
    if len(data) <= 24:
        return np.zeros(0)
    nano = struct.unpack_from("<I", data)[0] == 0xA1B23C4D
    offset, times, ports = 24, [], []
    while offset + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + incl]
        offset += 16 + incl
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if len(ip) < ihl + 2:
            continue
        times.append(sec + frac * (1e-9 if nano else 1e-6))
        ports.append(struct.unpack_from("!H", ip, ihl)[0])
    t, p = np.array(times), np.array(ports)
    order = np.lexsort((t, p))
    t, p = t[order], p[order]
    gaps = np.diff(t)
    same = (np.diff(p) == 0) & (gaps < 1.0)  # a port's next call starts a new stream
    return gaps[same]
