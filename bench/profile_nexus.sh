#!/usr/bin/env bash
# Profile one Nexus worker under load with py-spy and print the functions that cost most.
# CONCURRENCY sets the number of connections (32 unless set); STREAM=1 streams.
#
# Needs what bench/run_nexus.sh needs, plus py-spy in /tmp/bench-venv. HARNESS points
# at the benchmark harness directory (mock_upstream.py and load.py).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
HARNESS=${HARNESS:?set HARNESS to the benchmark harness directory}
WORK=/tmp/nexus-bench/profile
mkdir -p "$WORK"
export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nexus_bench}
export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/12}
export NEXUS_DATA_DIR=/tmp/nexus-bench/data NEXUS_LOG_LEVEL=WARNING
"$ROOT/.venv/bin/python" "$ROOT/manage.py" migrate --no-input >/dev/null
"$ROOT/.venv/bin/python" "$ROOT/manage.py" bench_setup --key-file "$WORK/key" >/dev/null
KEY=$(cat "$WORK/key")

taskset -c 0 /tmp/bench-venv/bin/python "$HARNESS/mock_upstream.py" --port 18080 --require-key sk-mock-upstream &
MOCK=$!
cd "$ROOT"
taskset -c 1 .venv/bin/python -m uvicorn nexus.asgi:application --host 127.0.0.1 --port 14002 \
  --loop uvloop --http httptools --no-access-log --log-level warning &
GATEWAY=$!
trap 'kill $MOCK $GATEWAY 2>/dev/null || true' EXIT
sleep 3
BODY='{"model":"mock-gpt","messages":[{"role":"user","content":"hi"}]}'
EXTRA=()
if [ -n "${STREAM:-}" ]; then
  BODY='{"model":"mock-gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}'
  EXTRA=(--stream)
fi
taskset -c 0 /tmp/bench-venv/bin/python "$HARNESS/load.py" http://127.0.0.1:14002/v1/chat/completions \
  -k "$KEY" -c "${CONCURRENCY:-32}" -d 20 --warmup 2 -b "$BODY" "${EXTRA[@]}" &
LOAD=$!
sleep 4
/tmp/bench-venv/bin/py-spy record -p "$GATEWAY" -d 12 -r 200 --format raw -o "$WORK/profile.raw" --nonblocking >/dev/null 2>&1
wait $LOAD
"$ROOT/.venv/bin/python" "$HERE/profile_summary.py" "$WORK/profile.raw"
