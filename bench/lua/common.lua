-- Shared by every workload script: thread bookkeeping and a machine-readable summary line.
-- Parameters come from the environment (set by bench/run.py), never from the command line.

local threads = {}
local counter = 0
-- Names of per-thread global counters a script keeps (e.g. answers by kind); done() sums them
-- over the threads into "counts".
COUNTERS = {}

function setup(thread)
  thread:set("id", counter)
  thread:set("nthreads", 0)
  counter = counter + 1
  table.insert(threads, thread)
end

function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then
    error("missing environment variable " .. name)
  end
  return v
end

function done(summary, latency, requests)
  local exhausted = 0
  for _, t in ipairs(threads) do
    exhausted = exhausted + (t:get("exhausted") or 0)
  end
  local statuses = {}
  for _, code in ipairs({200, 401, 403, 429, 500, 503}) do
    local n = 0
    for _, t in ipairs(threads) do
      n = n + (t:get("status_" .. code) or 0)
    end
    if n > 0 then table.insert(statuses, string.format('"%d":%d', code, n)) end
  end
  -- Refresh pools (refresh.lua): the rate over the span the threads were really working.
  local ok, t0, t1 = 0, nil, nil
  for _, t in ipairs(threads) do
    local n = t:get("refresh_ok")
    if n and n > 0 then
      ok = ok + n
      local a, b = t:get("t_start"), t:get("t_last")
      if t0 == nil or a < t0 then t0 = a end
      if t1 == nil or b > t1 then t1 = b end
    end
  end
  local active_rps, active_s = 0, 0
  if ok > 0 and t1 > t0 then
    active_s = (t1 - t0) / 1e6
    active_rps = ok / active_s
  end
  local counts = {}
  for _, name in ipairs(COUNTERS) do
    local n = 0
    for _, t in ipairs(threads) do
      n = n + (t:get(name) or 0)
    end
    table.insert(counts, string.format('"%s":%d', name, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"rps":%.2f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"exhausted":%d,"active_rps":%.2f,"active_s":%.3f,' ..
    '"statuses":{' .. table.concat(statuses, ",") .. '},"counts":{' .. table.concat(counts, ",") .. '}}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean, exhausted, active_rps, active_s))
end
