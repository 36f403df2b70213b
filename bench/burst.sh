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
#   API=1 FUNCTION=digits-preprocess bash bench/burst.sh   # through seed 002's API
#                                       # (examples/apis/digits.toml), with an x-api-key
#
# Each burst also prints the CPU the server's process tree spent (modelfn, and the
# function processes it started, from /proc), per request, and the burst's CPU floor:
# that CPU x N / cores, the least wall time the burst could take on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
FUNCTION=${FUNCTION:-addfive}
if [ -z "${BIN:-}" ]; then cargo build --release -q -p modelfn; BIN=./target/release/modelfn; fi
# CPU seconds of a process tree from /proc: "modelfn's own, the function processes'"
# (live processes' utime+stime, plus what their reaped children spent).
tree_cpu() { # pid
  python3 - "$1" <<'PY'
import os, sys
root, hz = int(sys.argv[1]), os.sysconf("SC_CLK_TCK")
stat, kids = {}, {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        f = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    stat[int(p)] = f
    kids.setdefault(int(f[1]), []).append(int(p))
cpu = lambda f: sum(int(x) for x in f[11:15]) / hz
own = sum(int(x) for x in stat[root][11:13]) / hz if root in stat else 0.0
todo, others = list(kids.get(root, [])), 0.0
while todo:
    p = todo.pop()
    others += cpu(stat[p])
    todo.extend(kids.get(p, []))
# modelfn's reaped children (bwrap) hold what their sandboxes spent.
others += sum(int(x) for x in stat[root][13:15]) / hz if root in stat else 0.0
print("%.3f %.3f" % (own, others))
PY
}
burst() { # label url body work server_pid [header]
  local cfg="$4/burst.cfg"
  for _ in $(seq "$N"); do
    printf 'url = "%s"\nrequest = "POST"\ndata = "%s"\noutput = "/dev/null"\nmax-time = 30\nwrite-out = "%%{http_code} %%{time_total}\\n"\n' "$2" "$3"
    [ -n "${6:-}" ] && printf 'header = "%s"\n' "$6"
    printf 'next\n'
  done | sed '$d' >"$cfg"
  local t0 t1 c0 c1
  c0=$(tree_cpu "$5")
  t0=$(date +%s.%N)
  curl -s -Z --parallel-immediate --parallel-max "$N" -K "$cfg" 2>/dev/null >"$4/out" || true
  t1=$(date +%s.%N)
  c1=$(tree_cpu "$5")
  python3 - "$1" "$4/out" "$t0" "$t1" "$N" "$c0" "$c1" "$(nproc)" <<'PY'
import sys
label, path, t0, t1, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
(o0, f0), (o1, f1), cores = map(float, sys.argv[6].split()), map(float, sys.argv[7].split()), int(sys.argv[8])
rows = [l.split() for l in open(path) if l.strip()]
codes = [r[0] for r in rows]
times = sorted(float(r[1]) for r in rows if r[0] == "200")
pct = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000 if times else float("nan")
lost = n - codes.count("200") - codes.count("429")
own, fns = (o1 - o0) / n * 1e3, (f1 - f0) / n * 1e3
print("%-22s %6d %6d %6d %9.0f %9.0f %9.0f %8.1f %9.2f %9.2f %8.0f" % (label, codes.count("200"), codes.count("429"), lost,
      pct(0.5), pct(0.99), times[-1] * 1000 if times else float("nan"), t1 - t0, own, fns, (own + fns) * n / cores))
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
  local url="http://127.0.0.1:$port/v1/functions/$FUNCTION/invoke" key=""
  if [ -n "${API:-}" ]; then
    # The seed's API with a key, in a usage plan whose burst admits the whole burst.
    "$2" api apply "examples/apis/$FUNCTION.toml" >/dev/null
    read -r id key < <("$2" keys create bench --json | python3 -c "import json, sys; k = json.load(sys.stdin); print(k['access_key_id'], k['api_key'])")
    "$2" plans create bench --rate 100000 --burst "$((N * 4))" --target "$(python3 -c "import tomllib, sys; d = tomllib.load(open(sys.argv[1], 'rb')); print(d['name'] + '/' + d['stages'][0]['name'])" "examples/apis/$FUNCTION.toml")" --key "$id" >/dev/null
    url="http://127.0.0.1:$port$(python3 -c "import tomllib, sys; d = tomllib.load(open(sys.argv[1], 'rb')); print('/apis/%s/%s%s' % (d['name'], d['stages'][0]['name'], d['routes'][0]['path']))" "examples/apis/$FUNCTION.toml")"
    key="x-api-key: $key"
  fi
  burst "$1 cold" "$url" "$body" "$work" "$pid" "$key"
  burst "$1 warm" "$url" "$body" "$work" "$pid" "$key"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $N requests at once on $FUNCTION; somaxconn $(cat /proc/sys/net/core/somaxconn)"
printf '%-22s %6s %6s %6s %9s %9s %9s %8s %9s %9s %8s\n' build ok 429 lost p50_ms p99_ms max_ms wall_s srv_ms/req fns_ms/req floor_ms
[ -n "${OLD:-}" ] && run previous "$OLD"
run this "$BIN"
