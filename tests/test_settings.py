"""Settings: flags and OPENIVR_* variables, and the links the API hands out."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from openivr.settings import SettingError, Settings, from_environment, with_values
from tests.node_process import clean_env, openivr_command


def test_environment_and_flags_share_one_conversion() -> None:
    settings = from_environment(env={"OPENIVR_HTTP_PORT": "9090", "OPENIVR_SIP_ADVERTISE": "x"})
    assert settings.http_port == 9090 and settings.sip_advertise == "x"
    assert with_values(settings, {"drain_seconds": "2.5"}).drain_seconds == 2.5
    with pytest.raises(SettingError, match="http_port"):
        with_values(settings, {"http_port": "abc"})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"http_host": "127.0.0.1", "http_port": "8080"}, "http://127.0.0.1:8080"),
        # "0.0.0.0" in a link reaches nobody: the host name is the guess.
        ({"http_host": "0.0.0.0", "http_port": "8080"}, f"http://{socket.gethostname()}:8080"),
        ({"http_host": "::1", "http_port": "8080"}, "http://[::1]:8080"),
        (
            {"http_host": "0.0.0.0", "public_url": "https://ivr.example.com/"},
            "https://ivr.example.com",
        ),
    ],
)
def test_links_use_an_address_clients_can_reach(values: dict[str, str], expected: str) -> None:
    assert with_values(Settings(), values).base_url == expected


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (
            ["--smtp-url", "smtps://127.0.0.1:465", "--smtp-ca-file", "/nonexistent.pem"],
            "smtp_ca_file",
        ),
        (["--rtp-ports", "5-2"], "--rtp-ports"),
        (["--recording-channels", "quad"], "--recording-channels"),
        (["--recording-days", "0"], "--recording-days"),
        (["--recording-days", "ninety"], "recording_days"),
        (["--sip-trunk", "tel:123"], "trunk"),
        (
            ["--sip-tls-port", "5061", "--tls-cert", "/no.pem", "--tls-key", "/no.pem"],
            "--tls-cert",
        ),
    ],
)
def test_serve_refuses_a_bad_setting_in_one_line_before_starting(
    tmp_path: Path, flags: list[str], named: str
) -> None:
    done = subprocess.run(
        [*openivr_command(), "serve", "--data-dir", str(tmp_path), "--http-port", "1", *flags],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # no traceback
    assert done.stderr.startswith(f"openivr: {named}")
