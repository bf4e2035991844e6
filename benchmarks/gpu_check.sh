#!/usr/bin/env bash
# Every GPU check in one command (see benchmarks/gpu_check.py): the cuda tests, the CuPy kernel tests, then the
# kernel, engine, window, pipeline and extractor benchmarks on the GPU; every JSON record into gpu_check.jsonl, one
# JSON summary and the README table rows on stdout. Run from anywhere; PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
exec "$PY" benchmarks/gpu_check.py --python "$PY" "$@"
