"""The demo's own data directory: starting fresh or continuing, its state and tokens files.

The directory (``waste demo --data-dir``, default ``./waste-demo``) holds the SQLite
database, the log key, the embedded Mosquitto's files, the simulated devices' state,
``demo-state.json`` (the county's seed and what the server assigned to its parties,
their tokens included: mode 0600) and ``tokens.txt`` (the same tokens for people,
0600). A marker file says the directory is the demo's, so ``--fresh`` never wipes a
directory it did not make.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from waste.demo.options import Restart

__all__ = ["DataDirError", "DemoState", "prepare", "save_state", "write_tokens"]

MARKER = ".waste-demo"
STATE_FILE = "demo-state.json"
TOKENS_FILE = "tokens.txt"
_FORMAT = 1


class DataDirError(RuntimeError):
    """The data directory cannot be used as asked (the message says why and what to do)."""


@dataclass
class DemoState:
    """What a later ``--continue`` needs: the county's recipe and the server's ids for it."""

    seed: int
    lat: float
    lon: float
    region_code: str
    name: str
    tag: str
    serial: int
    days: int = 0
    ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    vehicles: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, *, seed: int, lat: float, lon: float, region_code: str, name: str) -> DemoState:
        """A state for a fresh county (a random tag keeps plates and ids unique per directory)."""
        return cls(
            seed=seed,
            lat=lat,
            lon=lon,
            region_code=region_code,
            name=name,
            tag=secrets.token_hex(2).upper()[:3],
            serial=secrets.randbelow(900) + 100,
        )

    @classmethod
    def from_json(cls, raw: Any) -> DemoState:
        """Parse the state file's content; ``DataDirError`` if it is not one."""
        try:
            if raw.get("format") != _FORMAT:
                raise ValueError("unknown format")
            return cls(
                seed=int(raw["seed"]),
                lat=float(raw["lat"]),
                lon=float(raw["lon"]),
                region_code=str(raw["region_code"]),
                name=str(raw["name"]),
                tag=str(raw["tag"]),
                serial=int(raw["serial"]),
                days=int(raw["days"]),
                ids={str(k): str(v) for k, v in raw["ids"].items()},
                tokens={str(k): str(v) for k, v in raw["tokens"].items()},
                vehicles={str(k): str(v) for k, v in raw["vehicles"].items()},
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            why = f"{STATE_FILE} is damaged ({exc}); start again with --fresh"
            raise DataDirError(why) from exc


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (then replace atomically)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
    os.replace(tmp, path)


def save_state(data_dir: Path, state: DemoState) -> None:
    """Write ``demo-state.json`` (0600: it holds tokens)."""
    body = {"format": _FORMAT, **asdict(state)}
    _write_private(data_dir / STATE_FILE, json.dumps(body, indent=1, ensure_ascii=False) + "\n")


def write_tokens(data_dir: Path, state: DemoState, names: dict[str, str]) -> Path:
    """Write ``tokens.txt`` (0600): one line per party, the regulator first; its path."""
    order = sorted(state.tokens, key=lambda k: (k != "regulator", k))
    lines = [
        "# API tokens of the demo's parties (sign in to the console with the regulator's).",
        "# party key\tname\ttoken",
    ]
    lines += [f"{key}\t{names.get(key, key)}\t{state.tokens[key]}" for key in order]
    path = data_dir / TOKENS_FILE
    _write_private(path, "\n".join(lines) + "\n")
    return path


def _load(data_dir: Path) -> DemoState | None:
    path = data_dir / STATE_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataDirError(f"cannot read {path} ({exc}); start again with --fresh") from exc
    return DemoState.from_json(raw)


def _wipe(data_dir: Path) -> None:
    if not (data_dir / MARKER).exists():
        raise DataDirError(
            f"{data_dir} is not empty and was not made by the demo: refusing to wipe it; "
            "give another --data-dir"
        )
    for child in data_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def prepare(
    data_dir: Path,
    restart: Restart,
    *,
    own_database: bool,
    ask: Callable[[], Restart] | None = None,
) -> DemoState | None:
    """Make ``data_dir`` ready; the state to continue from, or None to start a fresh county.

    ``restart`` ASK uses ``ask`` (a prompt) when a previous demo is there, and fails
    without one. Fresh wipes the directory, which must be the demo's; with a database
    outside it (``own_database`` False) only a directory with no demo in it can be fresh.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = _load(data_dir)
    if previous is None and restart is Restart.CONTINUE:
        raise DataDirError(f"nothing to continue in {data_dir}: run without --continue")
    if previous is not None and restart is Restart.ASK:
        if ask is None:
            raise DataDirError(
                f"{data_dir} holds a previous demo: pass --continue (add a day) "
                "or --fresh (wipe it and start again)"
            )
        restart = ask()
    if previous is not None and restart is Restart.CONTINUE:
        return previous
    if any(data_dir.iterdir()):
        if not own_database and previous is not None:
            raise DataDirError(
                "--fresh cannot empty a database outside the data directory; drop it "
                "yourself, or use --continue"
            )
        _wipe(data_dir)
    (data_dir / MARKER).write_text("made by `waste demo`; --fresh may wipe this directory\n")
    return None
