-- Shared by every workload script: thread bookkeeping and a machine-readable summary line.
-- Parameters come from the environment (set by bench/run.py), never from the command line.

local threads = {}
local counter = 0

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
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"rps":%.2f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"exhausted":%d,' ..
    '"statuses":{' .. table.concat(statuses, ",") .. '}}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, exhausted))
end
