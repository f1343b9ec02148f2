"""A bounded run of the atheris (libFuzzer) harness, ``tests/fuzz/atheris_harness.py``.

Each target runs in its own process for a fixed number of inputs, seeded with
valid messages; a crash (an undocumented exception) fails the test with
libFuzzer's report. For a long hunt run the harness by hand (its docstring
says how). atheris builds on Linux x86-64 (the dev extra installs it there);
elsewhere these tests are skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devices.jt808 import encode_location
from devices.signing import encode_lock, encode_telemetry
from gateway.payloads import Fix, LockEvent, LockEventKind
from tests.support.reliability import ROOT, Recorder

pytest.importorskip("atheris", reason="atheris builds only on Linux x86-64")

HARNESS = ROOT / "tests" / "fuzz" / "atheris_harness.py"
RUNS = int(os.environ.get("WASTE_ATHERIS_RUNS", "3000"))


def _seeds(corpus: Path, target: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
    now = datetime(2026, 11, 23, 7, 59, tzinfo=UTC)
    telemetry = encode_telemetry("DEV-FUZZ", 1, [Fix(now, 29.3, 120.07, 40.0, 90.0, 0.8)], key)
    lock = encode_lock("DEV-FUZZ", 2, LockEvent(now, "SEAL-1", LockEventKind.SEALED), key)
    seeds = {
        "payloads": [b"\x00" + telemetry, b"\x01" + lock, b'\x02{"online": true}'],
        "signed": [telemetry, lock],
        "jt808": [encode_location(phone="13800138000", serial=1, time=now, lat=29.3, lon=120.1)],
    }[target]
    corpus.mkdir()
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(seed)


@pytest.mark.parametrize("target", ["payloads", "signed", "jt808"])
def test_atheris_finds_no_crash(target: str, tmp_path: Path, reliability: Recorder) -> None:
    """libFuzzer, coverage-guided and seeded with valid messages, runs the decoder on a
    bounded number of inputs (``WASTE_ATHERIS_RUNS``, default 3000) of up to 64 KiB
    without finding an undocumented exception."""
    corpus = tmp_path / "corpus"
    _seeds(corpus, target)
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            target,
            f"-runs={RUNS}",
            "-max_len=65536",
            "-timeout=10",
            "-rss_limit_mb=1024",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    report = proc.stderr[-4000:]
    assert proc.returncode == 0, report
    done = re.search(r"Done (\d+) runs", proc.stderr)
    coverage = re.findall(r"cov: (\d+)", proc.stderr)
    assert done is not None, report
    reliability(
        runs=int(done.group(1)),
        coverage_edges=int(coverage[-1]) if coverage else 0,
        crashes=0,
    )
