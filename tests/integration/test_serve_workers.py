"""``waste serve --workers N``: the parent migrates and makes the log key once; the
workers share them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway._mosquitto import free_port
from tests.support.databases import DatabaseFactory
from waste.config import Settings
from waste.db import make_engine
from waste.migrate import current_revision, head_revision


def test_two_workers_share_one_schema_and_one_log_key(
    db_factory: DatabaseFactory, tmp_path: Path
) -> None:
    url = db_factory.empty_url()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASTE_")}
    env |= {
        "WASTE_DATABASE_URL": url,
        "WASTE_DATA_DIR": str(tmp_path / "data"),
        "WASTE_AUTO_MIGRATE": "true",
        "WASTE_ADMIN_TOKEN": "t" * 40,
    }
    log = tmp_path / "serve.log"
    command = [sys.executable, "-c", "from waste.cli import main; main()", "serve"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        keys = {httpx.get(f"{base}/v1/log/key", timeout=5).text for _ in range(20)}
        assert len(keys) == 1
        settings = Settings(data_dir=tmp_path / "data", database_url=url)
        assert settings.resolved_log_key_path.exists()  # made once, by the parent
        text = log.read_text()
        assert text.count("Started server process") == 2, text
        assert "2 workers" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    engine = make_engine(url)
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()
    db_factory.drop(url)


def test_the_example_registry_needs_a_single_worker(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASTE_")}
    env["WASTE_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", "from waste.cli import main; main()", "serve", "--workers", "2",
         "--example"],
        env=env, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert b"--example needs one worker" in done.stderr
