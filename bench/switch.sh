#!/usr/bin/env bash
# The latency cost of change: open-loop load at a fixed rate on the native iris model
# (following a model-store model, through the alias `live`), measured by bench/tools'
# `rate` (latency from when each request was due). Rows:
#   steady:     no changes;
#   switching:  the same load while 3 deploys, 5 alias moves, 3 weight changes and 2
#               model swaps happen (the switching test's schedule);
#   shadow off / shadow on: alias `prod` on version 1, without and with every call
#               mirrored to version 2 (the LightGBM model).
#
#   bash bench/switch.sh          # RATE=2000 SECONDS=30 CONNS=64 PORT=18090 by default
#   BIN=/path/to/modelfn bash bench/switch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-2000}
SECS=${SECONDS_PER_ROW:-30}
CONNS=${CONNS:-64}
PORT=${PORT:-18090}
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
(cd bench/tools && cargo build --release -q)
RATE_BIN=bench/tools/target/release/rate
data=$(mktemp -d)
work=$(mktemp -d)
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$data" >"$data/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$work"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
export MODELFN_SERVER="http://127.0.0.1:$PORT" MODELFN_DATA_DIR="$data"
m() { "$BIN" "$@" >/dev/null; }
pkg=$work/flow
cp -r examples/iris "$pkg"
rm "$pkg/model.onnx"
sed -i 's/^name = "iris"/name = "flow"/; s/^file = "model.onnx"/file = "store:flow-model"\ntest_event = "request.json"/' "$pkg/modelfn.toml"
deploy() { sed -i "s/^description = .*/description = \"build $1\"/" "$pkg/modelfn.toml"; m deploy "$pkg"; }
m model put flow-model examples/iris/model.onnx
deploy 1; deploy 2
m alias set flow live 1
body='{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}'
cpu_ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
hz=$(getconf CLK_TCK)
run() { # label path [background schedule]
  local before after line
  before=$(cpu_ticks)
  line=$("$RATE_BIN" "http://127.0.0.1:$PORT$2" "$RATE" "$SECS" "$CONNS" "$body" | grep '^RESULT')
  after=$(cpu_ticks)
  printf '%-12s %s cpu_us/req=%.1f\n' "$1" "${line#RESULT }" "$(echo "($after - $before) * 1000000 / $hz / ($RATE * $SECS)" | bc -l)"
}
schedule() {
  local every
  every=$(echo "$SECS / 14" | bc -l)
  for step in "alias set flow live 2" "deploy 3" "alias set flow live 2:50,3:50" \
      "model put flow-model examples/lightgbm-iris/model.onnx" "alias set flow live 3" "deploy 4" \
      "alias set flow live 3:80,4:20" "alias set flow live 4" "model rollback flow-model" "deploy 5" \
      "alias set flow live 4:30,5:70" "alias set flow live 5" "alias set flow live 4"; do
    sleep "$every"
    case $step in deploy*) deploy "${step#deploy }" ;; *) m $step ;; esac
  done
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $RATE req/s open loop on $CONNS connections, $SECS s per row"
run steady /v1/functions/flow:live/invoke
schedule &
sched=$!
run switching /v1/functions/flow:live/invoke
wait $sched
# Shadow: iris version 1 (forest) champion, version 2 (LightGBM) challenger.
cp examples/iris/model.onnx "$work/forest.onnx"
ipkg=$work/iris
cp -r examples/iris "$ipkg"; m deploy "$ipkg"
cp examples/lightgbm-iris/model.onnx "$ipkg/model.onnx"; m deploy "$ipkg"
m alias set iris prod 1
run "shadow off" /v1/functions/iris:prod/invoke
m alias set iris prod 1 --shadow 2:100
run "shadow on" /v1/functions/iris:prod/invoke
"$BIN" alias shadow iris prod
