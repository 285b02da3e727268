"""Kamailio (Debian's package) as the SIP load balancer in front of several nodes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, require_binary

# Stateful proxy: record-routes calls; spreads new ones (and REGISTERs, with a Path naming where
# the phone really is) round-robin over the dispatcher set, the next node when one answers 503;
# relays the nodes' own new calls along their Route; routes in-dialog requests by their Route
# headers only (as a production balancer does; a BYE without the route set gets 404).
_CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
disable_tcp=yes
disable_sctp=yes
listen=udp:127.0.0.1:{port}
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "dispatcher.so"
loadmodule "path.so"
modparam("path", "use_received", 1)
modparam("dispatcher", "list_file", "{dispatcher_list}")
modparam("dispatcher", "flags", 2)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    t_check_trans();
    if (is_method("INVITE")) {{ record_route(); }}
    # A node calling a phone that registered through us: along the Path the node got with the
    # REGISTER (to the address the phone really sent from), else by the Request-URI.
    if (ds_is_from_list("1")) {{ loose_route(); t_relay(); exit; }}
    if (is_method("REGISTER")) {{ add_path_received(); }}
    if (!ds_select_dst("1", "4")) {{ sl_send_reply("503", "No node"); exit; }}
    t_on_failure("NEXT_NODE");
    t_relay();
}}

# A node that is stopping answers 503: try the next one.
failure_route[NEXT_NODE] {{
    if (t_is_canceled()) {{ exit; }}
    if (t_check_status("503") && ds_next_dst()) {{
        t_on_failure("NEXT_NODE");
        t_relay();
    }}
}}
"""


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


@contextlib.contextmanager
def kamailio(workdir: Path, node_ports: list[int]) -> Iterator[int]:
    """Run Kamailio balancing over the nodes' SIP ports; yields the port callers dial."""
    # Debian installs it in /usr/sbin, which a non-root PATH may lack.
    binary = shutil.which("kamailio", path="/usr/sbin:/usr/local/sbin") or require_binary(
        "kamailio"
    )
    port = free_port(socket.SOCK_DGRAM)
    workdir.mkdir(parents=True, exist_ok=True)
    dispatcher_list = workdir / "dispatcher.list"
    dispatcher_list.write_text("".join(f"1 sip:127.0.0.1:{p}\n" for p in node_ports))
    config = workdir / "kamailio.cfg"
    config.write_text(_CONFIG.format(port=port, dispatcher_list=dispatcher_list))
    log = (workdir / "kamailio.log").open("w")
    proc = subprocess.Popen(
        [binary, "-f", str(config), "-DD", "-E", "-Y", str(workdir), "-w", str(workdir)]
        + ["-P", str(workdir / "kamailio.pid"), "-m", "32", "-M", "4"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 15
        while not _udp_port_taken(port):
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"kamailio did not start:\n{(workdir / 'kamailio.log').read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
