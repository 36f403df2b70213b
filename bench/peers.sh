#!/usr/bin/env bash
# modelfn against what users would pick instead, on this machine, one at a time:
#   - modelfn, native iris (ONNX) and digits;
#   - FastAPI + uvicorn (2 workers) serving the same forest with scikit-learn + joblib;
#   - MLServer with its scikit-learn runtime, over the Open Inference Protocol;
#   - a minimal hyper server answering a fixed body: the machine's HTTP ceiling.
# Load: wrk (keep-alive, 2 threads) for DURATION at 1, 64 and 1000 connections.
# Then cold starts, a burst of 1000 requests on a function scaled to zero, batching on
# and off, seed 002's spec on digits, and idle cost. Prints one report.
#
#   bash bench/peers.sh            # DURATION=10s; BASE_PORT=18100
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
P=${BASE_PORT:-18100}
ulimit -n 65536 2>/dev/null || true
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q -p modelfn
cargo build --release -q --manifest-path bench/tools/Cargo.toml --target-dir target/bench-tools
tools=target/bench-tools/release
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/pip install -q --disable-pip-version-check -r bench/requirements-peers.txt

work=$(mktemp -d)
chmod 711 "$work"   # functions run as nobody when we are root: they must reach the data directory
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_up() { for _ in $(seq 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1"; exit 1; }
# Resident memory of a process and its children, MiB.
rss() { local total=0; for p in $1 $(pgrep -P "$1" || true); do total=$((total + $(awk '/VmRSS/ {print $2}' /proc/$p/status 2>/dev/null || echo 0))); done; echo "scale=1; $total/1024" | bc; }

IRIS='{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}'
OIP='{"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP32", "data": [6.9, 3.1, 5.1, 2.3]}]}'
mklua() { # mklua FILE BODY
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.body = '$2'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.0f %.2f %.2f %.2f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end
LUA
}
mklua "$work/iris.lua" "$IRIS"
mklua "$work/oip.lua" "$OIP"
DIGIT=$(python3 -c "import json; print(json.dumps(json.load(open('examples/digits/references.json'))['rows'][0]))")
mklua "$work/digits.lua" "$DIGIT"
GBM=$(cat examples/breast-cancer/request.json)
mklua "$work/gbm.lua" "$GBM"

declare -A RPS P99 CPU
# CPU ticks (utime + stime) of a process and all its descendants (uvicorn's workers).
tree_ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    [ "$p" = "$1" ] || { total=$((total + $(tree_ticks "$p"))); continue; }
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)
row() { # row NAME URL LUA PID CONNS
  local t=2; [ "$5" -lt 2 ] && t=1
  local before; before=$(tree_ticks "$4")
  local line; line=$(wrk -t"$t" -c"$5" -d"$DURATION" --timeout 5s -s "$3" "$2" | grep '^RESULT')
  local after; after=$(tree_ticks "$4")
  read -r _ rps p50 p99 max errs <<<"$line"
  local secs; secs=$(echo "$DURATION" | tr -d 's')
  local cpu; cpu=$(awk -v t=$((after - before)) -v hz="$HZ" -v r="$rps" -v s="$secs" 'BEGIN { if (r > 0) printf "%.2f", t / hz * 1e6 / (r * s); else print "-" }')
  RPS[$1/$5]=$rps; P99[$1/$5]=$p99; CPU[$1/$5]=$cpu
  printf '%-22s %6s %9s %9s %9s %9s %8s %9s %11s\n' "$1" "$5" "$rps" "$p50" "$p99" "$max" "$errs" "$(rss "$4")" "$cpu"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem/ {print $2}') GiB; $(date -u +%F); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
echo
echo "== throughput (iris single-row POSTs; wrk $DURATION each; RSS after the run)"
printf '%-22s %6s %9s %9s %9s %9s %8s %9s %11s\n' target conns req/s p50_ms p99_ms max_ms errors rss_MiB cpu_us/req

# modelfn
data="$work/modelfn"; mkdir -p "$data"
./target/release/modelfn serve --listen "127.0.0.1:$P" --data-dir "$data" > "$work/modelfn.log" 2>&1 &
mpid=$!; pids+=("$mpid")
wait_up "http://127.0.0.1:$P/readyz"
export MODELFN_SERVER="http://127.0.0.1:$P" MODELFN_DATA_DIR="$data"
for f in iris digits breast-cancer; do ./target/release/modelfn deploy "examples/$f" > /dev/null; done
curl -s -X POST "$MODELFN_SERVER/v1/functions/iris/invoke" -d "$IRIS" > /dev/null
for c in 1 64 1000; do row modelfn-iris "$MODELFN_SERVER/v1/functions/iris/invoke" "$work/iris.lua" "$mpid" "$c"; done

# the ceiling
$tools/ceiling "127.0.0.1:$((P+1))" > /dev/null 2>&1 &
cpid=$!; pids+=("$cpid")
wait_up "http://127.0.0.1:$((P+1))/"
for c in 1 64 1000; do row bare-hyper "http://127.0.0.1:$((P+1))/" "$work/iris.lua" "$cpid" "$c"; done
kill "$cpid"

# FastAPI + uvicorn
(cd "$PWD" && MODEL_PATH=examples/iris-python/model.joblib exec bench/.venv/bin/uvicorn --app-dir bench/peers fastapi_app:app --host 127.0.0.1 --port $((P+2)) --workers 2 --log-level warning) > "$work/fastapi.log" 2>&1 &
fpid=$!; pids+=("$fpid")
wait_up "http://127.0.0.1:$((P+2))/docs"
for c in 1 64 1000; do row fastapi-sklearn "http://127.0.0.1:$((P+2))/predict" "$work/iris.lua" "$fpid" "$c"; done
kill "$fpid"

# MLServer
ms="$work/mlserver"; mkdir -p "$ms/iris"
cp examples/iris-python/model.joblib "$ms/iris/model.joblib"
echo '{"name": "iris", "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib"}}' > "$ms/iris/model-settings.json"
echo "{\"http_port\": $((P+3)), \"grpc_port\": $((P+4)), \"metrics_port\": $((P+5))}" > "$ms/settings.json"
(cd "$ms" && exec "$OLDPWD/bench/.venv/bin/mlserver" start .) > "$work/mlserver.log" 2>&1 &
spid=$!; pids+=("$spid")
wait_up "http://127.0.0.1:$((P+3))/v2/models/iris/ready"
curl -s -o /dev/null -X POST "http://127.0.0.1:$((P+3))/v2/models/iris/infer" -H 'Content-Type: application/json' -d "$OIP"
for c in 1 64 1000; do row mlserver-sklearn "http://127.0.0.1:$((P+3))/v2/models/iris/infer" "$work/oip.lua" "$spid" "$c"; done
kill "$spid"

echo
echo "== ratios (modelfn-iris against each, same run)"
for c in 1 64 1000; do
  printf '  %4s conns: %6.1fx FastAPI, %6.1fx MLServer (targets >=100x), %4.2f of the bare-hyper ceiling (targets 0.60 at 64, 0.75 at 1000); p99 %s ms vs ceiling %s ms (target within 1.5x at 1000)\n' "$c" \
    "$(echo "${RPS[modelfn-iris/$c]} / ${RPS[fastapi-sklearn/$c]}" | bc -l)" \
    "$(echo "${RPS[modelfn-iris/$c]} / ${RPS[mlserver-sklearn/$c]}" | bc -l)" \
    "$(echo "${RPS[modelfn-iris/$c]} / ${RPS[bare-hyper/$c]}" | bc -l)" "${P99[modelfn-iris/$c]}" "${P99[bare-hyper/$c]}"
done

echo
echo "== batching: breast-cancer (GBM) at 1000 connections"
./target/release/modelfn config breast-cancer --max-batch 1 > /dev/null
row gbm-no-batching "$MODELFN_SERVER/v1/functions/breast-cancer/invoke" "$work/gbm.lua" "$mpid" 1000
./target/release/modelfn config breast-cancer --max-batch 256 > /dev/null
row gbm-batching "$MODELFN_SERVER/v1/functions/breast-cancer/invoke" "$work/gbm.lua" "$mpid" 1000
./target/release/modelfn config breast-cancer --max-delay 1ms > /dev/null
row gbm-batching-1ms "$MODELFN_SERVER/v1/functions/breast-cancer/invoke" "$work/gbm.lua" "$mpid" 1000
printf '  batching / no batching: %.2fx (natural), %.2fx (1 ms window) (target >=2x)\n' \
  "$(echo "${RPS[gbm-batching/1000]} / ${RPS[gbm-no-batching/1000]}" | bc -l)" "$(echo "${RPS[gbm-batching-1ms/1000]} / ${RPS[gbm-no-batching/1000]}" | bc -l)"

echo
echo "== seed 002's spec on digits: 1000 concurrent connections (wrk), then a burst of 1000 from zero"
row modelfn-digits "$MODELFN_SERVER/v1/functions/digits/invoke" "$work/digits.lua" "$mpid" 1000
# A function never invoked: its first request is a cold start.
d2="$work/digits-cold"; cp -r examples/digits "$d2"; sed -i 's/^name = .*/name = "digits-cold"/' "$d2/modelfn.toml"
./target/release/modelfn deploy "$d2" > /dev/null
read -r _ ok n p50 p99 max all <<<"$($tools/burst "$MODELFN_SERVER/v1/functions/digits-cold/invoke" 1000 "$DIGIT")"
echo "  burst of $n on digits scaled to zero: $ok answered 200; p50 $p50 ms, p99 $p99 ms, max $max ms; all done in $all ms"
d3="$work/addfive-burst"; cp -r examples/addfive "$d3"; sed -i 's/^name = .*/name = "addfive-burst"/' "$d3/modelfn.toml"
./target/release/modelfn deploy "$d3" > /dev/null
# One Python process per concurrent call: on 2 cores, a realistic cap is a few.
./target/release/modelfn config addfive-burst --reserved-concurrency 8 > /dev/null
read -r _ ok n p50 p99 max all <<<"$($tools/burst "$MODELFN_SERVER/v1/functions/addfive-burst/invoke" 1000 '{"num": "5"}')"
echo "  burst of $n on addfive (Python processes, reserved concurrency 8) scaled to zero: $ok answered 200; p50 $p50 ms, p99 $p99 ms, max $max ms; all done in $all ms"

echo
echo "== cold start to first answer (curl, a function never invoked)"
for f in iris iris-python; do
  if [ "$f" = iris-python ]; then ./target/release/modelfn layer publish sklearn --requirements examples/layers/sklearn/requirements.txt > /dev/null 2>&1; fi
  d="$work/cold-$f"; cp -r "examples/$f" "$d"; sed -i "s/^name = .*/name = \"cold-$f\"/" "$d/modelfn.toml"
  ./target/release/modelfn deploy "$d" > /dev/null
  out=$(curl -s -D - -o /dev/null -w 'TOTAL %{time_total}\n' -X POST "$MODELFN_SERVER/v1/functions/cold-$f/invoke" -H 'Content-Type: application/json' -d "$IRIS")
  init=$(echo "$out" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-modelfn-init-duration-ms" {print $2}')
  total=$(echo "$out" | awk '/^TOTAL/ {printf "%.1f", $2 * 1000}')
  echo "  $f: first answer in $total ms (init $init ms)"
done

echo
echo "== idle: every function scaled to zero"
for f in $(./target/release/modelfn list --json | python3 -c "import json,sys; print(' '.join(f['name'] for f in json.load(sys.stdin)['functions']))"); do
  ./target/release/modelfn config "$f" --keep-alive 1s > /dev/null
done
sleep 3
t1=$(awk '{print $14 + $15}' /proc/$mpid/stat); sleep 5; t2=$(awk '{print $14 + $15}' /proc/$mpid/stat)
echo "  instances: $(./target/release/modelfn list --json | python3 -c "import json,sys; print(sum(f['stats']['instances'] for f in json.load(sys.stdin)['functions']))"); CPU over 5 s: $(( (t2 - t1) * 1000 / $(getconf CLK_TCK) )) ms; RSS $(rss "$mpid") MiB"
