"""jwt_expiry: the `exp` claim of an unverified JWT, or None for anything else."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.jwt_expiry import jwt_expiry


def segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def jwt(claims: object, *, header: object = None) -> str:
    head = segment(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    return f"{head}.{segment(json.dumps(claims).encode())}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"exp": 1_709_294_400}, 1_709_294_400.0),
        ({"exp": 1_709_294_400.5, "sub": "spmon"}, 1_709_294_400.5),
        ({"exp": 0}, 0.0),
        ({"sub": "no expiry"}, None),
        ({"exp": "1709294400"}, None),
        ({"exp": True}, None),
        ({"exp": None}, None),
        ({"exp": [1]}, None),
        ([1, 2, 3], None),
        ("a string", None),
        (1_709_294_400, None),
    ],
)
def test_expiry_from_claims(claims: object, expected: float | None) -> None:
    assert jwt_expiry(jwt(claims)) == expected


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "opaque-api-key",
        "a.b",
        "a.b.c.d",
        "..",
        "header.!!!not-base64!!!.sig",
        f"h.{segment(b'not json')}.s",
        f"h.{segment(bytes([0xFF, 0xFE, 0x00]))}.s",
        "h.é.s",
        f"h.{segment(b'[' * 100)}.s",
    ],
)
def test_not_a_jwt_is_none(token: str | None) -> None:
    assert jwt_expiry(token) is None


def test_unpadded_and_padded_segments_both_read() -> None:
    claims = json.dumps({"exp": 42}).encode()
    padded = base64.urlsafe_b64encode(claims).decode()
    assert jwt_expiry(f"h.{padded}.s") == 42.0
    assert jwt_expiry(f"h.{padded.rstrip('=')}.s") == 42.0


def test_url_safe_alphabet_is_used() -> None:
    # A claim whose encoding contains "-" or "_" (not "+" or "/") must decode.
    claims = {"exp": 42, "pad": "\u00ff\u00fe>>>???"}
    encoded = segment(json.dumps(claims).encode())
    assert "-" in encoded or "_" in encoded
    assert jwt_expiry(f"h.{encoded}.s") == 42.0


@given(exp=st.one_of(st.integers(min_value=0, max_value=2**40), st.floats(0, 2**40)))
def test_any_numeric_exp_is_read(exp: float) -> None:
    assert jwt_expiry(jwt({"exp": exp, "iat": 1})) == float(exp)


@given(token=st.text(max_size=60))
def test_arbitrary_text_never_raises(token: str) -> None:
    result = jwt_expiry(token)
    assert result is None or isinstance(result, float)


@given(
    parts=st.lists(
        st.text(alphabet="ABCDEFabcdef0123456789-_=", max_size=20), min_size=3, max_size=3
    )
)
def test_base64ish_garbage_never_raises(parts: list[str]) -> None:
    result = jwt_expiry(".".join(parts))
    assert result is None or isinstance(result, float)


def test_absurd_integer_exp_is_none_not_an_exception() -> None:
    token = "h." + segment(b'{"exp": 1' + b"0" * 400 + b"}") + ".s"
    assert jwt_expiry(token) is None
