"""The reference device client on a fake link: signing, seq, store-and-forward, acks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devices.client import DeviceClient
from devices.link import FakeLink
from devices.signing import public_key_bytes
from gateway.payloads import (
    MAX_FIXES,
    DeviceKey,
    Fix,
    LockEvent,
    LockEventKind,
    LockMessage,
    StatusMessage,
    TelemetryMessage,
    decode,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
DEVICE = "DEV-0042"
T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def fix(i: int) -> Fix:
    return Fix(T0 + timedelta(seconds=10 * i), 29.3 + i * 1e-4, 120.07, 40.0, 90.0, 0.9)


def make(tmp_path: Path, link: FakeLink | None = None, **kw: object) -> DeviceClient:
    client = DeviceClient(DEVICE, KEY, tmp_path / "state", link or FakeLink(), **kw)  # type: ignore[arg-type]
    client.start()
    return client


def decoded(link: FakeLink) -> list[TelemetryMessage | LockMessage | StatusMessage]:
    """Every delivered message as the gateway decodes it (all must verify)."""
    key = DeviceKey(DEVICE, public_key_bytes(KEY), "vehicle-1")
    out = []
    for sent in link.delivered:
        msg = decode(
            sent.topic, sent.payload, lookup_device=lambda _d: key, now=T0 + timedelta(days=1)
        )
        assert isinstance(msg, TelemetryMessage | LockMessage | StatusMessage), msg
        out.append(msg)
    return out


def telemetry(link: FakeLink) -> list[TelemetryMessage]:
    return [m for m in decoded(link) if isinstance(m, TelemetryMessage)]


def test_live_fixes_go_out_signed_one_per_message_with_increasing_seq(tmp_path: Path) -> None:
    link = FakeLink()
    client = make(tmp_path, link, clock=Clock())
    for i in range(3):
        client.record_fix(fix(i))
        client.pump()
        link.ack()
    client.pump()
    msgs = telemetry(link)
    assert [len(m.fixes) for m in msgs] == [1, 1, 1]
    assert [m.fixes[0] for m in msgs] == [fix(0), fix(1), fix(2)]
    assert msgs[0].seq < msgs[1].seq < msgs[2].seq
    assert client.backlog == (0, 0)


def test_connecting_publishes_a_retained_online_status_and_sets_the_will(tmp_path: Path) -> None:
    link = FakeLink()
    clock = Clock()
    client = make(tmp_path, link, clock=clock)
    client.pump()
    assert link.will is not None
    assert link.will.topic == f"waste/v1/devices/{DEVICE}/status"
    assert json.loads(link.will.payload) == {"online": False}
    assert link.will.retain
    (status,) = link.delivered
    assert status.retain
    assert json.loads(status.payload) == {"online": True, "t": "2026-11-23T08:00:00Z"}


def test_a_clean_close_says_offline(tmp_path: Path) -> None:
    link = FakeLink()
    client = make(tmp_path, link, clock=Clock())
    client.pump()
    link.auto_ack = True
    client.close(timeout=1)
    assert json.loads(link.delivered[-1].payload)["online"] is False
    assert link.delivered[-1].retain
    assert link.stopped


def test_while_the_broker_is_away_records_wait_then_go_in_order_in_batches(tmp_path: Path) -> None:
    link = FakeLink(up=False)
    client = make(tmp_path, link, clock=Clock(), max_fixes=50)
    fixes = [fix(i) for i in range(120)]
    lock = LockEvent(
        fixes[60].t + timedelta(seconds=1), "SEAL-1", LockEventKind.UNSEALED, 29.3, 120.07
    )
    client.record_fixes(fixes[:61])
    client.record_lock(lock)
    client.record_fixes(fixes[61:])
    client.pump()
    assert link.delivered == []
    assert client.backlog == (121, 0)
    link.up()
    while client.backlog != (0, 0):
        client.pump()
        link.ack()
    msgs = [m for m in decoded(link) if not isinstance(m, StatusMessage)]
    # 61 fixes (50 + 11), the lock event alone, then 59 fixes (50 + 9): order kept
    sizes = [len(m.fixes) if isinstance(m, TelemetryMessage) else "lock" for m in msgs]
    assert sizes == [50, 11, "lock", 50, 9]
    got = [f for m in msgs if isinstance(m, TelemetryMessage) for f in m.fixes]
    assert got == fixes
    assert [m.seq for m in msgs] == sorted(m.seq for m in msgs)


def test_batches_never_exceed_the_gateway_limit(tmp_path: Path) -> None:
    link = FakeLink(up=False)
    client = make(tmp_path, link, clock=Clock())
    client.record_fixes([fix(i) for i in range(MAX_FIXES + 20)])
    link.up()
    client.pump()
    link.ack()
    client.pump()
    sizes = [len(m.fixes) for m in telemetry(link)]
    assert sizes == [MAX_FIXES, 20]
    assert all(len(s.payload) <= 65536 for s in link.delivered)


def test_a_message_leaves_the_store_only_when_acknowledged(tmp_path: Path) -> None:
    link = FakeLink()
    client = make(tmp_path, link, clock=Clock())
    client.record_fix(fix(0))
    client.pump()
    assert client.backlog == (0, 1)  # formed, handed, not acknowledged
    link.down()
    client.pump()
    assert client.backlog == (0, 1)
    link.up()  # the link delivers it again, same bytes
    client.pump()
    first, again = [s for s in link.delivered if s.topic.endswith("/telemetry")]
    assert again.dup
    assert again.payload == first.payload
    link.ack()
    client.pump()
    assert client.backlog == (0, 0)


def test_the_window_bounds_unacknowledged_messages_and_the_rest_batch_up(tmp_path: Path) -> None:
    link = FakeLink()
    client = make(tmp_path, link, clock=Clock(), window=2)
    client.pump()
    link.ack()
    client.pump()
    for i in range(10):
        client.record_fix(fix(i))
        client.pump()
    assert [len(m.fixes) for m in telemetry(link)] == [1, 1]
    link.ack()
    client.pump()
    assert [len(m.fixes) for m in telemetry(link)] == [1, 1, 8]


def test_after_a_crash_unacknowledged_messages_go_again_unchanged_then_the_rest(
    tmp_path: Path,
) -> None:
    link = FakeLink()
    client = make(tmp_path, link, clock=Clock())
    client.pump()
    link.ack()
    client.pump()
    for i in range(3):
        client.record_fix(fix(i))
        client.pump()
    link.ack(1)  # the first is acknowledged, two are in flight
    client.pump()
    in_flight = [s.payload for s in link.unacked]
    client.record_fix(fix(3))  # recorded, not yet sent
    # crash: no close, the link and the process are gone; the files remain
    later = FakeLink()
    again = make(tmp_path, later, clock=Clock())
    while again.backlog != (0, 0):
        again.pump()
        later.ack()
    sent = [s.payload for s in later.delivered if s.topic.endswith("/telemetry")]
    assert sent[:2] == in_flight
    msgs = telemetry(later)
    assert [m.fixes for m in msgs] == [(fix(1),), (fix(2),), (fix(3),)]
    before = max(m.seq for m in telemetry(link))
    assert msgs[2].seq > before  # a new message never reuses a seq


def test_linger_gathers_live_fixes_into_fewer_messages(tmp_path: Path) -> None:
    link = FakeLink()
    clock = Clock()
    client = make(tmp_path, link, clock=clock, linger=timedelta(seconds=30))
    for i in range(6):
        clock.now = T0 + timedelta(seconds=10 * i)
        client.record_fix(fix(i))
        client.pump()
        link.ack()
    assert [len(m.fixes) for m in telemetry(link)] == [4]  # at 30 s: the first four


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        DeviceClient("bad/id", KEY, tmp_path, FakeLink())
    with pytest.raises(ValueError):
        DeviceClient(DEVICE, KEY, tmp_path, FakeLink(), max_fixes=MAX_FIXES + 1)
    with pytest.raises(ValueError):
        DeviceClient(DEVICE, KEY, tmp_path, FakeLink(), window=0)


def test_open_reads_the_key_file(tmp_path: Path) -> None:
    from waste.ledger.keys import save_private_key

    save_private_key(KEY, tmp_path / "device.pem")
    link = FakeLink()
    client = DeviceClient.open(DEVICE, tmp_path / "device.pem", tmp_path / "s", link)
    client.start()
    client.record_fix(fix(0))
    client.pump()
    assert telemetry(link)[0].fixes == (fix(0),)


def test_a_record_no_message_can_carry_is_dropped_and_the_rest_go_on(tmp_path: Path) -> None:
    link = FakeLink(auto_ack=True)
    client = make(tmp_path, link, clock=Clock())
    client.record_fix(fix(0))
    client.record_lock(LockEvent(T0, "X" * 70_000, LockEventKind.SEALED))  # over 64 KiB alone
    client.record_fix(fix(1))
    for _ in range(3):
        client.pump()
    assert client.backlog == (0, 0)
    assert [m.fixes for m in telemetry(link)] == [(fix(0),), (fix(1),)]


def test_the_background_pump_survives_a_failing_step(tmp_path: Path) -> None:
    link = FakeLink(auto_ack=True)
    client = make(tmp_path, link, clock=Clock())
    calls = {"n": 0}
    real = client._send

    def flaky() -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real()

    client._send = flaky  # type: ignore[method-assign]
    stop = threading.Event()
    worker = threading.Thread(target=client.run, args=(stop, 0.01), daemon=True)
    worker.start()
    client.record_fix(fix(0))
    assert client.wait_delivered(5)
    stop.set()
    worker.join(5)
    assert calls["n"] > 1
