"""`api.auth`: OAuth client credentials in the configuration, one line per bad key, nothing
secret echoed, client files read relative to the config file and again for every token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor import wiring
from monitor.logs import REDACTED, Redactor
from monitor.settings import Settings, load_settings
from monitor.settings_auth import DEFAULT_TOKEN_URL
from tests.settingskit import problems, write

CLIENT = "II" + "7a" * 16
SECRET = "a-client-secret-value"
INLINE = {"mode": "oauth", "client_id": CLIENT, "client_secret": SECRET}


def with_auth(tmp_path: Path, auth: dict[str, Any], **api: Any) -> Path:
    return write(tmp_path / "c.yaml", {"api": {"auth": auth, **api}})


def test_oauth_defaults_and_no_static_token_needed_for_the_real_api(tmp_path: Path) -> None:
    s = load_settings(with_auth(tmp_path, INLINE))
    auth = s.api.auth
    assert (auth.token_url, auth.header, auth.renew_before) == (DEFAULT_TOKEN_URL, "token", 600)
    assert auth.client() == (CLIENT, SECRET) and s.token() is None
    assert Settings().api.auth.mode == "static"


def test_client_files_are_read_from_the_config_folder_and_again_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "id").write_text(f"{CLIENT}\n")
    (tmp_path / "secret").write_text(f"  {SECRET}\n")
    files = {"mode": "oauth", "client_id_file": "id", "client_secret_file": "secret"}
    monkeypatch.chdir("/")
    s = load_settings(with_auth(tmp_path, {**files, "header": "bearer", "renew_before": "5m"}))
    assert s.api.auth.client_secret_file == tmp_path / "secret"
    assert s.api.auth.client() == (CLIENT, SECRET) and s.api.auth.renew_before == 300
    (tmp_path / "secret").write_text("rotated-secret\n")
    assert s.api.auth.client() == (CLIENT, "rotated-secret")
    (tmp_path / "secret").unlink()
    assert s.api.auth.client() is None


@pytest.mark.parametrize(
    ("auth", "api", "expected"),
    [
        (
            {"mode": "oauth", "client_secret": SECRET},
            {},
            "api.auth.client_id_file: required with mode: oauth (or client_id)",
        ),
        (
            {"mode": "oauth", "client_id": CLIENT},
            {},
            "api.auth.client_secret_file: required with mode: oauth (or client_secret)",
        ),
        (
            {**INLINE, "client_secret_file": "s"},
            {},
            "api.auth.client_secret_file: give client_secret_file or client_secret, not both",
        ),
        (
            {"client_secret": SECRET},
            {},
            "api.auth.client_secret: only used with api.auth.mode: oauth",
        ),
        (
            {"client_id_file": "id"},
            {},
            "api.auth.client_id_file: only used with api.auth.mode: oauth",
        ),
        (
            INLINE,
            {"token": "a-static-token"},
            "api.auth: mode: oauth replaces api.token and api.token_file: remove them",
        ),
        (
            {**INLINE, "header": "cookie"},
            {},
            "api.auth.header: Input should be 'token' or 'bearer'",
        ),
        ({**INLINE, "mode": "saml"}, {}, "api.auth.mode: Input should be 'static' or 'oauth'"),
        ({**INLINE, "token_url": "ftp://x"}, {}, "api.auth.token_url: must be an http(s) URL"),
        (
            {**INLINE, "renew_before": 0},
            {},
            "api.auth.renew_before: Input should be greater than 0",
        ),
        ({**INLINE, "colour": 1}, {}, "api.auth.colour: unknown key"),
        ({**INLINE, "client_secret": " "}, {}, "api.auth.client_secret: is empty"),
        (
            {"mode": "oauth", "client_id": CLIENT, "client_secret_file": "missing"},
            {},
            "api.auth.client_secret_file: cannot read",
        ),
    ],
)
def test_each_bad_auth_key_is_one_line_naming_it(
    tmp_path: Path, auth: dict[str, Any], api: dict[str, Any], expected: str
) -> None:
    lines = problems(with_auth(tmp_path, auth, **api))
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert SECRET not in lines[0] and "a-static-token" not in lines[0]


def test_an_empty_client_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "id").write_text("\n")
    auth = {"mode": "oauth", "client_id_file": "id", "client_secret": SECRET}
    assert problems(with_auth(tmp_path, auth)) == [
        f"api.auth.client_id_file: {tmp_path / 'id'} is empty"
    ]


def test_check_config_and_the_redactor_never_show_the_client(tmp_path: Path) -> None:
    s = load_settings(with_auth(tmp_path, INLINE))
    shown = repr(s.redacted())
    assert SECRET not in shown and CLIENT not in shown
    redactor = Redactor()
    wiring.register_secrets(s, redactor)
    assert redactor.scrub(f"{CLIENT}:{SECRET}") == f"{REDACTED}:{REDACTED}"


def test_the_environment_can_carry_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPMON_API__AUTH__CLIENT_SECRET", SECRET)
    s = load_settings(with_auth(tmp_path, {"mode": "oauth", "client_id": CLIENT}))
    assert s.api.auth.client() == (CLIENT, SECRET)
