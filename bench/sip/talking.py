"""Talking callers for the SIP benches: what they stream, how their key arrives, what they hear.

Real phones send RTP the whole call (50 packets a second) and press keys inside that stream.
The callers here are SIPp streaming with its `rtp_stream` action: a few threads (RTP_THREADTASKS
calls each) send every call's packets, so 1,000 callers fit in a fraction of one core (SIPp's
`play_pcap_audio` instead starts a thread per call). Their audio is built per run from Debian's
sip-tester files:

- speech: the PCMA payloads of `g711a.pcap` (7.1 s of speech), sent as 20 ms PCMA packets
  (what phones send) from the answer on, looped for the whole call;
- `rfc4733`: at the key time the speech pauses while SIPp plays the telephone-event packets of
  `dtmf_2833_1.pcap` (key 1: 140 ms, start packet and three end packets; a thread only for
  those), then talks again if the call goes on;
- `inband`: at the key time the stream goes on with the DTMF tone of 1 (120 ms), then speech;
- `info`: speech only, the key goes as SIP INFO.

Every caller's RTP comes from SIPp's one media port (`-mp`), as the events do. What callers
receive is captured with tcpdump on the loopback interface (kernel timestamps), so the arrival
intervals of our RTP are measured outside the node's process."""

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


def speech_alaw() -> bytes:
    """The speech of Debian's g711a.pcap: its PCMA payloads, one after the other (7.1 s)."""
    return b"".join(rtp[12:] for _t, rtp in read_pcap(SPEECH_PCAP) if rtp[1] & 0x7F == 8)


def write_caller_audio(directory: Path, mode: str) -> dict[str, Path]:
    """The raw PCMA files a run's callers stream (SIPp's `rtp_stream` plays headerless audio):
    `speech`, looped all call; in-band, `key`: the tone of 1 (120 ms) and the speech after it."""
    speech = speech_alaw()
    files = {"speech": directory / "speech.alaw"}
    files["speech"].write_bytes(speech)
    if mode == "inband":
        files["key"] = directory / "key1_inband.alaw"
        files["key"].write_bytes(g711.encode(tones.dtmf("1", 120.0, -10.0), "PCMA") + speech)
    return files


# The key, after the hold. RFC 4733: the stream pauses while SIPp plays the events (a thread of
# its own for the 140 ms); it talks again if no BYE came by then.
RFC4733_KEY = f"""
  <nop><action><exec rtp_stream="pause"/><exec play_pcap_audio="{DTMF_PCAP}"/></action></nop>
  <recv request="BYE" timeout="400" ontimeout="talk" next="bye"/>
  <label id="talk"/>
  <nop><action><exec rtp_stream="resume"/></action></nop>
"""
# In-band: the stream goes on with the tone of 1 and then the speech, once.
INBAND_KEY = """
  <nop><action><exec rtp_stream="[key_audio],1,8"/></action></nop>
"""
INFO_KEY = """
  <send retrans="500">
    <![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 INFO
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/dtmf
      Content-Length: [len]

      1
    ]]>
  </send>
  <recv response="200"/>
"""
KEYS = {"rfc4733": RFC4733_KEY, "info": INFO_KEY, "inband": INBAND_KEY}
# Streams per rtp_stream thread: 1,000 callers in 10 threads (SIPp's default is 20 a thread).
RTP_THREADTASKS = 100


def caller_scenario(directory: Path, mode: str, hold: float) -> Path:
    """Write the SIPp scenario of a talking caller pressing 1 after `hold` s (and its audio)."""
    audio = write_caller_audio(directory, mode)
    hold_ms = int(hold * 1000)
    text = (Path(__file__).parent / "talking_caller.xml").read_text()
    text = text.replace("[key]", KEYS[mode])
    text = text.replace("[speech]", str(audio["speech"]))
    text = text.replace("[key_audio]", str(audio.get("key", "")))
    text = text.replace("[hold_ms]", str(hold_ms))
    text = text.replace("[bye_timeout_ms]", str(hold_ms + 15_000))
    inband = mode == "inband"
    text = text.replace("[formats]", "8" if inband else "8 101")
    events = "      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-15\n"
    text = text.replace("[event_lines]\n", "" if inband else events)
    path = directory / "caller.xml"
    path.write_text(text)
    return path


def sipp_command(
    target: str,
    xml: Path,
    service: str,
    calls: int,
    limit: int,
    rate: float,
    ports: tuple[int, int],
) -> list[str]:
    """SIPp placing `calls` (at most `limit` at once, `rate` a second) from 127.0.0.1; `ports`
    are its SIP and its media port (every caller's RTP comes from the media port)."""
    return [
        shutil.which("sipp") or "sipp",
        target,
        "-sf", str(xml),
        "-s", service,
        "-m", str(calls),
        "-l", str(limit),
        "-r", str(rate),
        "-i", "127.0.0.1",
        "-p", str(ports[0]),
        "-mi", "127.0.0.1",
        "-mp", str(ports[1]),
        "-rtp_threadtasks", str(RTP_THREADTASKS),
        "-nostdin",
        "-timeout", "900s",
    ]  # fmt: skip


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
