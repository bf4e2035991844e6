"""Every GPU check in one command, for whoever has a CUDA machine (``benchmarks/gpu_check.sh`` runs this).

Steps, in order, each under its own time limit and all together under ``--budget-s`` (default 470 s, so the whole
check ends within 8 minutes):

1. ``pytest -m cuda`` over the whole test tree (every ``cuda``-marked test);
2. the CuPy kernel tests (``tests/kernels``, ``tests/tasks/test_mq_postprocessing.py``);
3. ``benchmarks/kernels.py`` (cosine top-k, incremental edges, soft-NMS at N = 5000 against the CPU path);
4. ``benchmarks/stream_step.py --device cuda`` (per-push cost of the authors' depth-8 engine);
5. ``benchmarks/window_cost.py`` (every task per window) when the file exists;
6. ``benchmarks/pipeline.py`` (decode → extract → engine → sink, x-real-time);
7. ``benchmarks/extractors.py --device cuda``.

Every JSON record the steps print goes to ``--out`` (default ``gpu_check.jsonl``), one line each, with the step's
name added as ``"step"``; a last line per step records its exit status and seconds. Then one JSON summary is printed
(tests passed/failed, soft-NMS speed-up, engine push p50, window cost, pipeline x-real-time, extractor x-real-time)
followed by markdown table rows for the README, naming the GPU.

Goldens: when ``.gpu_fixtures/golden`` exists (see the README's "GPU checks"), ``EGOSTREAM_GOLDEN_DIR`` points at it.

Usage: ``benchmarks/gpu_check.sh [--dry-run] [--out FILE] [--budget-s S] [--python PY]``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUDGET_S = 470.0


@dataclass(frozen=True)
class Step:
    """One command of the check: ``name``, its argument vector (run from the repository root), its own limit."""

    name: str
    argv: tuple[str, ...]
    timeout_s: float


@dataclass
class StepResult:
    """What one step left: exit status (``None``: not run, time budget spent), seconds, stdout, its JSON records."""

    step: Step
    returncode: int | None
    seconds: float
    stdout: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)


def plan(python: str, root: Path = ROOT) -> list[Step]:
    """The steps, in order (``window_cost`` only when ``benchmarks/window_cost.py`` exists)."""
    pytest = (python, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    steps = [
        Step("pytest_cuda", (*pytest, "-m", "cuda", "tests"), 120),
        Step("pytest_kernels", (*pytest, "tests/kernels", "tests/tasks/test_mq_postprocessing.py"), 60),
        Step("kernels", (python, "benchmarks/kernels.py", "--repeats", "5"), 100),
        Step("stream_step", (python, "benchmarks/stream_step.py", "--device", "cuda", "--timed", "50",
                             "--fast-forward", "512"), 60),
    ]
    window_cost = root / "benchmarks" / "window_cost.py"
    if window_cost.is_file():
        takes_device = "--device" in window_cost.read_text()
        steps.append(Step("window_cost", (python, "benchmarks/window_cost.py", "--presets", "egovlp",
                                          "--horizons-min", "8", *(("--device", "cuda") if takes_device else ())),
                          40))
    steps += [
        Step("pipeline", (python, "benchmarks/pipeline.py", "--seconds", "20"), 50),
        Step("extractors", (python, "benchmarks/extractors.py", "--device", "cuda", "--batch", "8", "--dtype",
                            "float32", "--dtype", "bfloat16", "--repeats", "3"), 50),
    ]
    return steps


def json_records(text: str) -> list[dict[str, Any]]:
    """The JSON objects in a step's stdout: one per line, or one document spread over several lines (as
    ``benchmarks/pipeline.py`` prints); other lines are ignored."""
    records: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    position = 0
    while True:
        start = text.find("{", position)
        if start < 0:
            return records
        line_start = text.rfind("\n", 0, start) + 1
        if text[line_start:start].strip():  # a brace inside a text line, not the start of a record
            position = start + 1
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        if isinstance(value, dict):
            records.append(value)
        position = end


_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")


def pytest_counts(text: str) -> dict[str, int]:
    """``{"passed": n, "failed": n, ...}`` from pytest's last summary line (``error``/``errors`` as ``errors``)."""
    lines = [line for line in text.splitlines() if _PYTEST_COUNT.search(line)]
    if not lines:
        return {}
    counts: dict[str, int] = {}
    for number, word in _PYTEST_COUNT.findall(lines[-1]):
        counts["errors" if word.startswith("error") else word] = int(number)
    return counts


def _first(records: Sequence[Mapping[str, Any]], **match: Any) -> Mapping[str, Any] | None:
    return next((r for r in records if all(r.get(key) == value for key, value in match.items())), None)


def summarize(results: Sequence[StepResult], gpu: str | None) -> dict[str, Any]:
    """One JSON object: per step its status and seconds, the test counts, and the headline numbers."""
    by_name = {result.step.name: result for result in results}
    summary: dict[str, Any] = {"gpu": gpu, "steps": {
        result.step.name: {"returncode": result.returncode, "seconds": round(result.seconds, 1)}
        for result in results}}
    for name in ("pytest_cuda", "pytest_kernels"):
        if name in by_name:
            summary[name] = pytest_counts(by_name[name].stdout)
    kernels = by_name["kernels"].records if "kernels" in by_name else []
    targets = _first(kernels, kernel="targets") or {}
    summary["soft_nms_cupy_speedup_at_5000"] = targets.get("soft_nms_cupy_speedup_at_5000")
    summary["soft_nms_target_met"] = targets.get("soft_nms_target_met")
    summary["topk_target_met"] = targets.get("topk_target_met")
    steps = by_name["stream_step"].records if "stream_step" in by_name else []
    summary["engine_push_ms_p50"] = {
        f"{r['mode']}_{r['stream_rows']}rows_{r['horizon_rows']}horizon": r["push_ms_p50"]
        for r in steps if "push_ms_p50" in r}
    window = by_name["window_cost"].records if "window_cost" in by_name else []
    summary["window_cost"] = [{key: value for key, value in r.items() if "p50" in key or key in ("depth", "tasks")}
                              for r in window]
    pipeline = by_name["pipeline"].records if "pipeline" in by_name else []
    summary["pipeline_x_real_time"] = {case["case"]: case.get("x_real_time", case.get("skipped"))
                                       for record in pipeline for case in record.get("cases", [])}
    extractors = by_name["extractors"].records if "extractors" in by_name else []
    summary["extractor_x_real_time"] = {f"{r['arch']}_{r['dtype']}_b{r['batch']}": r["x_real_time"]
                                        for r in extractors if "x_real_time" in r and "arch" in r}
    summary["all_steps_passed"] = all(result.returncode == 0 for result in results)
    return summary


def table_rows(summary: Mapping[str, Any]) -> list[str]:
    """Markdown rows ``| measurement | value | machine |`` of the headline numbers (the README's GPU table)."""
    machine = summary.get("gpu") or "no GPU"
    rows = []

    def add(name: str, value: Any) -> None:
        if value is not None:
            rows.append(f"| {name} | {value} | {machine} |")

    for name in ("pytest_cuda", "pytest_kernels"):
        counts = summary.get(name)
        if counts:
            add(f"`{name}`", ", ".join(f"{n} {word}" for word, n in counts.items()))
    add("CuPy soft-NMS vs CPU at N = 5000 (x)", summary.get("soft_nms_cupy_speedup_at_5000"))
    for key, value in summary.get("engine_push_ms_p50", {}).items():
        add(f"engine push p50 ms ({key})", value)
    for record in summary.get("window_cost", []):
        for key, value in record.items():
            if "p50" in key:
                add(f"window cost {key}", value)
    for case, value in summary.get("pipeline_x_real_time", {}).items():
        add(f"pipeline x-real-time ({case})", value)
    for key, value in summary.get("extractor_x_real_time", {}).items():
        add(f"extractor x-real-time ({key})", value)
    return rows


def _gpu_name(python: str) -> str | None:
    probe = "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    try:
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found or None


def run_steps(steps: Sequence[Step], out: Path, budget_s: float, env: Mapping[str, str]) -> list[StepResult]:
    """Run every step from the repository root (stdout captured, stderr passed through), writing its records and
    a status line to ``out`` as they come; a step gets what is left of ``budget_s`` when that is less than its own
    limit, and is not started once nothing is left."""
    began = time.monotonic()
    results = []
    with out.open("w") as sink:
        for step in steps:
            left = budget_s - (time.monotonic() - began)
            if left < 5:
                results.append(StepResult(step, None, 0.0))
                sink.write(json.dumps({"step": step.name, "status": "not run: time budget spent"}) + "\n")
                continue
            start = time.monotonic()
            try:
                done = subprocess.run(step.argv, cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, text=True,
                                      timeout=min(step.timeout_s, left))
                stdout, code = done.stdout, done.returncode
            except subprocess.TimeoutExpired as expired:
                stdout = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
                code = 124
            result = StepResult(step, code, time.monotonic() - start, stdout, json_records(stdout))
            results.append(result)
            for record in result.records:
                sink.write(json.dumps({"step": step.name, **record}) + "\n")
            sink.write(json.dumps({"step": step.name, "status": "done", "returncode": code,
                                   "seconds": round(result.seconds, 1)}) + "\n")
            sink.flush()
            sys.stderr.write(f"gpu_check: {step.name}: exit {code} in {result.seconds:.0f} s\n")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the steps (one JSON line each), run nothing")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.jsonl"), help="file of every JSON record")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="limit for all steps together")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the steps")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error("--budget-s must be positive")
    steps = plan(args.python)
    if args.dry_run:
        for step in steps:
            print(json.dumps({"step": step.name, "argv": list(step.argv), "timeout_s": step.timeout_s}))
        return 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    golden = ROOT / ".gpu_fixtures" / "golden"
    if golden.is_dir() and "EGOSTREAM_GOLDEN_DIR" not in env:
        env["EGOSTREAM_GOLDEN_DIR"] = str(golden)
    results = run_steps(steps, args.out, args.budget_s, env)
    summary = summarize(results, _gpu_name(args.python))
    print(json.dumps(summary, sort_keys=True))
    print("\n".join(table_rows(summary)))
    return 0 if summary["all_steps_passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
