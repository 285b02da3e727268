"""The call flow: a pure state machine (events in, commands out), its simulator and checks."""

from openivr.engine.call import CallFlow, CallFlowError
from openivr.engine.config import (
    AppConfig,
    CallConfig,
    ConfigError,
    MenuAction,
    PromptRef,
    StaticConfig,
    UserConfig,
)
from openivr.engine.log import LogEntry, Outcome
from openivr.engine.simulator import simulate
from openivr.engine.timeline import TimelineError, parse_timeline
from openivr.engine.transcript import Transcript

__all__ = [
    "AppConfig",
    "CallFlow",
    "CallConfig",
    "CallFlowError",
    "ConfigError",
    "LogEntry",
    "MenuAction",
    "Outcome",
    "PromptRef",
    "StaticConfig",
    "TimelineError",
    "Transcript",
    "UserConfig",
    "parse_timeline",
    "simulate",
]
