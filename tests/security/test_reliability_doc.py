"""``docs/reliability.md`` is generated from the tests and stays current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import reliability_report as report
from tests.support.reliability import write_figures


def test_the_page_lists_every_reliability_test() -> None:
    """Every test of the files the page covers appears in docs/reliability.md by
    ``file::test``: a test added without regenerating the page fails here (run
    ``python3 -m tests.support.reliability_report``)."""
    text = report.DOC.read_text("utf-8")
    missing = [t for t in report.listed_tests() if f"`{t}`" not in text]
    assert not missing, "regenerate docs/reliability.md; missing: " + ", ".join(missing)
    assert report.HAND_WRITTEN in text


def test_the_page_is_rendered_from_recorded_figures_and_docstrings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Figures a test records (per backend) and its docstring end up on the page, and the
    hand-written part after the marker is kept as it is."""
    artifacts = tmp_path / "reliability"
    monkeypatch.setattr("tests.support.reliability.ARTIFACTS", artifacts)
    nodeid = "tests/security/test_reliability_doc.py::test_the_page_lists_every_reliability_test"
    write_figures(nodeid, {"cases": 12, "failures": 0}, on="sqlite")
    write_figures(nodeid, {"cases": 13, "failures": 0}, on="postgresql")
    records = report.load_figures(artifacts)
    key = ("tests/security/test_reliability_doc.py", "test_the_page_lists_every_reliability_test")
    assert [r["backend"] for r in records[key]] == ["postgresql", "sqlite"]
    monkeypatch.setattr(report, "load_figures", lambda: records)
    page = report.render("## Kept\n\nby hand")
    assert "- *sqlite*" in page
    assert "cases = 12, failures = 0" in page
    assert "cases = 13, failures = 0" in page
    assert "Every test of the files the page covers appears" in page
    assert page.rstrip().endswith("## Kept\n\nby hand")
    assert json.loads((artifacts / next(p.name for p in artifacts.iterdir())).read_text())
