"""Issue 8's fault, hostile-input and erasure tests, run with pytest, reported per test with what was lost.

    python bench/reliability.py [--out bench/results/reliability.json] [--timeout-s 3600]

Runs `.venv/bin/python -m pytest` (HF_HUB_OFFLINE=1) as a subprocess on:
- faults: tests/faults/test_faults.py (Redis killed and restarted under the API, the vector store down during
  /respond, the LLM server down or hung for /respond and for extraction) and tests/worker/test_worker_killed.py
  (`heedful serve` SIGKILLed while its worker holds a batch);
- hostile: tests/hostile/ (cross-user and cross-app access on every route, deep nesting, control characters and
  invalid UTF-8, oversize bodies, 10,000 memories for one user, planted memories, rate limits per API key and per
  user token) and tests/api/test_schema_fuzz.py (schemathesis on every route, with an API key);
- erasure: tests/worker/test_erasure_in_flight.py (a user erased while the worker holds their conversation).

Each test's outcome and seconds (setup, call and teardown) come from pytest's JUnit XML (a --junitxml to a temp
file). What was tried is the first paragraph of the test's docstring (else its module's); what was lost is the
test's own docstring paragraph that starts "Lost:" (null when the test has none). A strict xfail is recorded as
"xfailed", a known bug the test names, not as a pass. Also records whether each test is collected by `make test`'s pytest command
(`python -m pytest -q`, which `.ci/run` runs). Prints a table, writes bench/results/reliability.json and exits 1
if any test failed or errored. Needs Redis (HEEDFUL_TEST_REDIS_URL, default 127.0.0.1:6379), redis-server on
PATH and the converted SmolLM2 under var/models (the worker and hostile tests load it).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "reliability.json"
# The points of issue 8 these tests show, and where each one's tests live (load has its own bench/load.py).
POINTS: dict[str, tuple[str, ...]] = {
    "faults": ("tests/faults/test_faults.py", "tests/worker/test_worker_killed.py"),
    "hostile": ("tests/hostile", "tests/api/test_schema_fuzz.py"),
    "erasure": ("tests/worker/test_erasure_in_flight.py",),
}
FAILED = ("failed", "error")
PYTEST_OPTIONS = ["-q", "-rfExX", "-p", "no:cacheprovider"]  # plus a --junitxml to a temp file


def venv_python() -> str:
    python = ROOT / ".venv" / "bin" / "python"
    return str(python) if python.exists() else sys.executable


def shown(path: str) -> str:
    return os.path.relpath(path, ROOT) if path.startswith(str(ROOT)) else path


def point_of(path: str) -> str:
    return next(point for point, places in POINTS.items() for place in places if path.startswith(place))


def run_pytest(args: list[str], timeout_s: float) -> int:
    """pytest in its own process group, so a timeout also ends the servers the tests started."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([venv_python(), "-m", "pytest", *args], cwd=ROOT, env=env, start_new_session=True)
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        print(f"pytest did not finish within {timeout_s:.0f} s and was killed", file=sys.stderr)
        return -1


def collected_by_make_test() -> set[str]:
    """Node ids `make test` would run: its pytest command, collection only."""
    listing = subprocess.run(
        [venv_python(), "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    return {line.strip() for line in listing.stdout.splitlines() if "::" in line}


def outcomes(junit: Path) -> dict[str, dict[str, Any]]:
    """nodeid -> outcome, seconds, message; a test reported twice (an error in teardown) keeps the worse outcome."""
    found: dict[str, dict[str, Any]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname") or case.get("name") or ""  # a module that failed to import has no classname
        path = module.replace(".", "/") + ".py"
        nodeid = f"{path}::{case.get('name')}" if case.get("classname") else path
        outcome, message = "passed", None
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = ("failed" if child.tag == "failure" else "error"), child.get("message")
            elif child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                outcome, message = ("xfailed" if xfail else "skipped"), child.get("message")
        seconds = float(case.get("time") or 0)
        if nodeid in found:
            seconds += found[nodeid]["seconds"]
            if found[nodeid]["outcome"] in FAILED:
                outcome, message = found[nodeid]["outcome"], found[nodeid]["message"]
        found[nodeid] = {"outcome": outcome, "seconds": round(seconds, 2), "message": message}
    return found


def docstrings(nodeid: str) -> tuple[str, str]:
    """(the test function's docstring, its module's)."""
    path, _, name = nodeid.partition("::")
    function = name.split("[", 1)[0]
    tree = ast.parse((ROOT / path).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return ast.get_docstring(node) or "", ast.get_docstring(tree) or ""
    return "", ast.get_docstring(tree) or ""


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]


def described(nodeid: str) -> tuple[str | None, str | None]:
    """(what was tried: the test's docstring's first paragraph, else its module's; what was lost: the test's
    "Lost:" paragraph, never taken from elsewhere)."""
    if "::" not in nodeid:
        return None, None
    own, module = (paragraphs(text) for text in docstrings(nodeid))
    lost = next((p.removeprefix("Lost:").strip() for p in own if p.startswith("Lost:")), None)
    tried = next((p for p in own if not p.startswith("Lost:")), None) or next(iter(module), None)
    return tried, lost


def render(tests: list[dict[str, Any]]) -> str:
    lines = ["| point | test | outcome | s | lost |", "|---|---|---|---:|---|"]
    for t in tests:
        lost = t["lost"] or "(not stated by the test)"
        lost = lost if len(lost) <= 100 else lost[:97] + "..."
        name = t["nodeid"].rsplit("::", 1)[-1]
        lines.append(f"| {t['point']} | {name} | {t['outcome']} | {t['seconds']:.1f} | {lost} |")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--timeout-s", type=float, default=3600, help="the whole pytest run is killed after this")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    paths = [place for places in POINTS.values() for place in places]
    began, load_at_start = time.monotonic(), os.getloadavg()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="heedful-reliability-") as tmp:
        junit = Path(tmp) / "junit.xml"
        exit_code = run_pytest([*PYTEST_OPTIONS, f"--junitxml={junit}", *paths], args.timeout_s)
        pytest_seconds = round(time.monotonic() - began, 1)
        results = outcomes(junit) if junit.exists() else {}
    in_make_test = collected_by_make_test()
    tests = []
    for nodeid, result in results.items():
        tried, lost = described(nodeid)
        tests.append(
            {
                "nodeid": nodeid,
                "point": point_of(nodeid),
                "tried": tried,
                **result,
                "lost": lost,
                "in_make_test": nodeid in in_make_test,
            }
        )
    tests.sort(key=lambda t: (list(POINTS).index(t["point"]), t["nodeid"]))
    doc = {
        "command": "python bench/reliability.py",
        "pytest": " ".join(["HF_HUB_OFFLINE=1", shown(venv_python()), "-m", "pytest", *PYTEST_OPTIONS, *paths]),
        "pytest_exit_code": exit_code,
        "started_at": started_at,
        "pytest_seconds": pytest_seconds,
        "seconds": round(time.monotonic() - began, 1),  # and the collection of the whole suite
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_at_start": load_at_start,
        "loadavg_at_end": os.getloadavg(),
        "summary": {point: dict(Counter(t["outcome"] for t in tests if t["point"] == point)) for point in POINTS},
        "tests": tests,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(render(tests))
    failed = [t["nodeid"] for t in tests if t["outcome"] in FAILED]
    unstated = [t["nodeid"] for t in tests if t["lost"] is None]
    outside = [t["nodeid"] for t in tests if not t["in_make_test"]]
    print(f"{len(tests)} tests: {doc['summary']}; pytest exit code {exit_code}; {doc['seconds']} s")
    print(f"load average {doc['loadavg_at_start']} -> {doc['loadavg_at_end']}; wrote {args.out}")
    for label, ids in (("FAILED", failed), ("no 'Lost:' line", unstated), ("not collected by make test", outside)):
        if ids:
            print(f"{label}: {', '.join(ids)}")
    return 1 if failed or exit_code != 0 or not tests else 0


if __name__ == "__main__":
    raise SystemExit(main())
