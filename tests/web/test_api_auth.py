"""/api/v1's auth rules against a real server: tokens, open reads, disabled writes, 405, and
no secret in any answer (error bodies included)."""

from __future__ import annotations

import pytest

from monitor.settings import load_settings
from tests.settingskit import LOCAL, problems, write
from tests.web.conftest import ADMIN, RunFactory, call

API_TOKEN = "api-jwt-secret-value-9876543210"
HOOK_SECRET = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTEyMzQ1Ng=="
READS = ["/summary", "/sessions", "/watches", "/outbox"]


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token-0123456789ab", f"Basic {ADMIN}", "Bearer"]
)
async def test_reads_and_writes_need_the_token(running: RunFactory, header: str | None) -> None:
    run = await running(1)
    headers = {"Authorization": header} if header else {}
    for path in READS:
        status, got, body = await call("GET", run.base + path, headers=headers)
        assert (status, body) == (401, {"error": "authentication required"}), path
        assert got["WWW-Authenticate"].startswith("Bearer")
        assert "Set-Cookie" not in got
    status, _, body = await call(
        "POST", run.base + "/outbox/retry", headers=headers, json={"all": True}
    )
    assert status == 401
    status, _, _ = await call("GET", run.base + "/summary", headers=run.headers())
    assert status == 200


async def test_open_reads_still_guard_writes(running: RunFactory) -> None:
    run = await running(1, admin={"token": ADMIN, "read": "open"})
    for path in READS:
        status, _, _ = await call("GET", run.base + path)
        assert status == 200, path
    status, _, _ = await call("DELETE", f"{run.base}/watches/{run.sim.keys[0].session_sid}")
    assert status == 401


async def test_no_admin_token_disables_writes(running: RunFactory) -> None:
    run = await running(1, admin={"read": "open"})
    status, _, _ = await call("GET", run.base + "/summary")
    assert status == 200
    status, _, body = await call("POST", run.base + "/outbox/retry", json={"all": True})
    assert status == 403 and "writes are disabled" in body["error"]
    closed = await running(1, admin={})
    status, _, body = await call("GET", closed.base + "/summary", headers=closed.headers())
    assert status == 403 and "reads are disabled" in body["error"]


async def test_wrong_method_is_405_with_a_generic_body(running: RunFactory) -> None:
    run = await running(1)
    for method, path in [("POST", "/summary"), ("DELETE", "/sessions"), ("PUT", "/watches")]:
        status, got, body = await call(method, run.base + path, headers=run.headers())
        assert (status, body) == (405, {"error": "method not allowed"}), path
        assert "Allow" in got


async def test_the_openapi_document_needs_no_token(running: RunFactory) -> None:
    run = await running(1)
    status, _, doc = await call("GET", run.base + "/openapi.json")
    assert status == 200 and doc["openapi"] == "3.1.0"


async def test_no_secret_in_any_answer(running: RunFactory) -> None:
    run = await running(
        2,
        sinks=[{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/hook", "allow_private": True,
                "secret": HOOK_SECRET}],
    )  # fmt: skip
    sid = run.sim.keys[0].session_sid
    bodies = []
    for header in (run.headers(), {}, run.headers("wrong-token-0123456789ab")):
        for method, path, kw in [
            ("GET", "/summary", {}),
            ("GET", "/sessions", {}),
            ("GET", f"/sessions/{sid}", {}),
            ("GET", f"/sessions/{sid}/history", {}),
            ("GET", "/watches", {}),
            ("GET", "/outbox", {}),
            ("GET", "/openapi.json", {}),
            ("GET", "/sessions?limit=oops", {}),
            ("POST", "/watches", {"json": {"install_sid": ADMIN}}),
            ("POST", "/watches", {"data": ADMIN}),
            ("PATCH", f"/watches/{sid}", {"json": {"labels": ADMIN}}),
            ("POST", "/outbox/retry", {"json": {"sink": ADMIN}}),
            ("PUT", "/summary", {}),
        ]:
            status, got, body = await call(method, run.base + path, headers=header, **kw)
            bodies.append(f"{status} {dict(got)} {body}")
    text = "\n".join(bodies)
    for secret in (ADMIN, HOOK_SECRET, "127.0.0.1:9/hook"):
        assert secret not in text
    assert "Traceback" not in text


def config_error(tmp_path, extra: dict) -> list[str]:
    return problems(write(tmp_path / "c.yaml", {**LOCAL, **extra}))


def test_bad_admin_settings_are_one_line_naming_the_key(tmp_path, monkeypatch) -> None:
    short = tmp_path / "admin.token"
    short.write_text("short\n")
    assert config_error(tmp_path, {"admin": {"token_file": str(short)}}) == [
        "admin.token_file: must hold at least 16 characters"
    ]
    missing = str(tmp_path / "absent")
    (line,) = config_error(tmp_path, {"admin": {"token_file": missing}})
    assert line.startswith("admin.token_file: cannot read")
    (line,) = config_error(tmp_path, {"admin": {"read": "public"}})
    assert line.startswith("admin.read:")
    monkeypatch.setenv("SPMON_ADMIN__TOKEN", ADMIN)
    assert load_settings(write(tmp_path / "c.yaml", LOCAL)).admin.secret() == ADMIN
