"""validate() finds what would break a call; graph() draws where calls can go."""

from __future__ import annotations

import json

from openivr.engine import AppConfig, StaticConfig
from openivr.engine.graph import graph
from openivr.engine.validate import validate

from .accounts import action, build, call_user, connect, play


def codes(config: StaticConfig, app_id: str = "VAmain") -> set[tuple[str, str]]:
    return {(p.code, p.field) for p in validate(config, app_id)}


def test_a_sound_menu_has_no_problems() -> None:
    config = build({"menu": {"digit_1": call_user("7"), "digit_2": connect("VAvm")}})
    assert validate(config, "VAmain") == []


def test_dangling_references_and_unreachable_users() -> None:
    config = build(
        {
            "menu": {
                "digit_1": call_user("42"),
                "digit_2": call_user("8"),
                "digit_3": connect("VAgone"),
                "digit_4": play("P404"),
                "digit_5": play("P2"),
                "digit_6": call_user("70"),  # another account's user
                "digit_7": action("call", "phnum", "12345"),
                "digit_8": action("call", "sip", "desk"),
                "digit_9": connect("VAsys"),
            }
        }
    )
    assert codes(config) == {
        ("user_not_found", "menu.digit_1"),
        ("user_unreachable", "menu.digit_2"),
        ("app_not_found", "menu.digit_3"),
        ("prompt_not_found", "menu.digit_4"),
        ("prompt_no_audio", "menu.digit_5"),
        ("user_not_found", "menu.digit_6"),
        ("bad_number", "menu.digit_7"),
        ("bad_sip_uri", "menu.digit_8"),
        ("connect_to_sysprompt", "menu.digit_9"),
    }
    severities = {p.code: p.severity for p in validate(config, "VAmain")}
    assert severities["prompt_no_audio"] == "warning"
    # Phones register and unregister: unreachable now is a warning, not an error.
    assert severities["user_unreachable"] == "warning"


def test_a_menu_with_no_usable_digit() -> None:
    config = build({"menu": {"digit_1": call_user("42"), "timeout": connect("VAvm")}})
    assert ("menu_no_usable_digit", "menu") in codes(config)
    with_extensions = build({"menu": {}, "get_extension": "yes"})
    assert ("menu_no_usable_digit", "menu") not in codes(with_extensions)


def test_announcement_loops_without_a_menu_between() -> None:
    config = build(
        {"play_menu": "no", "final_action": connect("VAann2")},
        apps=[
            {
                "app_id": "VAann2",
                "app_type": "ivr",
                "play_menu": "no",
                "final_action": connect("VAmain"),
            }
        ],
    )
    problems = validate(config, "VAmain")
    (cycle,) = [p for p in problems if p.code == "connect_cycle"]
    assert "VAmain → VAann2 → VAmain" in cycle.detail
    # With a menu in the chain the caller has a way out: no loop.
    through_menu = build(
        {"play_menu": "no", "final_action": connect("VAmenu2")},
        apps=[{"app_id": "VAmenu2", "app_type": "ivr", "menu": {"digit_1": connect("VAmain")}}],
    )
    assert "connect_cycle" not in {p.code for p in validate(through_menu, "VAmain")}


def test_full_mailbox_missing_app_and_missing_sysprompt() -> None:
    config = build(apps=[{"app_id": "VAbox", "app_type": "mailbox", "max_messages": 1}])
    full = StaticConfig(config.apps.values(), message_counts={"VAbox": 1})
    assert ("mailbox_full", "max_messages") in codes(full, "VAbox")
    assert codes(config, "VAnope") == {("app_not_found", "app_id")}
    lonely = StaticConfig([AppConfig("VAx", "5", "mailbox")])
    assert ("no_sysprompt_app", "account") in codes(lonely, "VAx")


def test_graph_follows_every_reachable_app_once() -> None:
    config = build(
        {
            "menu": {
                "digit_1": call_user("7"),
                "digit_2": connect("VAsales"),
                "digit_3": play("P1"),
                "timeout": connect("VAvm"),
            },
            "get_extension": "yes",
        },
        apps=[
            {
                "app_id": "VAsales",
                "app_type": "ivr",
                "name": "Sales",
                "play_menu": "no",
                "final_action": connect("VAmain"),
            }
        ],
    )
    g = graph(config, "VAmain")
    kinds = {node.id: node.kind for node in g.nodes.values()}
    assert kinds["app:VAmain"] == "menu"
    assert kinds["app:VAsales"] == "announcement"
    assert kinds["app:VAvm"] == "mailbox"
    assert kinds["user:7"] == "user" and kinds["prompt:P1"] == "prompt"
    edges = {(e.source, e.target, e.label) for e in g.edges}
    assert ("app:VAmain", "app:VAsales", "2") in edges
    assert ("app:VAsales", "app:VAmain", "then") in edges
    assert ("prompt:P1", "app:VAmain", "then") in edges
    assert ("app:VAmain", "app:VAvm", "timeout") in edges
    assert ("app:VAmain", "extensions", "extension") in edges
    assert len(g.edges) == len(edges)  # the loop back to VAmain is not walked twice

    mermaid = g.to_mermaid()
    assert mermaid.startswith("flowchart TD")
    assert '-->|"2"|' in mermaid
    dot = g.to_dot()
    assert dot.startswith("digraph flow {") and '"app:VAmain" -> "app:VAsales" [label="2"];' in dot
    assert json.loads(g.to_json())["root"] == "app:VAmain"


def test_graph_marks_missing_and_foreign_targets() -> None:
    config = build({"menu": {"digit_1": connect("VAother"), "digit_2": call_user("8")}})
    g = graph(config, "VAmain")
    assert g.nodes["missing:app:VAother"].kind == "missing"
    assert g.nodes["user:8"].kind == "user"  # reached on the phones they register
    assert "registered phones" in g.nodes["user:8"].label
    assert "app:VAother" not in g.nodes
    quoted = build({"name": 'The "best" menu', "menu": {"digit_1": call_user("7")}})
    assert '\\"best\\"' in graph(quoted, "VAmain").to_dot()
    assert "#quot;best#quot;" in graph(quoted, "VAmain").to_mermaid()
