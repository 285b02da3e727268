"""baresip as a phone for the TLS and SRTP tests: its home folder, keys pressed, certificates."""

from __future__ import annotations

import asyncio
import socket
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trustme

from openivr.audio import tones
from tests.conftest import free_port, free_port_block

from .conftest import need_binary

MODULES = "/usr/lib/baresip/modules"


@dataclass(frozen=True)
class Certificates:
    """A private CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files."""

    ca: Path
    chain: Path  # the certificate chain and its key in one file (what baresip takes)
    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path, authority: trustme.CA | None = None) -> Certificates:
        folder.mkdir(parents=True, exist_ok=True)
        authority = authority or trustme.CA()
        issued = authority.issue_cert("127.0.0.1", "localhost")
        paths = cls(
            folder / "ca.pem", folder / "chain.pem", folder / "cert.pem", folder / "key.pem"
        )
        authority.cert_pem.write_to_path(str(paths.ca))
        issued.private_key_and_cert_chain_pem.write_to_path(str(paths.chain))
        issued.cert_chain_pems[0].write_to_path(str(paths.cert))
        issued.private_key_pem.write_to_path(str(paths.key))
        return paths


def free_pair() -> int:
    """A port P with P and P+1 free on UDP and TCP (baresip listens for TLS on P+1), picked
    below the kernel's ephemeral range like every test port (see tests/conftest.py)."""
    for _ in range(100):
        port = free_port()
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
            ):
                tcp.bind(("127.0.0.1", port + 1))
                udp.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two free ports in a row")


@dataclass
class Softphone:
    """One baresip process with its home folder; keys are pressed through its UDP console."""

    home: Path
    console_port: int
    proc: asyncio.subprocess.Process | None = None
    output: str = ""

    @classmethod
    def prepare(
        cls,
        home: Path,
        account: str,
        *,
        voice_hz: float = 600.0,
        voice_ms: float = 20000.0,
        voice: np.ndarray | None = None,
        listen_port: int = 0,
        certificate: Path | None = None,
        ca: Path | None = None,
        record: bool = False,
    ) -> Softphone:
        """Write the phone's config: it speaks `voice` (else `voice_hz` for `voice_ms`, then
        silence), uses the account line `account`, and (with `record`) writes what it hears to
        dump-*-dec.wav."""
        home.mkdir(parents=True, exist_ok=True)
        if voice is None:
            voice = np.concatenate([tones.beep(voice_hz, voice_ms, -12.0), tones.silence(12000)])
        with wave.open(str(home / "voice.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            out.writeframes(voice.astype("<i2").tobytes())
        console = free_port()
        # Its RTP ports too, else baresip draws them from 10000-20000, where test ports are.
        rtp = free_port_block(4)
        (home / "accounts").write_text(account + "\n")
        lines = [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{listen_port}",
            f"module_path {MODULES}",
            "module g711.so",
            "module aufile.so",
            "module srtp.so",
            "module cons.so",
            f"cons_listen 127.0.0.1:{console}",
            f"rtp_ports {rtp}-{rtp + 3}",
            "module_app account.so",
            "module_app menu.so",
            f"audio_source aufile,{home / 'voice.wav'}",
            "audio_alert aufile,/dev/null",
        ]
        if record:
            lines += ["module sndfile.so", f"snd_path {home}"]
        else:
            lines.append("audio_player aufile,/dev/null")
        if certificate is not None:
            lines.append(f"sip_certificate {certificate}")
        if ca is not None:
            lines.append(f"sip_cafile {ca}")
        (home / "config").write_text("\n".join(lines) + "\n")
        return cls(home, console)

    async def start(self, *commands: str, seconds: int = 30) -> None:
        """Run baresip (quitting after `seconds`), executing `commands` (e.g. /dial ...)."""
        baresip = need_binary("baresip")
        args = ["-4", "-n", "127.0.0.1", "-f", str(self.home), "-t", str(seconds)]
        for command in commands:
            args += ["-e", command]
        self.proc = await asyncio.create_subprocess_exec(
            baresip,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self.home,
        )
        await asyncio.sleep(0.3)  # let it bind its ports before anyone calls it

    async def wait_for_output(self, text: str, timeout: float = 15.0) -> None:
        """Wait until baresip has printed `text` (e.g. 'Call established')."""
        assert self.proc is not None and self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in self.output:
            left = deadline - loop.time()
            try:
                chunk = await asyncio.wait_for(self.proc.stdout.read(4096), max(left, 0.01))
            except TimeoutError:
                chunk = b""
            if not chunk and (loop.time() >= deadline or self.proc.stdout.at_eof()):
                raise AssertionError(f"baresip never said {text!r}:\n{self.output[-3000:]}")
            self.output += chunk.decode(errors="replace")

    def press(self, keys: str) -> None:
        """Press keys on the phone during a call (sent as RFC 4733 events)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for key in keys:
                sock.sendto(key.encode(), ("127.0.0.1", self.console_port))

    async def stop(self) -> str:
        """Stop the phone; what it printed."""
        if self.proc is not None:
            if self.proc.returncode is None:
                self.proc.terminate()
            out, _ = await self.proc.communicate()
            self.output += out.decode(errors="replace")
        return self.output

    def heard(self) -> tuple[np.ndarray, int]:
        """What the phone decoded from our RTP (needs `record`): samples and rate."""
        [dump] = self.home.glob("dump-*-dec.wav")
        with wave.open(str(dump)) as heard:
            rate = heard.getframerate()
            return np.frombuffer(heard.readframes(heard.getnframes()), dtype="<i2"), rate
