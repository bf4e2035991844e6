"""The GPU check's plan, argument handling and summary, on the CPU: records parsed from real step output formats,
the budget honoured by real subprocesses, the summary and README rows computed from hand-written records."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def test_the_plan_runs_window_cost_only_when_it_exists(gpu_check, tmp_path: Path) -> None:
    (tmp_path / "benchmarks").mkdir()
    names = [step.name for step in gpu_check.plan("py", tmp_path)]
    assert names == ["pytest_cuda", "pytest_kernels", "kernels", "stream_step", "pipeline", "extractors"]
    (tmp_path / "benchmarks" / "window_cost.py").write_text("parser.add_argument('--device')\n")
    steps = {step.name: step for step in gpu_check.plan("py", tmp_path)}
    assert list(steps)[4] == "window_cost" and steps["window_cost"].argv[-2:] == ("--device", "cuda")
    assert steps["pytest_cuda"].argv[:3] == ("py", "-m", "pytest") and "cuda" in steps["pytest_cuda"].argv
    assert "--device" in steps["extractors"].argv and "--device" in steps["stream_step"].argv
    assert sum(step.timeout_s for step in steps.values()) <= 8 * 60


def test_json_records_reads_lines_and_one_indented_document(gpu_check) -> None:
    text = ('noise {not json}\n{"kernel": "soft_nms", "N": 5000}\n{\n  "benchmark": "pipeline",\n  "cases": '
            '[{"case": "a", "x_real_time": 3.5}]\n}\nprogress 3/4\n{"kernel": "targets"}\n')
    assert gpu_check.json_records(text) == [{"kernel": "soft_nms", "N": 5000},
                                            {"benchmark": "pipeline", "cases": [{"case": "a", "x_real_time": 3.5}]},
                                            {"kernel": "targets"}]


def test_pytest_counts_reads_the_last_summary_line(gpu_check) -> None:
    text = "....s\n== 1 failed in 0.1s ==\n4 passed, 1 skipped, 12 deselected, 2 errors in 3.21s\n"
    assert gpu_check.pytest_counts(text) == {"passed": 4, "skipped": 1, "deselected": 12, "errors": 2}
    assert gpu_check.pytest_counts("no tests ran") == {}


def test_summary_and_rows_from_hand_written_records(gpu_check) -> None:
    Step, Result = gpu_check.Step, gpu_check.StepResult
    results = [
        Result(Step("pytest_cuda", (), 1), 0, 2.0, "3 passed, 1 skipped in 1s\n"),
        Result(Step("kernels", (), 1), 0, 5.0, "", [{"kernel": "soft_nms", "path": "cpu", "N": 5000, "ms_p50": 40},
                                                    {"kernel": "targets", "soft_nms_cupy_speedup_at_5000": 20.0,
                                                     "soft_nms_target_met": True, "topk_target_met": True}]),
        Result(Step("stream_step", (), 1), 0, 9.0, "", [{"mode": "incremental", "stream_rows": 1000,
                                                         "horizon_rows": 900, "push_ms_p50": 1.5}]),
        Result(Step("pipeline", (), 1), 0, 9.0, "", [{"cases": [{"case": "tiny-cpu", "x_real_time": 12.0},
                                                                {"case": "gpu", "skipped": "no CUDA"}]}]),
        Result(Step("extractors", (), 1), 124, 50.0, "", [{"arch": "swin_l", "dtype": "float32", "batch": 8,
                                                           "x_real_time": 7.0}, {"extractor": "targets"}]),
    ]
    summary = gpu_check.summarize(results, "NVIDIA H100")
    assert summary["pytest_cuda"] == {"passed": 3, "skipped": 1}
    assert summary["soft_nms_cupy_speedup_at_5000"] == 20.0 and summary["soft_nms_target_met"] is True
    assert summary["engine_push_ms_p50"] == {"incremental_1000rows_900horizon": 1.5}
    assert summary["pipeline_x_real_time"] == {"tiny-cpu": 12.0, "gpu": "no CUDA"}
    assert summary["extractor_x_real_time"] == {"swin_l_float32_b8": 7.0}
    assert summary["all_steps_passed"] is False and summary["steps"]["extractors"]["returncode"] == 124
    rows = gpu_check.table_rows(summary)
    assert "| CuPy soft-NMS vs CPU at N = 5000 (x) | 20.0 | NVIDIA H100 |" in rows
    assert "| `pytest_cuda` | 3 passed, 1 skipped | NVIDIA H100 |" in rows
    assert all(row.startswith("| ") and row.endswith(" | NVIDIA H100 |") for row in rows)
    json.dumps(summary)


def test_steps_run_write_every_record_and_respect_the_budget(gpu_check, tmp_path: Path) -> None:
    Step = gpu_check.Step
    talk = Step("talk", (sys.executable, "-c", "print('{\"a\": 1}'); print('text'); print('{\"b\": 2}')"), 30)
    slow = Step("slow", (sys.executable, "-c", "import time; time.sleep(30)"), 30)
    after = Step("after", (sys.executable, "-c", "print('{}')"), 30)
    out = tmp_path / "records.jsonl"
    results = gpu_check.run_steps([talk, slow, after], out, budget_s=8.0, env={"PATH": ""})
    assert [r.returncode for r in results] == [0, 124, None]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[:2] == [{"step": "talk", "a": 1}, {"step": "talk", "b": 2}]
    assert lines[2]["step"] == "talk" and lines[2]["returncode"] == 0
    assert lines[3]["step"] == "slow" and lines[3]["returncode"] == 124
    assert lines[4] == {"step": "after", "status": "not run: time budget spent"}


def test_dry_run_lists_the_commands_and_runs_nothing(gpu_check, tmp_path: Path, capsys) -> None:
    assert gpu_check.main(["--dry-run", "--python", "PY", "--out", str(tmp_path / "x.jsonl")]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [item["step"] for item in listed][:4] == ["pytest_cuda", "pytest_kernels", "kernels", "stream_step"]
    assert all(item["argv"][0] == "PY" for item in listed) and not (tmp_path / "x.jsonl").exists()
    with pytest.raises(SystemExit):
        gpu_check.main(["--budget-s", "0"])
