"""The flow of calls from one voice app through every app it can reach, as a graph."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from openivr.engine.config import AppConfig, CallConfig, MenuAction
from openivr.engine.routing import is_number, local_app, sip_address
from openivr.engine.vocabulary import DIGIT_SLOTS, SLOT_DIGITS

HANGUP_NODE = "hangup"

# Which side of an app's opening hours an edge is on: "" for an app that is always open.
Branch = Literal["", "open", "closed"]


@dataclass(frozen=True, slots=True)
class Node:
    """An app, a call target, a prompt, the hang-up, or a reference that does not resolve."""

    id: str
    kind: str  # menu | announcement | mailbox | sysprompt | user | number | sip | prompt |
    # team | extensions | hangup | missing
    label: str


@dataclass(frozen=True, slots=True)
class Edge:
    """What leads from one node to another: a key, timeout, invalid, final, then ...

    `branch` says, for an edge leaving an app with opening hours, whether callers take it while
    the line is open (its keys, its final action) or closed (its closed action).
    """

    source: str
    target: str
    label: str
    branch: Branch = ""


@dataclass(slots=True)
class Graph:
    """Nodes and edges of a call flow; `root` is the app the flow starts at."""

    root: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape."""
        return {
            "root": self.root,
            "nodes": [
                {"id": node.id, "kind": node.kind, "label": node.label}
                for node in self.nodes.values()
            ],
            "edges": [_edge_dict(edge) for edge in self.edges],
        }

    def to_json(self) -> str:
        """The graph as a JSON document."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_mermaid(self) -> str:
        """A Mermaid flowchart."""
        short = {node_id: f"n{index}" for index, node_id in enumerate(self.nodes)}
        lines = ["flowchart TD"]
        for node in self.nodes.values():
            open_, close = _MERMAID_SHAPES.get(node.kind, ("[", "]"))
            lines.append(f'  {short[node.id]}{open_}"{_mermaid_text(node.label)}"{close}')
        for edge in self.edges:
            arrow = "-.->" if edge.branch == "closed" else "-->"
            lines.append(
                f'  {short[edge.source]} {arrow}|"{_mermaid_text(edge.label)}"| '
                f"{short[edge.target]}"
            )
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        """A Graphviz digraph."""
        lines = ["digraph flow {", "  rankdir=TB;"]
        for node in self.nodes.values():
            shape = _DOT_SHAPES.get(node.kind, "box")
            lines.append(f"  {_dot_id(node.id)} [label={_dot_id(node.label)}, shape={shape}];")
        for edge in self.edges:
            style = ", style=dashed" if edge.branch == "closed" else ""
            lines.append(
                f"  {_dot_id(edge.source)} -> {_dot_id(edge.target)} "
                f"[label={_dot_id(edge.label)}{style}];"
            )
        lines.append("}")
        return "\n".join(lines) + "\n"


_MERMAID_SHAPES = {
    "menu": ("[", "]"),
    "announcement": ("[/", "/]"),
    "mailbox": ("[(", ")]"),
    "hangup": ("((", "))"),
    "missing": ("{{", "}}"),
    "prompt": (">", "]"),
    "team": ("[[", "]]"),
}
_DOT_SHAPES = {
    "team": "box3d",
    "menu": "box",
    "announcement": "parallelogram",
    "mailbox": "cylinder",
    "hangup": "doublecircle",
    "missing": "octagon",
    "prompt": "note",
}


def _edge_dict(edge: Edge) -> dict[str, str]:
    """An edge's JSON shape; `branch` only where the app has opening hours."""
    shown = {"source": edge.source, "target": edge.target, "label": edge.label}
    if edge.branch:
        shown["branch"] = edge.branch
    return shown


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", " ")


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def graph(config: CallConfig, app_id: str) -> Graph:
    """The flow from `app_id` through every app of its account that it can reach.

    An IVR with opening hours has a "closed" edge (branch "closed") to where callers go outside
    them; its other edges are its open branch (branch "open"). A team leads to its members and, labelled "no answer", to
    where callers go when nobody answers.
    """
    root = config.app(app_id)
    result = Graph(root=f"app:{app_id}")
    if root is None:
        result.nodes[result.root] = Node(result.root, "missing", f"missing app {app_id}")
        return result
    account = root.account_id
    queue: deque[AppConfig] = deque([root])
    seen = {root.app_id}

    def visit(other: AppConfig) -> None:
        if other.app_id not in seen:
            seen.add(other.app_id)
            queue.append(other)

    _add_app(result, root)
    while queue:
        app = queue.popleft()
        source = f"app:{app.app_id}"
        for label, action, branch in _outgoing(config, app):
            target = _target(config, result, account, app, action, visit)
            result.edges.append(Edge(source, target, label, branch))
            if target.startswith("app:") and action.action in ("connect", "call"):
                nxt = config.app(target[len("app:") :])
                if nxt is not None and nxt.app_id not in seen:
                    seen.add(nxt.app_id)
                    queue.append(nxt)
        if app.is_menu and app.get_extension:
            _add(result, "extensions", "extensions", "a user's extension")
            open_: Branch = "open" if app.open_hours is not None else ""
            result.edges.append(Edge(source, "extensions", "extension", open_))
    return result


def _outgoing(config: CallConfig, app: AppConfig) -> list[tuple[str, MenuAction, Branch]]:
    """The (label, action, branch) triples leaving an app."""
    if app.app_type != "ivr":
        return []
    out: list[tuple[str, MenuAction, Branch]] = []
    # With opening hours every way on from the app is the open branch, but the closed action.
    branch: Branch = "open" if app.open_hours is not None else ""
    if app.open_hours is not None:
        schedule = config.schedule(app.account_id, app.open_hours.schedule_id)
        name = schedule.name if schedule is not None else app.open_hours.schedule_id
        closed = app.open_hours.closed_action
        out.append(
            (f"closed ({name})", closed if closed.in_use else MenuAction("hangup"), "closed")
        )
    if not app.play_menu:
        final = app.final_action if app.final_action.in_use else MenuAction("hangup")
        out.append(("then", final, branch))
        if app.action("timeout").in_use:
            out.append(("if unavailable", app.action("timeout"), branch))
        return out
    for slot in (*DIGIT_SLOTS.values(), "timeout", "invalid"):
        action = app.action(slot)
        if action.in_use:
            out.append((SLOT_DIGITS.get(slot, slot), action, branch))
    return out


def _target(
    config: CallConfig,
    result: Graph,
    account: str,
    app: AppConfig,
    action: MenuAction,
    visit: Callable[[AppConfig], None],
) -> str:
    kind, to, ref = action.action, action.to, action.id
    if kind == "hangup":
        return _add(result, HANGUP_NODE, "hangup", "hang up")
    if kind == "repeat":
        return f"app:{app.app_id}"
    if kind == "connect":
        other = config.app(ref)
        if other is None or other.account_id != account or other.app_type == "sysprompt":
            return _add(result, f"missing:app:{ref}", "missing", f"missing app {ref}")
        _add_app(result, other)
        visit(other)
        return f"app:{other.app_id}"
    if kind == "call" and to == "csg":
        return _team(config, result, account, app, ref, visit)
    if kind == "call" and to == "user":
        return _user(config, result, account, ref)
    if kind == "call" and (to == "phnum" or (to == "other" and is_number(ref))):
        return _add(result, f"number:{ref}", "number", ref)
    if kind == "call" and to in ("sip", "other"):
        local = local_app(config, account, sip_address(ref))
        if local is not None and local.app_type != "sysprompt":
            _add_app(result, local)  # the app's own address: the call enters it here
            return f"app:{local.app_id}"
        return _add(result, f"sip:{ref}", "sip", ref)
    if kind == "play":
        prompt = config.prompt(account, ref)
        if prompt is None or prompt.account_id != account:
            return _add(result, f"missing:prompt:{ref}", "missing", f"missing prompt {ref}")
        node = _add(result, f"prompt:{ref}", "prompt", f"prompt {prompt.name}")
        back = (
            f"app:{app.app_id}" if app.is_menu else _add(result, HANGUP_NODE, "hangup", "hang up")
        )
        edge = Edge(node, back, "then")
        if edge not in result.edges:
            result.edges.append(edge)
        return node
    return _add(result, f"missing:action:{kind}", "missing", f"unknown action {kind!r}")


def _user(config: CallConfig, result: Graph, account: str, ref: str) -> str:
    user = config.user(account, ref)
    if user is None or user.account_id != account:
        return _add(result, f"missing:user:{ref}", "missing", f"missing user {ref}")
    where = user.sip_uri or user.phnum or "their registered phones"
    return _add(result, f"user:{ref}", "user", f"user {user.name or ref}\n{where}")


def _team(
    config: CallConfig,
    result: Graph,
    account: str,
    app: AppConfig,
    ref: str,
    visit: Callable[[AppConfig], None],
) -> str:
    """A team's node, its members in ringing order and where nobody answering leads."""
    team = config.team(account, ref)
    if team is None or team.account_id != account:
        return _add(result, f"missing:team:{ref}", "missing", f"missing team {ref}")
    node = f"team:{ref}"
    if node in result.nodes:
        return node
    _add(result, node, "team", f"team {team.name or ref} ({team.strategy})")
    for place, member in enumerate(team.members, 1):
        label = "rings" if team.strategy == "all" else f"#{place}"
        result.edges.append(Edge(node, _user(config, result, account, member), label))
    if team.no_answer.in_use:
        after = _target(config, result, account, app, team.no_answer, visit)
    elif app.is_menu:
        after = f"app:{app.app_id}"  # unavailable, then the menu again
    else:
        after = _add(result, HANGUP_NODE, "hangup", "hang up")
    result.edges.append(Edge(node, after, "no answer"))
    return node


def _add_app(result: Graph, app: AppConfig) -> None:
    kind = "announcement" if app.is_announcement else "menu" if app.is_menu else app.app_type
    _add(result, f"app:{app.app_id}", kind, f"{app.name or app.app_id} ({kind})")


def _add(result: Graph, node_id: str, kind: str, label: str) -> str:
    if node_id not in result.nodes:
        result.nodes[node_id] = Node(node_id, kind, label)
    return node_id
