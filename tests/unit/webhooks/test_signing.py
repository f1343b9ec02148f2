"""Standard Webhooks signing, topic patterns, URL rules and the retry schedule (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from waste.errors import Invalid
from waste.webhooks import signing
from waste.webhooks.delivery import DeliveryPolicy, Outcome
from waste.webhooks.service import topic_matches, validate_topics, validate_url

# The example of the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_specification_example() -> None:
    assert signing.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    headers = signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }
    signing.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 10)


def test_verify_refuses_changes_stale_messages_and_other_secrets() -> None:
    headers = signing.headers(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    with pytest.raises(signing.SignatureMismatch):
        signing.verify(SPEC_SECRET, headers, SPEC_BODY + b" ", now=SPEC_TIMESTAMP)
    with pytest.raises(signing.SignatureMismatch):
        signing.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP + 301)
    with pytest.raises(signing.SignatureMismatch):
        signing.verify(signing.new_secret(), headers, SPEC_BODY, now=SPEC_TIMESTAMP)
    with pytest.raises(signing.SignatureMismatch):
        signing.verify(SPEC_SECRET, {"webhook-id": SPEC_ID}, SPEC_BODY, now=SPEC_TIMESTAMP)
    rotated = {**headers, "webhook-signature": "v1,AAAA " + headers["webhook-signature"]}
    signing.verify(SPEC_SECRET, rotated, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_new_secrets_are_random_and_well_formed() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b
    assert a.startswith("whsec_")
    assert len(signing.secret_key(a)) == 32


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("*", "manifest.filed", True),
        ("manifest.*", "manifest.filed", True),
        ("manifest.*", "manifests.filed", False),
        ("manifest.filed", "manifest.filed", True),
        ("manifest.filed", "manifest.filed_late", False),
        ("alert.*", "manifest.filed", False),
    ],
)
def test_topic_patterns(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


def test_topic_validation() -> None:
    assert validate_topics(None) == ["manifest.*"]
    assert validate_topics(["alert.raised", "*"]) == ["alert.raised", "*"]
    for bad, field in (([], "topics"), (["a..b"], "topics[0]"), (["x", "x"], "topics")):
        with pytest.raises(Invalid) as err:
            validate_topics(bad)
        assert err.value.field == field


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "example.com/hook",
        "https://",
        "https://a:b@example.com/",
        "https://example.com/#frag",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "https://example.com/\n",
        "https://example.com/" + "a" * 2000,
    ],
)
def test_only_plain_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(Invalid) as err:
        validate_url(url)
    assert err.value.field == "url"


def test_good_urls() -> None:
    for url in ("https://erp.example.com/hooks?x=1", "http://127.0.0.1:8080/h", "https://[::1]/h"):
        assert validate_url(url) == url


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = DeliveryPolicy(base_delay_s=30, max_delay_s=3600)
    delays = [policy.delay_after(n) for n in range(1, 10)]
    assert delays[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert delays[-1] == timedelta(hours=1)
    assert Outcome(204, None, 1).ok
    assert not Outcome(301, "HTTP 301", 1).ok
    assert not Outcome(None, "timeout", 1).ok
