-- wrk script: S1's POST, and one machine-readable result line at the end.
wrk.method = "POST"
wrk.body = '{"sl": 6.9, "sw": 3.1, "pl": 5.1, "pw": 2.3}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  local non2xx = e.status
  io.write(string.format("RESULT %.0f %.2f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout + non2xx, summary.requests))
end
