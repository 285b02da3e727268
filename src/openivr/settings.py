"""Server settings: every one has a flag, an OPENIVR_* environment variable and a default."""

from __future__ import annotations

import os
import secrets
import socket
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """What one `openivr serve` node needs to know."""

    data_dir: Path = Path("./openivr-data")
    database_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str = ""
    sip_domain: str = "openivr.local"
    sip_advertise: str = ""
    node_name: str = ""
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    sip_tls_port: int = 0
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca_file: str = ""
    srtp: str = "offer"
    rtp_ports: str = "20000-29999"
    max_calls: int = 1000
    token_audience: str = "api.sonetel.com"
    access_token_seconds: int = 24 * 3600
    refresh_token_seconds: int = 30 * 24 * 3600
    audio_url_seconds: int = 24 * 3600
    client_ids: tuple[str, ...] = ("sonetel-api", "sonetel-web")
    secret: str = ""
    transfer_timeout: float = 30.0
    drain_seconds: float = 30.0
    transfer_mode: str = "bridge"
    sip_trunk: str = ""
    sip_trunk_user: str = ""
    sip_trunk_password: str = ""
    smtp_url: str = ""
    smtp_starttls: bool = False
    smtp_from: str = "openivr@localhost"
    smtp_ca_file: str = ""
    # Mailbox webhooks to loopback, link-local, private or this node's own addresses (a shared
    # node must not be made to call itself or the network behind it).
    allow_private_webhooks: bool = False
    loop_debug: bool = False
    auth_failures: int = 10
    auth_window: float = 600.0
    auth_ban_seconds: float = 600.0
    auth_ban_max_seconds: float = 86400.0
    trusted_networks: tuple[str, ...] = ()
    security_event_days: float = 30.0
    sip_rate_limit: float = 20.0
    sip_rate_burst: int = 100
    metrics_token: str = ""
    metrics_networks: tuple[str, ...] = ()
    log_format: str = "text"
    access_log: bool = True
    # Media processes beside the API's process (processes.py): one on Linux, where the API
    # process can yield the CPU to it (SCHED_IDLE) and it dies with its parent; elsewhere 0,
    # everything in one process.
    workers: int = 1 if sys.platform == "linux" else 0
    # Call recording: how long recordings are kept, where their files live (default
    # <data-dir>/recordings) and whether a file is mono (both parties mixed) or stereo.
    recording_days: float = 90.0
    recording_dir: str = ""
    recording_channels: str = "mono"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'openivr.db').resolve()}"

    @property
    def audio_dir(self) -> Path:
        """Where prompt audio, renderings and voicemail live (shared by all nodes)."""
        return self.data_dir / "audio"

    @property
    def recordings_dir(self) -> Path:
        """Where call recordings live (shared by all nodes, like the audio dir)."""
        return Path(self.recording_dir) if self.recording_dir else self.data_dir / "recordings"

    @property
    def base_url(self) -> str:
        """The URL clients reach this server at, used to build audio links."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.http_host
        if host in ("0.0.0.0", "::", ""):
            # Listening everywhere: "0.0.0.0" in a link reaches nobody; the host name is the best
            # guess without --public-url.
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.http_port}"

    def signing_secret(self) -> bytes:
        """The secret that signs tokens and audio URLs: configured, or generated once in the data dir."""
        if self.secret:
            return self.secret.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(secrets.token_hex(32))
            os.chmod(tmp, 0o600)
            # link() fails if another process won the race; then both use the winner's secret.
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()


class SettingError(ValueError):
    """A setting whose text cannot be read as the type it needs; names the setting."""


def _convert(name: str, value: str, template: Any) -> Any:
    try:
        if isinstance(template, bool):
            return value.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(template, int):
            return int(value)
        if isinstance(template, float):
            return float(value)
    except ValueError:
        kind = "a whole number" if isinstance(template, int) else "a number"
        raise SettingError(f"{name}: must be {kind}, got {value!r}") from None
    if isinstance(template, Path):
        return Path(value)
    if isinstance(template, tuple):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def with_values(settings: Settings, raw: dict[str, str]) -> Settings:
    """Settings with textual values (flags, environment) applied by field name."""
    changes = {
        name: _convert(name, value, getattr(settings, name))
        for name, value in raw.items()
        if name != "extra" and value is not None and value != ""
    }
    return replace(settings, **changes)


def from_environment(base: Settings | None = None, env: dict[str, str] | None = None) -> Settings:
    """Settings with OPENIVR_<NAME> environment variables applied over `base`."""
    source = os.environ if env is None else env
    raw = {f.name: source.get(f"OPENIVR_{f.name.upper()}", "") for f in fields(Settings)}
    return with_values(base or Settings(), raw)
