"""Run reports for CI systems: `--output results.json | junit.xml | results.csv`.

Results are streamed from the store into the file, so a 100,000-case run is never held in
memory. The format follows the file's extension.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from store.errors import InvalidInput
from store.evals import EvalStore

FORMATS = {".json": "json", ".xml": "junit", ".csv": "csv"}
CSV_COLUMNS = ("case", "model", "repeat", "status", "score", "input", "expected", "output", "reason",
               "error", "latency_ms", "input_tokens", "output_tokens", "cost_usd", "cache_hit")


def write_report(evals: EvalStore, run: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(f"--output {path.name}: name the file .json, .xml (JUnit) or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        {"json": _json, "junit": _junit, "csv": _csv}[fmt](evals, run, fh)
    tmp.replace(path)
    return path


def _rows(evals: EvalStore, run_id: str) -> Iterator[dict[str, Any]]:
    for r in evals.iter_results(run_id):
        yield {
            "case": r["case_idx"], "model": r["model"], "repeat": r["repeat"], "status": r["status"],
            "score": r["score"], "input": r["input"], "expected": r["expected"], "output": r["output"],
            "reason": r["reason"], "error": r["error"], "latency_ms": r["latency_ms"],
            "input_tokens": r["input_tokens"], "output_tokens": r["output_tokens"],
            "cost_usd": r["cost_usd"], "cache_hit": r["cache_hit"], "checks": r["checks"],
        }


def _json(evals: EvalStore, run: dict[str, Any], fh: Any) -> None:
    head = {k: run[k] for k in ("id", "kind", "suite_name", "prompt_id", "prompt_version", "models",
                                "repeat", "status", "started_at", "finished_at", "judge_key")}
    head["summary"] = run.get("summary")
    text = json.dumps(head, ensure_ascii=False, indent=1)
    fh.write(text[:-2] + ',\n "results": [\n')
    first = True
    for row in _rows(evals, run["id"]):
        fh.write(("" if first else ",\n") + "  " + json.dumps(row, ensure_ascii=False))
        first = False
    fh.write("\n ]\n}\n")


def _csv(evals: EvalStore, run: dict[str, Any], fh: Any) -> None:
    writer = csv.writer(fh)
    writer.writerow(CSV_COLUMNS)
    for row in _rows(evals, run["id"]):
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])


def _junit(evals: EvalStore, run: dict[str, Any], fh: Any) -> None:
    summary = run.get("summary") or {}
    failures = summary.get("failed", 0) + summary.get("unchecked", 0)
    name = f"promstack.{run['suite_name']}"
    fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    fh.write(f"<testsuites name={quoteattr(name)} tests=\"{summary.get('results', 0)}\" "
             f"failures=\"{failures}\" errors=\"{summary.get('errors', 0)}\">\n")
    fh.write(f"  <testsuite name={quoteattr(name)} tests=\"{summary.get('results', 0)}\" "
             f"failures=\"{failures}\" errors=\"{summary.get('errors', 0)}\" "
             f"timestamp={quoteattr(run.get('started_at') or '')}>\n")
    fh.write(f"    <properties><property name=\"run\" value={quoteattr(run['id'])}/>"
             f"<property name=\"prompt\" value=\"{run['prompt_id']}@{run['prompt_version']}\"/>"
             f"<property name=\"score\" value=\"{_score(summary)}\"/></properties>\n")
    for row in _rows(evals, run["id"]):
        label = f"case {row['case']}" + (f" #{row['repeat']}" if row["repeat"] else "")
        seconds = (row["latency_ms"] or 0) / 1000
        fh.write(f"    <testcase classname={quoteattr(name + '.' + row['model'])} name={quoteattr(label)} "
                 f"time=\"{seconds:.3f}\">")
        why = escape(row["reason"] or row["error"] or "")
        if row["status"] == "fail":
            fh.write(f"<failure message={quoteattr(_line(row['reason']))}>{why}</failure>")
        elif row["status"] == "unchecked":
            fh.write(f"<failure message=\"nothing to check\" type=\"unchecked\">{why}</failure>")
        elif row["status"] == "error":
            fh.write(f"<error message={quoteattr(_line(row['error']))}>{why}</error>")
        if row["output"] is not None:
            fh.write(f"<system-out>{escape(row['output'])}</system-out>")
        fh.write("</testcase>\n")
    fh.write("  </testsuite>\n</testsuites>\n")


def _line(text: Any) -> str:
    text = str(text or "").replace("\n", " ")
    return text if len(text) <= 200 else text[:199] + "…"


def _score(summary: dict[str, Any]) -> str:
    """The run's score, or 'unscored' when a case could not be scored (never a 0)."""
    score = summary.get("score")
    return "unscored" if score is None and summary.get("unscored") else str(score if score is not None else 0)
