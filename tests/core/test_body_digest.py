"""The body digest: exact equality, and a round trip through the store's bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.core import body_digest


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_a_digest_survives_the_store_and_matches_exactly_when_the_bodies_do(
    a: bytes, b: bytes
) -> None:
    stored = body_digest.stored_digest(body_digest.digest_of(a))
    assert stored is not None and len(stored) == body_digest.DIGEST_SIZE
    assert body_digest.memory_digest(stored) == body_digest.digest_of(a)
    assert (body_digest.digest_of(a) == body_digest.digest_of(b)) == (a == b)
    assert body_digest.memory_digest(b"d") != body_digest.digest_of(a)  # another size never matches
    assert body_digest.memory_digest(None) is None and body_digest.stored_digest(None) is None
