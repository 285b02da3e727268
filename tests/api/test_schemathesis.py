"""Property-based tests of the whole API from its own OpenAPI document (schemathesis).

Every operation gets generated requests with real ids of a user, an app, a prompt, a phone
number, a team and a schedule (made afresh for each pass, so fuzzed bodies and queries reach
stored data however earlier passes changed or deleted them), and in the valid-request pass also
with only the account id real (other ids generated, so mostly unknown objects). DELETEs run
last. Generated text may hold U+0000 and integers are unbounded, and the passes whose values
reach storage run on SQLite and on PostgreSQL (which refuses NUL and integers past 64 bits
where SQLite takes them). Each pass is a test of its own, so parallel workers share them out.
"""

from __future__ import annotations

import copy
import itertools
import random
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.test_seed_scripts import Node as ServingNode
from tests.api.test_seed_scripts import serving_node
from tests.conftest import drop_postgres_database, postgres_database

load_all_checks()

# Small and fixed so each pass takes well under a minute on a quiet machine (the generation of
# invalid requests costs the most). Per operation and pass.
POSITIVE_EXAMPLES = 12
# Valid requests to unknown ids mostly meet a 404 after one lookup: fewer do.
GENERATED_IDS_EXAMPLES = 6
NEGATIVE_EXAMPLES = 6
POISONED_EXAMPLES = 6
# Values valid generation hardly ever picks: a NUL inside text, integers past 64 bits.
HUGE_INTEGERS = (675620553465665459782156288, -(2**63) - 1, 2**64)
UNAUTHED_EXAMPLES = 4
# Reachable without a token: login, health and readiness, the error list and signed
# (token-less) audio links.
PUBLIC_PATHS = (
    "/SonetelAuth/oauth/token",
    "/SonetelAuth/beta/oauth/token",
    "/oauth/token",
    "/healthz",
    "/readyz",
    "/globaldata/errors",
    "/audio/",
)
Check = Callable[..., Any]


@dataclass
class Finding:
    """One request the API answered wrongly."""

    operation: str
    check: str
    status: int
    request: str
    response: str

    def __str__(self) -> str:
        return f"{self.operation} [{self.check}] -> {self.status}\n    {self.request}\n    {self.response}"


@dataclass
class Probe:
    """What a fuzzing pass found, and how many requests each operation accepted."""

    findings: list[Finding]
    accepted: Counter[str]


@dataclass
class Node:
    """A real node process, an account on it and real ids of the account's objects."""

    process: ServingNode
    client: httpx.Client
    real_ids: dict[str, str]
    schema: Any = field(repr=False)
    log_offset: int = 0

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @property
    def account_id(self) -> str:
        return self.process.account_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.process.token}"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A real node process on SQLite with an account holding a user, an app, a prompt and a
    number.

    A separate process, not the in-process fixture: the node's tracebacks are formatted while
    pytest formats its own, which trips CPython 3.11.7's ast.parse in two threads at once.
    """
    yield from _node(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def pg_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """The same on PostgreSQL."""
    url = postgres_database()
    try:
        yield from _node(tmp_path_factory.mktemp("fuzz-pg"), "--database-url", url)
    finally:
        drop_postgres_database(url)


def _node(tmp: Path, *flags: str) -> Iterator[Node]:
    with (
        serving_node(tmp, *flags) as process,
        httpx.Client(base_url=process.base_url, timeout=30) as c,
    ):
        schema = schemathesis.openapi.from_url(process.base_url + "/openapi.json")
        node = Node(process, c, {}, schema)
        node.real_ids = real_objects(node)
        yield node


def real_objects(node: Node) -> dict[str, str]:
    """Ids of a new user, app, prompt, phone number, team and schedule of the node's account."""
    c, h = node.client, node.headers
    base = f"/account/{node.account_id}"
    app = c.post(f"{base}/voiceapp", headers=h, json={"app_type": "ivr", "name": "Fuzzed"})
    assert app.status_code == 200, app.text
    app_id = app.json()["response"]["app_id"]
    number = f"+468{secrets.randbelow(10**8):08d}"
    made = {
        "user_id": c.post(
            f"{base}/user",
            headers=h,
            json={
                "user_fname": "Rita",
                "user_lname": "Regular",
                "email": f"rita-{secrets.token_hex(3)}@example.com",
                "password": "rita-pass-1",
                "type": "regular",
            },
        ),
        "prompt_id": c.post(
            f"{base}/voiceapp/{app_id}/prompt", headers=h, json={"name": "Opening hours"}
        ),
        "phnum": c.post(f"{base}/phonenumbersubscription", headers=h, json={"phnum": number}),
        "team_id": c.post(f"{base}/team", headers=h, json={"name": "Sales"}),
        "schedule_id": c.post(
            f"{base}/schedule",
            headers=h,
            json={
                "name": "Office",
                "weekly": [{"days": ["mon", "fri"], "from": "09:00", "to": "17:00"}],
            },
        ),
    }
    for r in made.values():
        assert r.status_code == 200, r.text
    ids = {key: str(r.json()["response"][key]) for key, r in made.items() if key != "phnum"}
    return {"account_id": node.account_id, "app_id": app_id, "phnum": number, **ids}


def operations(schema: Any) -> list[Any]:
    """Every operation of the document, DELETEs last so the others still find real objects."""
    ops = [result.ok() for result in schema.get_all_operations()]
    return sorted(ops, key=lambda op: op.method.upper() == "DELETE")


def is_public(path: str) -> bool:
    """Whether an operation answers without a token."""
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC_PATHS)


def _leaves(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, (*at, i))
    else:
        yield at, value


def poisoned(case: Any, rnd: random.Random) -> Any:
    """The case with one of its texts given a NUL, or one of its integers made huge."""
    spots = []
    for container in ("path_parameters", "query", "body"):
        for at, leaf in _leaves(getattr(case, container)):
            if container == "path_parameters" and at == ("account_id",):
                continue
            if isinstance(leaf, str) or (isinstance(leaf, int) and not isinstance(leaf, bool)):
                spots.append((container, at, leaf))
    if not spots:
        return case
    container, at, leaf = rnd.choice(spots)
    if isinstance(leaf, str):
        cut = rnd.randint(0, len(leaf))
        new: Any = leaf[:cut] + "\x00" + leaf[cut:]
    else:
        new = rnd.choice(HUGE_INTEGERS)
    if not at:
        setattr(case, container, new)
        return case
    value = copy.deepcopy(getattr(case, container))
    target = value
    for step in at[:-1]:
        target = target[step]
    target[at[-1]] = new
    setattr(case, container, value)
    return case


def fuzz(
    node: Node,
    mode: GenerationMode,
    examples: int,
    headers: Callable[[], dict[str, str]],
    judge: Callable[[Any, Any], list[tuple[str, str]]],
    variants: tuple[set[str], ...] = (),
    poison: bool = False,
    real_ids: dict[str, str] | None = None,
) -> Probe:
    """Send generated requests to every operation, once per variant (the names of the path
    ids taken from `real_ids`, default the node's); what `judge` objects to, per response."""
    findings: dict[tuple[str, str, int], Finding] = {}
    accepted: Counter[str] = Counter()
    session = requests.Session()
    real = real_ids or node.real_ids
    for op in operations(node.schema):
        names = {p.name for p in op.path_parameters}
        for fixed in variants or ({"account_id"}, set(real)):
            path_parameters = {k: v for k, v in real.items() if k in fixed & names}
            strategy: SearchStrategy[Any] = op.as_strategy(
                generation_mode=mode, path_parameters=path_parameters or None
            )
            if poison:
                strategy = st.tuples(strategy, st.randoms(use_true_random=False)).map(
                    lambda drawn: poisoned(*drawn)
                )
            send = _sender(node.base_url, session, op.label, headers, judge, findings, accepted)
            run: Callable[[], None] = settings(
                max_examples=examples,
                derandomize=True,  # the same requests every run
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(strategy)(send))
            try:
                run()
            except Unsatisfiable:
                pass  # nothing of this operation can be made invalid in this mode
    return Probe(list(findings.values()), accepted)


def _sender(
    base_url: str,
    session: requests.Session,
    label: str,
    headers: Callable[[], dict[str, str]],
    judge: Callable[[Any, Any], list[tuple[str, str]]],
    findings: dict[tuple[str, str, int], Finding],
    accepted: Counter[str],
) -> Callable[[Any], None]:
    """One generated request: send it with the given credentials and record what is wrong."""

    def send(case: Any) -> None:
        sent = headers()
        case.headers = {**(case.headers or {}), **sent}
        response = case.call(base_url=base_url, session=session, timeout=30)
        if response.status_code < 300:
            accepted[label] += 1
        for check, problem in judge(case, response):
            findings.setdefault(
                (label, check, response.status_code),
                Finding(
                    label,
                    check,
                    response.status_code,
                    case.as_curl_command(headers=sent),
                    problem[:400],
                ),
            )

    return send


def schema_checks(node: Node, *checks: Check) -> Callable[[Any, Any], list[tuple[str, str]]]:
    """A judge running schemathesis checks one by one, so each failure names its check."""

    def judge(case: Any, response: Any) -> list[tuple[str, str]]:
        out = []
        for check in checks:
            try:
                case.validate_response(response, checks=[check])
            except (AssertionError, BaseExceptionGroup) as exc:
                out.append((check.__name__, f"{response.text[:200]!r} :: {exc}"))
        return out

    return judge


def report(findings: list[Finding]) -> str:
    """The findings as a readable list for the assertion message."""
    return f"{len(findings)} wrong answers:\n" + "\n".join(str(f) for f in findings)


POSITIVE = (GenerationMode.POSITIVE, POSITIVE_EXAMPLES, False)
NEGATIVE = (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, False)
NUL_AND_HUGE = (GenerationMode.POSITIVE, POISONED_EXAMPLES, True)
TO_UNKNOWN_IDS = (GenerationMode.POSITIVE, GENERATED_IDS_EXAMPLES, False)
# Path ids: all real but the ones generated ("real"), or only the account's real ("generated").
REAL, GENERATED = "real-ids", "generated-ids"


# Invalid shapes (the negative pass) are refused before any storage, so PostgreSQL runs the
# passes whose values reach it. Invalid and poisoned requests go to real objects, where they
# get past the lookups to the validation and the database; valid ones go to unknown ids too.
@pytest.mark.parametrize(
    ("store", "mode", "examples", "poison", "ids"),
    [
        ("sqlite", *POSITIVE, REAL),
        ("sqlite", *TO_UNKNOWN_IDS, GENERATED),
        ("sqlite", *NEGATIVE, REAL),
        ("sqlite", *NUL_AND_HUGE, REAL),
        ("postgres", *POSITIVE, REAL),
        ("postgres", *TO_UNKNOWN_IDS, GENERATED),
        ("postgres", *NUL_AND_HUGE, REAL),
    ],
    ids=[
        "sqlite-positive-real-ids",
        "sqlite-positive-generated-ids",
        "sqlite-negative",
        "sqlite-nul-and-huge",
        "postgres-positive-real-ids",
        "postgres-positive-generated-ids",
        "postgres-nul-and-huge",
    ],
)
def test_no_server_errors_and_answers_match_their_documented_schema(
    request: pytest.FixtureRequest,
    store: str,
    mode: GenerationMode,
    examples: int,
    poison: bool,
    ids: str,
) -> None:
    node: Node = request.getfixturevalue("node" if store == "sqlite" else "pg_node")
    real_ids = real_objects(node)
    probe = fuzz(
        node,
        mode,
        examples,
        lambda: node.headers,
        schema_checks(node, not_a_server_error, response_schema_conformance),
        variants=({"account_id"},) if ids == GENERATED else (set(real_ids),),
        poison=poison,
        real_ids=real_ids,
    )
    assert not probe.findings, report(probe.findings)
    if mode == GenerationMode.POSITIVE and not poison and ids == REAL:
        # Valid requests got through to stored data: reads and changes of the real objects.
        for label in (
            "GET /account/{account_id}/voiceapp/{app_id}",
            "PUT /account/{account_id}/voiceapp/{app_id}/prompt/{prompt_id}",
            "GET /account/{account_id}/user/{user_id}",
            "GET /account/{account_id}/phonenumbersubscription/{phnum}",
            "GET /account/{account_id}/team/{team_id}",
            "GET /account/{account_id}/schedule/{schedule_id}",
        ):
            assert probe.accepted[label] > 0, (label, probe.accepted)
    # The account and its objects are still there to be read after all that.
    r = node.client.get(f"/account/{node.account_id}", headers=node.headers)
    assert r.status_code == 200, r.text


def _refused_without_valid_token(case: Any, response: Any) -> list[tuple[str, str]]:
    if response.status_code >= 500:
        return [("not_a_server_error", response.text)]
    if is_public(case.operation.path) or response.status_code in (401, 403):
        return []
    return [("needs_a_token", response.text)]


def test_without_a_valid_token_only_public_operations_answer(node: Node) -> None:
    token = node.process.token
    credentials = itertools.cycle(
        [
            {},
            # Right shape and claims, wrong signature.
            {"Authorization": "Bearer " + token[: token.rindex(".") + 1] + "x" * 43},
            {"Authorization": "Bearer not-a-jwt"},
            {"Authorization": "Basic c29uZXRlbC1hcGk6c29uZXRlbC1hcGk="},
        ]
    )
    findings: list[Finding] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        probe = fuzz(
            node,
            mode,
            UNAUTHED_EXAMPLES,
            lambda: next(credentials),
            _refused_without_valid_token,
            variants=(set(node.real_ids),),
        )
        findings += probe.findings
        leaked = {
            label: n for label, n in probe.accepted.items() if not is_public(label.split(" ")[1])
        }
        assert not leaked, f"answered without a valid token: {leaked}"
    assert not findings, report(findings)
    # The probe must have reached protected operations at all for the test to mean anything.
    protected = [op for op in operations(node.schema) if not is_public(op.path)]
    assert len(protected) >= 20


@pytest.mark.parametrize("body", [b"{broken", b"\xff\xfe{}"], ids=["bad-json", "not-utf8"])
def test_a_broken_body_without_a_token_is_refused_as_unauthenticated(
    node: Node, body: bytes
) -> None:
    r = httpx.post(
        f"{node.base_url}/account/{node.account_id}/voiceapp",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 401, r.text


def _fresh_app(node: Node) -> str:
    """An app of this test's own: the fuzz passes may have deleted the shared ones."""
    r = node.client.post(
        f"/account/{node.account_id}/voiceapp",
        headers=node.headers,
        json={"app_type": "ivr", "name": "Created"},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["response"]["app_id"])


def test_creating_answers_with_a_documented_status(node: Node) -> None:
    c, h = node.client, node.headers
    base = f"/account/{node.account_id}"
    doc = c.get("/openapi.json").json()["paths"]
    app_id = _fresh_app(node)
    made = {
        "/account/{account_id}/voiceapp": c.post(
            f"{base}/voiceapp", headers=h, json={"app_type": "ivr", "name": "Created"}
        ),
        "/account/{account_id}/voiceapp/{app_id}/prompt": c.post(
            f"{base}/voiceapp/{app_id}/prompt", headers=h, json={"name": "Deal of the week"}
        ),
    }
    for template, r in made.items():
        assert r.status_code < 300, r.text
        documented = doc[template]["post"]["responses"]
        assert str(r.status_code) in documented, (
            f"POST {template}: {r.status_code} not in {sorted(documented)}"
        )


@pytest.mark.parametrize("route", ["convert", "message"])
def test_text_that_speaks_as_silence_is_refused_not_a_server_error(node: Node, route: str) -> None:
    c, h = node.client, node.headers
    if route == "convert":
        r = c.post("/tts/prompt/convert", headers=h, json={"text": ".", "language": "en_GB"})
    else:
        app_id = _fresh_app(node)
        made = c.post(
            f"/account/{node.account_id}/voiceapp/{app_id}/prompt", headers=h, json={"name": "Dot"}
        )
        prompt_id = made.json()["response"]["prompt_id"]
        r = c.post(f"/prompt/{prompt_id}/message", headers=h, json={"text": "."})
    assert r.status_code == 400, r.text
    assert "text" in r.json()["response"]["detail"]
