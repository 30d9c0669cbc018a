"""Reading a token endpoint's answer, and when the next token is asked for: tables and properties."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.grant import Grant, GrantError, parse
from monitor.sim_auth import make_token

SENT = 1_795_000_000.0


def at(offset: float) -> str:
    return datetime.fromtimestamp(SENT + offset, UTC).isoformat().replace("+00:00", "Z")


def test_expires_in_counts_from_the_request() -> None:
    got = parse({"access_token": "tok", "expires_in": 3600}, sent_at=SENT)
    assert got == Grant("tok", SENT, SENT + 3600)
    assert got.lifetime == 3600


def test_the_earlier_of_expires_in_and_expires_at_wins() -> None:
    # A server clock ahead of ours: its expires_at comes earlier on our clock; renew by it.
    body = {"access_token": "tok", "expires_in": 3600, "expires_at": at(3400)}
    assert parse(body, sent_at=SENT).expires_at == SENT + 3400
    body["expires_at"] = at(3700)  # later than expires_in: ignored
    assert parse(body, sent_at=SENT).expires_at == SENT + 3600


def test_without_either_the_jwt_exp_claim_serves() -> None:
    token = make_token(exp=SENT + 90)
    assert parse({"access_token": token}, sent_at=SENT).expires_at == SENT + 90
    naive = {"access_token": token, "expires_at": at(60)[:-1], "expires_in": "1h"}
    assert parse(naive, sent_at=SENT).expires_at == SENT + 90  # unusable fields are skipped


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "not a JSON object"),
        ({"expires_in": 60}, "no access_token"),
        ({"access_token": "  ", "expires_in": 60}, "no access_token"),
        ({"access_token": "opaque-secret"}, "no expires_in, expires_at or exp claim"),
        ({"access_token": "opaque-secret", "expires_in": True}, "no expires_in"),
        ({"access_token": "opaque-secret", "expires_in": 0}, "already expired"),
        ({"access_token": "opaque-secret", "expires_at": "soon"}, "no expires_in"),
    ],
)
def test_unusable_answers_name_the_field_never_the_token(body: object, message: str) -> None:
    with pytest.raises(GrantError, match=message) as caught:
        parse(body, sent_at=SENT)
    assert "opaque-secret" not in str(caught.value)


def test_a_grant_never_prints_its_token() -> None:
    assert "tok-value" not in repr(Grant("tok-value", SENT, SENT + 60))


@pytest.mark.parametrize(
    ("lifetime", "renew_before", "after"),
    [(3600, 600, 3000), (3600, 3600, 1800), (3, 600, 1.5), (60, 10, 50)],
)
def test_renewal_comes_renew_before_ahead_but_never_past_half_the_lifetime(
    lifetime: float, renew_before: float, after: float
) -> None:
    assert Grant("t", SENT, SENT + lifetime).renew_at(renew_before) == SENT + after


@given(
    lifetime=st.floats(min_value=1e-3, max_value=1e7),
    renew_before=st.floats(min_value=1e-3, max_value=1e7),
)
def test_renewal_is_always_inside_the_lifetimes_second_half(
    lifetime: float, renew_before: float
) -> None:
    got = Grant("t", SENT, SENT + lifetime)
    at = got.renew_at(renew_before)
    assert SENT + lifetime / 2 - 1e-6 <= at < got.expires_at
    assert at >= got.expires_at - renew_before - 1e-6
