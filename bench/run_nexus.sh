#!/usr/bin/env bash
# Compare Nexus (A) with LiteLLM's proxy (B) on the shared benchmark harness.
#
# Needs: the project venv (.venv), PostgreSQL and Redis on loopback, /tmp/bench-venv
# with uvloop, and /tmp/litellm-venv with 'litellm[proxy]' for B (set NO_LITELLM=1 to
# measure Nexus alone). HARNESS points at the directory holding compare and the LiteLLM
# config. Results go to $OUT (JSON lines) and the summary to stdout.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
HARNESS=${HARNESS:?set HARNESS to the benchmark harness directory}
OUT=${OUT:-/tmp/nexus-bench/runs.jsonl}
mkdir -p "$(dirname "$OUT")" /tmp/nexus-bench/logs

export DATABASE_URL=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nexus_bench}
export REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/12}
export NEXUS_DATA_DIR=/tmp/nexus-bench/data
export NEXUS_LOG_LEVEL=WARNING
psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='nexus_bench'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE nexus_bench" >/dev/null
"$ROOT/.venv/bin/python" "$ROOT/manage.py" migrate --no-input >/dev/null
"$ROOT/.venv/bin/python" "$ROOT/manage.py" bench_setup --key-file /tmp/nexus-bench/key
KEY=$(cat /tmp/nexus-bench/key)

ACMD="env DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL NEXUS_DATA_DIR=$NEXUS_DATA_DIR NEXUS_LOG_LEVEL=WARNING \
  $ROOT/.venv/bin/python -m uvicorn nexus.asgi:application --app-dir $ROOT --host 127.0.0.1 --port 14002 \
  --workers 1 --loop uvloop --http httptools --no-access-log --log-level warning"
ARGS=(--mock-port 18080 --mock-args "--require-key sk-mock-upstream" --mock-key sk-mock-upstream --chunks 20
  --a-name nexus --a-url http://127.0.0.1:14002 --a-key "$KEY" --a-cmd "$ACMD" --a-cpus 1
  --plan "${PLAN:-chat=1,32;stream=1,32}" --duration "${DURATION:-10}" --warmup 3 --rounds "${ROUNDS:-3}"
  --quiet-wait 20 --logdir /tmp/nexus-bench/logs --out "$OUT")
# Extra compare arguments, e.g. COMPARE_ARGS="--model mock-claude" for a translated route.
read -r -a EXTRA <<< "${COMPARE_ARGS:-}"
ARGS+=("${EXTRA[@]}")
if [ -z "${NO_LITELLM:-}" ]; then
  LCMD="env -u DATABASE_URL LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR /tmp/litellm-venv/bin/litellm \
    --config $HARNESS/litellm/config.yaml --host 127.0.0.1 --port 14000 --num_workers 1"
  ARGS+=(--b-name litellm --b-url http://127.0.0.1:14000 --b-key sk-bench-master-key --b-cmd "$LCMD" --b-cpus 1)
fi
cd "$ROOT"
exec /tmp/bench-venv/bin/python "$HARNESS/compare" "${ARGS[@]}"
