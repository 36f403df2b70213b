#!/usr/bin/env bash
# A burst: 1000 requests released at once, each on a connection opened at that moment
# (curl's parallel transfers, --parallel-immediate), on a cold function and then warm.
# Counts what was answered (200), refused (429) and lost (no answer: reset or timed
# out), and the latency percentiles. For each build given: OLD (the previous build) and
# BIN (this one), in one run.
#
#   OLD=/path/to/previous/modelfn bash bench/burst.sh        # FUNCTION=addfive N=1000
#   FUNCTION=digits-preprocess bash bench/burst.sh         # seed 002's pipeline (it calls
#                                                            # digits; layer pillow, built once)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
FUNCTION=${FUNCTION:-addfive}
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
burst() { # label url body work
  local cfg="$4/burst.cfg"
  for _ in $(seq "$N"); do
    printf 'url = "%s"\nrequest = "POST"\ndata = "%s"\noutput = "/dev/null"\nmax-time = 30\nwrite-out = "%%{http_code} %%{time_total}\\n"\nnext\n' "$2" "$3"
  done | sed '$d' >"$cfg"
  local t0 t1
  t0=$(date +%s.%N)
  curl -s -Z --parallel-immediate --parallel-max "$N" -K "$cfg" 2>/dev/null >"$4/out" || true
  t1=$(date +%s.%N)
  python3 - "$1" "$4/out" "$t0" "$t1" "$N" <<'PY'
import sys
label, path, t0, t1, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = [l.split() for l in open(path) if l.strip()]
codes = [r[0] for r in rows]
times = sorted(float(r[1]) for r in rows if r[0] == "200")
pct = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000 if times else float("nan")
lost = n - codes.count("200") - codes.count("429")
print("%-22s %6d %6d %6d %9.0f %9.0f %9.0f %8.1f" % (label, codes.count("200"), codes.count("429"), lost,
      pct(0.5), pct(0.99), times[-1] * 1000 if times else float("nan"), t1 - t0))
PY
}
run() { # label binary
  local work port pid
  work=$(mktemp -d); port=18511
  "$2" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  export MODELFN_SERVER="http://127.0.0.1:$port" MODELFN_DATA_DIR="$work/data"
  # The function's layers, and the functions it calls.
  for layer in $(python3 -c "import tomllib, sys; print(' '.join(tomllib.load(open(sys.argv[1], 'rb')).get('layers', [])))" "examples/$FUNCTION/modelfn.toml"); do
    "$2" layer publish "$layer" --requirements "examples/layers/$layer/requirements.txt" >/dev/null 2>&1
  done
  for dep in $(python3 -c "import tomllib, sys; print(' '.join(tomllib.load(open(sys.argv[1], 'rb')).get('permissions', {}).get('invoke', [])))" "examples/$FUNCTION/modelfn.toml"); do
    "$2" deploy "examples/$dep" >/dev/null
  done
  "$2" deploy "examples/$FUNCTION" >/dev/null
  local body; body=$(tr -d '\n' <"examples/$FUNCTION/request.json" | sed 's/"/\\"/g')
  local url="http://127.0.0.1:$port/v1/functions/$FUNCTION/invoke"
  burst "$1 cold" "$url" "$body" "$work"
  burst "$1 warm" "$url" "$body" "$work"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $N requests at once on $FUNCTION; somaxconn $(cat /proc/sys/net/core/somaxconn)"
printf '%-22s %6s %6s %6s %9s %9s %9s %8s\n' build ok 429 lost p50_ms p99_ms max_ms wall_s
[ -n "${OLD:-}" ] && run previous "$OLD"
run this "$BIN"
