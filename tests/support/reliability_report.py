"""Render ``docs/reliability.md`` from the tests themselves.

    python3 -m tests.support.reliability_report            # write docs/reliability.md
    python3 -m tests.support.reliability_report --check    # exit 1 if a listed test is missing

What each test proves is its docstring (and its module's docstring); the
figures are the latest ``test-artifacts/reliability/*.json`` that the tests
wrote through the ``reliability`` fixture (``tests/support/reliability.py``),
one line per database backend. Run the suites first (on SQLite, then on
PostgreSQL with ``WASTE_TEST_DATABASE_URL``), then this. Everything below the
``HAND_WRITTEN`` marker in the existing page is kept as it is.

To add a suite (e.g. the fault-injection tests), append a ``Section`` to
``SOURCES`` naming its files; tests there without figures are listed too.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.reliability import ARTIFACTS, ROOT

DOC = ROOT / "docs" / "reliability.md"
HAND_WRITTEN = "<!-- hand-written: the generator keeps everything below this line -->"
BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Section:
    """A heading of the page and the test files (globs from the repository root) under it."""

    title: str
    patterns: tuple[str, ...]


SOURCES: list[Section] = [
    Section(
        "Hostile input: the HTTP API",
        (
            "tests/security/test_schemathesis.py",
            "tests/security/test_authorization_matrix.py",
            "tests/security/test_tokens.py",
            "tests/security/test_secrets_in_logs.py",
        ),
    ),
    Section(
        "Hostile input: devices",
        (
            "tests/fuzz/test_*.py",
            "tests/security/test_device_impersonation.py",
            "tests/integration/test_mosquitto_acl.py",
        ),
    ),
    Section(
        "Tampering",
        (
            "tests/security/test_tampering.py",
            "tests/security/test_split_view.py",
            "tests/integration/test_verify_log.py",
        ),
    ),
    Section("Faults", ("tests/faults/test_*.py",)),
    Section("The page itself", ("tests/security/test_reliability_doc.py",)),
]

INTRO = """\
Regulators take this system's records to court; this page lists the tests that
show it holds under hostile input, tampering and faults, what each proves, and
the figures it printed the last time it ran. It is generated: edit the tests'
docstrings (or `tests/support/reliability_report.py`), run the suites, then
`python3 -m tests.support.reliability_report`. CI fails when a test is missing
from this page (`tests/security/test_reliability_doc.py`).

Run everything on both databases and the real broker as CI does:

```sh
python3 -m pytest tests/security tests/fuzz tests/integration/test_verify_log.py
WASTE_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
WASTE_TEST_MQTT_URL=mqtt://127.0.0.1:1883 \\
python3 -m pytest tests/security tests/fuzz tests/integration/test_verify_log.py
python3 -m tests.support.reliability_report
```
"""


@dataclass(frozen=True)
class TestDoc:
    """One test function: where it is, and what its docstring says it proves."""

    file: str
    name: str
    doc: str


@dataclass(frozen=True)
class ModuleDoc:
    """One test module: its docstring and its tests."""

    file: str
    doc: str
    tests: tuple[TestDoc, ...]


def files_of(section: Section) -> list[str]:
    """The section's test files, relative to the repository root, sorted."""
    found: set[str] = set()
    for pattern in section.patterns:
        found.update(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern) if p.is_file())
    return sorted(found)


def read_module(path: str) -> ModuleDoc:
    """The docstrings of a test module and of its top-level and class-level tests."""
    tree = ast.parse((ROOT / path).read_text("utf-8"), filename=path)
    tests: list[TestDoc] = []
    for node in tree.body:
        candidates: Iterable[ast.stmt] = [node]
        prefix = ""
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            candidates, prefix = node.body, f"{node.name}::"
        for item in candidates:
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith(
                "test"
            ):
                doc = ast.get_docstring(item) or ""
                tests.append(TestDoc(path, prefix + item.name, doc))
    return ModuleDoc(path, ast.get_docstring(tree) or "", tuple(tests))


def load_figures(directory: Path = ARTIFACTS) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Recorded figures by ``(file, function)``: every test id and backend, latest first."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(path.read_text("utf-8"))
            key = (str(record["file"]), str(record["function"]))
        except (ValueError, KeyError, TypeError):
            continue
        out.setdefault(key, []).append(record)
    for records in out.values():
        records.sort(key=lambda r: (str(r.get("test")), str(r.get("backend"))))
    return out


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def render_figures(records: list[dict[str, Any]]) -> list[str]:
    """One bullet per recorded test id and backend."""
    lines = []
    for record in records:
        params = str(record["test"]).partition("::")[2].removeprefix(str(record["function"]))
        figures = ", ".join(f"{k} = {_value(v)}" for k, v in dict(record["figures"]).items())
        where = f"{record.get('backend')}{' ' + params if params else ''}"
        day = str(record.get("recorded_at", ""))[:10]
        lines.append(f"- *{where}*, {day}: {figures}")
    return lines


def _from_name(name: str) -> str:
    """A test without a docstring: its name, read as a sentence."""
    words = name.rsplit("::", maxsplit=1)[-1].removeprefix("test_").replace("_", " ")
    return words[:1].upper() + words[1:] + "."


def render(hand_written: str = "") -> str:
    """The whole page."""
    figures = load_figures()
    out = ["# Reliability and security tests", "", INTRO]
    summary = ["| section | test files | tests | with figures |", "|---|---:|---:|---:|"]
    body: list[str] = []
    for section in SOURCES:
        modules = [read_module(f) for f in files_of(section)]
        tests = [t for m in modules for t in m.tests]
        measured = sum(1 for t in tests if (t.file, t.name.split("::")[-1]) in figures)
        summary.append(f"| {section.title} | {len(modules)} | {len(tests)} | {measured} |")
        body += ["", f"## {section.title}", ""]
        if not modules:
            body.append("(no test files yet)")
        for module in modules:
            body += [f"### `{module.file}`", ""]
            if module.doc:
                body += [module.doc, ""]
            for test in module.tests:
                body += [f"#### `{test.file}::{test.name}`", ""]
                body.append(test.doc or _from_name(test.name))
                body.append("")
                records = figures.get((test.file, test.name.split("::")[-1]), [])
                body += render_figures(records) if records else ["- no figures recorded"]
                body.append("")
    out += [*summary, *body, HAND_WRITTEN]
    if hand_written.strip():
        out += ["", hand_written.strip()]
    return "\n".join(out).rstrip() + "\n"


def listed_tests() -> list[str]:
    """``file::test`` of every test the page must list."""
    return [
        f"{t.file}::{t.name}"
        for section in SOURCES
        for f in files_of(section)
        for t in read_module(f).tests
    ]


def existing_hand_written(doc: Path = DOC) -> str:
    """The hand-written part of the current page (after the marker), or ''."""
    if not doc.exists():
        return ""
    _, marker, rest = doc.read_text("utf-8").partition(HAND_WRITTEN)
    return rest if marker else ""


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with ``--check`` say which tests it lacks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the page is current")
    args = parser.parse_args(argv)
    if args.check:
        text = DOC.read_text("utf-8") if DOC.exists() else ""
        missing = [t for t in listed_tests() if f"`{t}`" not in text]
        for test in missing:
            print(f"missing from {DOC.relative_to(ROOT)}: {test}")
        return 1 if missing else 0
    DOC.write_text(render(existing_hand_written()), "utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
