"""Two nodes on one database: what a user changes through one, the other shows at once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests.conftest import base_settings, run_server


def test_a_change_on_one_node_is_read_at_once_on_the_other(
    tmp_path: Path, database_url: str
) -> None:
    settings = base_settings(tmp_path, database_url)
    for a in run_server(settings):
        for b in run_server(replace(settings)):
            acc = a.account()
            other = a.account()
            apps = b.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
            menu = next(x for x in apps.json()["response"] if x["name"] == "Main menu")
            path = f"/account/{acc.account_id}/voiceapp/{menu['app_id']}"

            first = b.client.get(path, headers=acc.headers)  # node b now holds this app
            assert first.status_code == 200 and first.json()["response"]["name"] == "Main menu"
            changed = a.client.put(path, headers=acc.headers, json={"name": "Sales"})
            assert changed.status_code == 200

            seen = b.client.get(path, headers=acc.headers)
            assert seen.json() == changed.json()
            assert seen.headers["etag"] == changed.headers["etag"] != first.headers["etag"]
            part = b.client.get(path + "?fields=name,app_id", headers=acc.headers)
            assert part.json()["response"] == {"name": "Sales", "app_id": menu["app_id"]}
            # A stale ETag from node b's first read is refused on node a.
            stale = a.client.put(
                path,
                headers={**acc.headers, "If-Match": first.headers["etag"]},
                json={"name": "Lost"},
            )
            assert stale.status_code == 412

            # Another account never reads this app, cached or not.
            foreign = f"/account/{other.account_id}/voiceapp/{menu['app_id']}"
            assert b.client.get(foreign, headers=other.headers).status_code == 404
            assert b.client.get(path, headers=other.headers).status_code == 403

            # Deleted on a: gone on b.
            gone = a.client.delete(path + "?force=true", headers=acc.headers)
            assert gone.status_code == 200, gone.text
            missing = b.client.get(path, headers=acc.headers)
            assert missing.status_code == 404
            assert missing.json()["status"] == "failed"

            # A password changed on a revokes the old token on b at once.
            user = f"/account/{acc.account_id}/user/{acc.user_id}"
            r = a.client.put(user, headers=acc.headers, json={"password": "a-new-pass-2"})
            assert r.status_code == 200
            refused = b.client.get(f"/account/{acc.account_id}/voiceapp", headers=acc.headers)
            assert refused.status_code == 401
