"""Starting a media process (`processes.py` says what they are): its settings, its environment,
the fork, and the start of a node's first ones before the API process has imported itself.

A media process spends most of its start-up importing the application (~1.7 s of CPU, as the
API process does). `openivr serve` therefore launches the node's media processes first thing
(`prelaunch`, from a module that imports little), so they import on another core while the API
process imports and migrates the database; each then waits on its control socket for the
`start` line the API process sends once the database is ready. Media processes started again
after a crash are launched the same way and told to start at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, fields, replace

from openivr.settings import Settings

READY = "openivr-media-ready"
# What the API process writes on a media process's control socket when it may start.
START = b"start\n"
# The environment variable naming a media process's end of its control socket.
CONTROL_FD = "OPENIVR_MEDIA_CONTROL_FD"
# What the API process sends a media process for each stop step (drain, then end calls now);
# also what a media process gets when the API process dies (it drains, then stops).
STEP_SIGNAL = signal.SIGUSR1


def worker_settings(settings: Settings, index: int) -> Settings:
    """Settings of media process `index` of `settings.workers`: its SIP port and RTP slice."""
    count = max(1, settings.workers)
    low, high = (int(p) for p in settings.rtp_ports.split("-", 1))
    span = (high - low + 1) // count
    first = low + index * span
    last = high if index == count - 1 else first + span - 1
    if count == 1:
        return settings
    name = settings.node_name or os.uname().nodename
    return replace(
        settings,
        sip_port=settings.sip_port + index,
        sip_tls_port=settings.sip_tls_port + index if settings.sip_tls_port else 0,
        rtp_ports=f"{first}-{last}",
        node_name=f"{name}-{index + 1}",
        max_calls=max(1, settings.max_calls // count),
    )


def environment(settings: Settings) -> dict[str, str]:
    """OPENIVR_* variables that give a child process exactly these settings."""
    env = dict(os.environ)
    for f in fields(Settings):
        if f.name == "extra":
            continue
        value = getattr(settings, f.name)
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        env[f"OPENIVR_{f.name.upper()}"] = text
    return env


def in_child() -> None:
    """Run in a media process between fork and exec."""
    # Stop signals are the API process's to hear and pass on (STEP_SIGNAL): ignored from the
    # start (exec keeps an ignored signal ignored, and Python then installs no handler of its
    # own), so Ctrl-C during start-up does not kill the process either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # A media process must not outlive `openivr serve` (killed with SIGKILL, it cannot stop
    # its children): PR_SET_PDEATHSIG sends the step signal to the child when the thread that
    # forked it goes (it drains, and stops when it sees its control socket closed).
    if sys.platform == "linux":
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, STEP_SIGNAL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


@dataclass
class Launched:
    """A media process launched, waiting for START on its control socket (`control`, ours)."""

    settings: Settings
    proc: subprocess.Popen[bytes]
    control: socket.socket


def launch(settings: Settings) -> Launched:
    """Fork a media process with these (its worker's) settings; it imports, then waits."""
    ours, theirs = socket.socketpair()
    env = environment(settings)
    env[CONTROL_FD] = str(theirs.fileno())
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "openivr.media_main"],
            env=env,
            stdout=subprocess.PIPE,  # its ready line
            pass_fds=(theirs.fileno(),),
            preexec_fn=in_child,  # noqa: PLW1509 (one thread forks, the others do not meanwhile)
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return Launched(settings, proc, ours)


_launched: dict[int, Launched] = {}


def prelaunch(settings: Settings) -> None:
    """Launch the media processes `serve` with these settings will start (Linux, SIP on,
    `--workers` 1 or more), before this process imports the rest; settings that do not parse
    launch none (`check_settings` refuses them next)."""
    if sys.platform != "linux" or settings.workers <= 0 or settings.sip_port == 0:
        return
    try:
        workers = [worker_settings(settings, i) for i in range(settings.workers)]
    except ValueError:
        return
    for index, worker in enumerate(workers):
        _launched[index] = launch(worker)


def abandon() -> None:
    """Stop the media processes launched ahead (the node does not start after all)."""
    while _launched:
        _index, launched = _launched.popitem()
        launched.control.close()
        launched.proc.kill()
        launched.proc.wait()


def prelaunched(index: int, settings: Settings) -> Launched | None:
    """The media process launched ahead for worker `index` with exactly these settings, taken
    (None if there is none: started in a test, or settings changed meanwhile)."""
    launched = _launched.pop(index, None)
    if launched is not None and launched.settings != settings:
        launched.control.close()
        launched.proc.kill()
        return None
    return launched
