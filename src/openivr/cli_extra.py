"""Commands added by later layers (prompts build, simulate)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register(
    sub: Any,
    add_store_flags: Callable[[argparse.ArgumentParser], None],
    settings_of: Callable[[argparse.Namespace], Any],
) -> None:
    """Add the extra subcommands."""
    return None
