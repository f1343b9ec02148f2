"""The device's durable state: a seq counter that never repeats, and the outbox."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.store import Outbox, RecordKind, SeqCounter, SeqCounterError

T = datetime(2026, 11, 23, 8, tzinfo=UTC)


def test_seq_continues_after_a_clean_restart(tmp_path: Path) -> None:
    path = tmp_path / "seq"
    first = SeqCounter(path, block=10)
    used = [first.next() for _ in range(3)]
    assert used == [0, 1, 2]
    again = SeqCounter(path, block=10)
    # The rest of the reserved block is skipped, never reused.
    assert again.next() == 10


def test_a_new_counter_starts_at_the_clock_in_milliseconds(tmp_path: Path) -> None:
    counter = SeqCounter(tmp_path / "seq", initial=lambda: int(T.timestamp() * 1000))
    assert counter.next() == int(T.timestamp() * 1000)


def test_the_file_holds_the_high_water_mark_written_before_use(tmp_path: Path) -> None:
    path = tmp_path / "seq"
    counter = SeqCounter(path, block=5)
    assert not path.exists()  # nothing reserved before the first use
    counter.next()
    assert path.read_text() == "5\n"
    for _ in range(4):
        counter.next()
    assert path.read_text() == "5\n"
    counter.next()  # the sixth needs the next block
    assert path.read_text() == "10\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


_CRASHER = """
import os, sys
from devices.store import SeqCounter
c = SeqCounter(sys.argv[1], block=int(sys.argv[2]))
for _ in range(int(sys.argv[3])):
    print(c.next(), flush=True)
os._exit(9)  # no clean-up of any kind: as a power cut would
"""


def _crash_after(path: Path, block: int, count: int) -> list[int]:
    out = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(path), str(block), str(count)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 9, out.stderr
    return [int(line) for line in out.stdout.split()]


def test_no_seq_is_reused_across_crashed_processes(tmp_path: Path) -> None:
    path = tmp_path / "seq"
    seen: list[int] = []
    for count in (3, 7, 1, 12, 0, 5):
        seen += _crash_after(path, 4, count)
    assert len(seen) == len(set(seen)) == 28
    assert seen == sorted(seen)


@settings(max_examples=30, deadline=None)
@given(runs=st.lists(st.integers(0, 25), min_size=1, max_size=8), block=st.integers(1, 10))
def test_values_strictly_increase_over_any_restarts(
    tmp_path_factory: pytest.TempPathFactory, runs: list[int], block: int
) -> None:
    path = tmp_path_factory.mktemp("seq") / "seq"
    seen: list[int] = []
    for count in runs:
        counter = SeqCounter(path, block=block)
        seen += [counter.next() for _ in range(count)]
    assert all(a < b for a, b in itertools.pairwise(seen))


@pytest.mark.parametrize("content", ["", "abc\n", "-5\n", "1e9\n", "99999999999999999\n"])
def test_a_corrupt_counter_is_refused_not_guessed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "seq"
    path.write_text(content)
    with pytest.raises(SeqCounterError):
        SeqCounter(path)


def test_a_leftover_temp_file_does_not_matter(tmp_path: Path) -> None:
    path = tmp_path / "seq"
    SeqCounter(path, block=3).next()
    (tmp_path / ".seq.tmp").write_text("garbage")  # a crash between write and rename
    assert SeqCounter(path, block=3).next() == 3


def test_records_become_a_message_in_one_step_and_leave_on_ack(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    for i in range(3):
        box.add(RecordKind.FIX, {"t": f"2026-11-23T08:00:0{i}Z", "lat": 1, "lon": 2}, T)
    records = box.pending(10)
    assert [r.wire["t"][-3:] for r in records] == ["00Z", "01Z", "02Z"]
    message = box.form(records[:2], 42, "topic", b"payload", T)
    assert box.counts() == (1, 1)
    assert [m.seq for m in box.unacked()] == [42]
    assert box.acknowledge(message.ord)
    assert not box.acknowledge(message.ord)
    assert box.counts() == (1, 0)


def test_the_outbox_survives_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.add(RecordKind.LOCK, {"t": "2026-11-23T08:00:00Z"}, T)
    box.form(box.pending(1), 7, "topic", b"\x00bytes", T)
    box.add(RecordKind.FIX, {"t": "2026-11-23T08:00:01Z"}, T)
    box.close()
    again = Outbox(tmp_path / "o.sqlite")
    assert again.counts() == (1, 1)
    assert again.unacked()[0].payload == b"\x00bytes"
    assert again.pending(5)[0].kind is RecordKind.FIX


def test_a_record_that_is_not_json_is_refused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    with pytest.raises(ValueError):
        box.add(RecordKind.FIX, {"lat": float("nan")}, T)
    assert box.counts() == (0, 0)


def test_state_files_are_private(tmp_path: Path) -> None:
    SeqCounter(tmp_path / "seq").next()
    assert os.stat(tmp_path / "seq").st_mode & 0o077 == 0
