"""Console session cookies and CSRF tokens (pure): genuine, bound to the token, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from waste.console.session import SESSION_TTL, SessionSigner, admin_token_hash

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
KEY = b"k" * 32
BOUND = "ab" * 32


def test_a_cookie_opens_for_its_token_until_it_expires() -> None:
    signer = SessionSigner(KEY)
    cookie = signer.issue(token_id="0123456789abcdef", bound_to=BOUND, now=NOW)
    claims = signer.claims(cookie, now=NOW + SESSION_TTL - timedelta(seconds=1))
    assert claims is not None
    assert claims.token_id == "0123456789abcdef"
    assert signer.verify(cookie, bound_to=BOUND)
    assert signer.claims(cookie, now=NOW + SESSION_TTL) is None


def test_a_cookie_stops_working_when_the_token_changes_or_the_key_differs() -> None:
    signer = SessionSigner(KEY)
    cookie = signer.issue(token_id="0123456789abcdef", bound_to=BOUND, now=NOW)
    assert not signer.verify(cookie, bound_to="cd" * 32)  # token re-issued: another hash
    assert not SessionSigner(b"x" * 32).verify(cookie, bound_to=BOUND)


def test_admin_sessions_bind_to_the_configured_admin_token() -> None:
    signer = SessionSigner(KEY)
    cookie = signer.issue(token_id="admin", bound_to=admin_token_hash("a" * 40), now=NOW)
    assert signer.verify(cookie, bound_to=admin_token_hash("a" * 40))
    assert not signer.verify(cookie, bound_to=admin_token_hash("b" * 40))


@settings(deadline=None)
@given(st.text(max_size=600))
def test_any_other_text_is_no_session(text: str) -> None:
    signer = SessionSigner(KEY)
    claims = signer.claims(text, now=NOW)
    assert claims is None or not signer.verify(text, bound_to=BOUND)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=200), st.sampled_from("AB_-x"))
def test_changing_any_character_breaks_the_mac(position: int, char: str) -> None:
    signer = SessionSigner(KEY)
    cookie = signer.issue(token_id="0123456789abcdef", bound_to=BOUND, now=NOW)
    i = position % len(cookie)
    if cookie[i] == char:
        return
    forged = cookie[:i] + char + cookie[i + 1 :]
    assert signer.claims(forged, now=NOW) is None or not signer.verify(forged, bound_to=BOUND)


def test_only_the_canonical_encoding_of_the_mac_is_accepted() -> None:
    signer = SessionSigner(KEY)
    cookie = signer.issue(token_id="0123456789abcdef", bound_to=BOUND, now=NOW)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(cookie[-1])
    twin = cookie[:-1] + alphabet[last ^ 1]  # differs only in bits base64 decoding drops
    assert not signer.verify(twin, bound_to=BOUND)


def test_csrf_tokens_belong_to_one_nonce() -> None:
    signer = SessionSigner(KEY)
    token = signer.csrf_token("n1")
    assert signer.csrf_ok("n1", token)
    assert not signer.csrf_ok("n2", token)
    assert not signer.csrf_ok("n1", "")


def test_short_keys_are_refused() -> None:
    try:
        SessionSigner(b"short")
    except ValueError:
        return
    raise AssertionError("a short key was accepted")
