"""Identifiers in the shapes the compatible API uses."""

from __future__ import annotations

import secrets
import string

_ALNUM = string.ascii_lowercase + string.digits


def numeric_id(digits: int = 9) -> str:
    """A random id of digits with no leading zero (accounts and users)."""
    first = secrets.choice("123456789")
    return first + "".join(secrets.choice(string.digits) for _ in range(digits - 1))


def app_id() -> str:
    """A voice app id like VAdhy6q1oioz."""
    return "VA" + "".join(secrets.choice(_ALNUM) for _ in range(10))


def prompt_id() -> str:
    """A prompt id like PRk2m9x0a1bq."""
    return "PR" + "".join(secrets.choice(_ALNUM) for _ in range(10))


def team_id() -> str:
    """A team id like TMq3x8c0d2ke."""
    return "TM" + "".join(secrets.choice(_ALNUM) for _ in range(10))


def schedule_id() -> str:
    """A schedule id like SCp0w7d1n4ra."""
    return "SC" + "".join(secrets.choice(_ALNUM) for _ in range(10))


def callback_session_id() -> str:
    """A callback session id like CBm4k8s2x0qa (the call record's call_id too)."""
    return "CB" + "".join(secrets.choice(_ALNUM) for _ in range(10))


def call_recording_id() -> str:
    """A call recording id like CRx4m2k9q0ab."""
    return "CR" + "".join(secrets.choice(_ALNUM) for _ in range(10))
