"""The `openivr` command: serve, account create, prompts build, simulate."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from dataclasses import fields

from openivr.settings import SettingError, Settings, from_environment, with_values

# Flags of `openivr serve`, each an OPENIVR_<NAME> variable too.
_SERVE_FLAGS: dict[str, str] = {
    "data_dir": "SQLite file, audio and the signing secret (default ./openivr-data)",
    "database_url": "SQLAlchemy URL; default SQLite in the data dir; postgresql+asyncpg://... works the same",
    "http_host": "HTTP listen address (default 127.0.0.1)",
    "http_port": "HTTP port (default 8080)",
    "public_url": "URL clients reach this server at (for audio links)",
    "sip_domain": "SIP domain of the apps' sip_address",
    "node_name": "This node's name in call records (default: the host name)",
    "sip_host": "SIP listen address (default 127.0.0.1)",
    "sip_advertise": "Address callers reach this node at, for Contact and SDP (default: --sip-host, or on 0.0.0.0 the local address facing each caller)",
    "sip_port": "SIP port for UDP and TCP (default 5060; 0 turns SIP off)",
    "sip_tls_port": "SIP over TLS port, usually 5061 (default 0: no TLS listener); needs --tls-cert and --tls-key",
    "tls_cert": "PEM file of this node's certificate (chain) for SIP over TLS",
    "tls_key": "PEM file of the private key of --tls-cert (unencrypted)",
    "srtp": "SRTP for calls' audio (SDES, keys over TLS only): off, offer (default: when the far end takes it) or require (plain RTP offers get 488)",
    "tls_ca_file": "PEM file of the CA(s) that sign the certificates of TLS peers we call (default: the system's)",
    "rtp_ports": "RTP port range, one port per call and two per bridged call (default 20000-29999)",
    "max_calls": "Concurrent call limit; beyond it new calls get 503 (default 1000)",
    "drain_seconds": "On stop, seconds calls in progress may go on while new ones get 503 (default 30)",
    "transfer_timeout": "Seconds a transfer target may ring (default 30)",
    "transfer_mode": "bridge (default) or refer",
    "sip_trunk": "Outbound trunk for phone numbers, sip:host:port",
    "sip_trunk_user": "Digest user for the trunk",
    "sip_trunk_password": "Digest password for the trunk",
    "smtp_url": "smtp://user:pass@host:port or smtps://... for voicemail mail",
    "smtp_starttls": "Use STARTTLS on smtp:// (true/false)",
    "smtp_from": "Sender address of voicemail mail",
    "allow_private_webhooks": "Let mailbox webhooks reach loopback, link-local, private and this node's own addresses (true/false; default false)",
    "smtp_ca_file": "PEM file of the CA(s) that signed the SMTP server's certificate (default: the system's)",
    "secret": "Signing secret shared by all nodes (default: generated in the data dir)",
    "access_token_seconds": "Access token lifetime (default 86400)",
    "audio_url_seconds": "Lifetime of signed audio links (default 86400)",
    "workers": "Media processes beside the API's process, each running SIP and RTP on its own port from --sip-port up and a slice of --rtp-ports, so calls' audio never waits for the API (default 1 on Linux, 0 elsewhere); 0 runs everything in one process (less memory and start-up, for a node whose API is rarely busy while it carries calls)",
    "loop_debug": "Event-loop debug mode: log every callback that holds the loop over 10 ms, by name (true/false; costs CPU)",
    "auth_failures": "Wrong passwords (SIP or login) from one address or for one user within --auth-window before it is refused without a check (default 10)",
    "auth_window": "Seconds over which wrong passwords are counted (default 600)",
    "auth_ban_seconds": "How long the first ban lasts; each ban within a day of the last doubles (default 600)",
    "auth_ban_max_seconds": "The longest a ban lasts (default 86400)",
    "trusted_networks": "Comma-separated addresses/networks of balancers and trunks: never banned or rate-limited; their X-Forwarded-For / Via received name the client",
    "security_event_days": "Days security events are kept (default 30)",
    "sip_rate_limit": "New SIP requests (INVITE, REGISTER, OPTIONS, ...) per second from one address; more are dropped unanswered (default 20; trusted networks are exempt)",
    "metrics_token": "Bearer token that /metrics requires (default: /metrics answers this machine only)",
    "metrics_networks": "Comma-separated networks that may read /metrics without the token",
    "log_format": "text (default) or json: one JSON object per line with call ids, for log collectors",
    "access_log": "One INFO line per HTTP request: client, method, path, status, time (true/false; default true)",
    "recording_days": "Days call recordings are kept; older ones are deleted, files and rows (default 90)",
    "recording_dir": "Where call recordings are written (default <data-dir>/recordings; shared by all nodes like the data dir)",
    "recording_channels": "mono (default: both parties mixed in one channel) or stereo (the recorded party left, what they hear right)",
    "sip_rate_burst": "How many such requests one address may send at once before the rate applies (default 100)",
}


def _add_store_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help=_SERVE_FLAGS["data_dir"])
    p.add_argument("--database-url", help=_SERVE_FLAGS["database_url"])


def _settings(args: argparse.Namespace) -> Settings:
    raw = {f.name: getattr(args, f.name, None) for f in fields(Settings)}
    try:
        return with_values(from_environment(), {k: str(v) for k, v in raw.items() if v is not None})
    except SettingError as exc:
        raise SystemExit(f"openivr: {exc}") from None


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # The media processes import the application on another core while this one does.
    from openivr import mediastart

    mediastart.prelaunch(settings)

    import uvicorn

    from openivr import logs
    from openivr.server import NodeServer, build_asgi, check_settings

    try:
        check_settings(settings)
    except ValueError as exc:
        mediastart.abandon()
        raise SystemExit(f"openivr: {exc}") from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs.configure(settings.log_format, settings.node_name or socket.gethostname())
    node = build_asgi(settings)
    config = uvicorn.Config(
        node,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        access_log=False,
        lifespan="on",
        # uvicorn's own lines go through the handler above, in the same format.
        log_config=None,
    )
    server = NodeServer(config, node)
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C, re-raised by uvicorn once the node stopped cleanly
        pass
    return 0 if server.started else 3


async def _create_account(
    settings: Settings, email: str, password: str, name: str | None
) -> dict[str, str]:
    from openivr.store.accounts import create_account
    from openivr.store.db import open_database

    async with open_database(settings.effective_database_url) as (_engine, sessions):
        created = await create_account(sessions, email, password, name)
    return {"account_id": created.account_id, "user_id": created.user_id}


def _account_create(args: argparse.Namespace) -> int:
    from openivr.apps.validation import FieldError
    from openivr.store.accounts import EmailTaken

    settings = _settings(args)
    try:
        out = asyncio.run(_create_account(settings, args.email, args.password, args.name))
    except FieldError as exc:
        print(
            json.dumps({"error": "invalid_field", "detail": f"{exc.field}: {exc.detail}"}),
            file=sys.stderr,
        )
        return 2
    except EmailTaken as exc:
        print(
            json.dumps({"error": "duplicate", "detail": f"email: {exc} is already used"}),
            file=sys.stderr,
        )
        return 2
    print(json.dumps(out))
    return 0


def parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    top = argparse.ArgumentParser(prog="openivr", description="OpenIVR: self-hosted voice apps")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (and the SIP server)")
    for name, help_text in _SERVE_FLAGS.items():
        serve.add_argument(
            "--" + name.replace("_", "-"), dest=name, help=help_text + f" [OPENIVR_{name.upper()}]"
        )
    serve.set_defaults(func=_serve)

    account = sub.add_parser("account", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    create = account.add_parser("create", help="create an account with its admin user")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--name")
    _add_store_flags(create)
    create.set_defaults(func=_account_create)

    from openivr import cli_extra

    cli_extra.register(sub, _add_store_flags, _settings)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `openivr` command."""
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
