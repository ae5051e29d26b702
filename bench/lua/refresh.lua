-- Refresh with rotation: each refresh token is single-use, so every request takes the next one
-- from BENCH_POOL (one token per line). Thread i uses lines i, i+n, i+2n... (n = BENCH_THREADS).
-- A thread that runs out stops and reports it, rather than replaying tokens (a replay would be
-- a cheap 401, not a rotation).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local pool = {}
local next_i = 1

function init(args)
  local id = wrk.thread:get("id")
  local n = tonumber(env("BENCH_THREADS"))
  local i = 0
  for line in io.lines(env("BENCH_POOL")) do
    if line ~= "" then
      if i % n == id then
        table.insert(pool, line)
      end
      i = i + 1
    end
  end
end

function request()
  local token = pool[next_i]
  if token == nil then
    wrk.thread:set("exhausted", 1)
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  next_i = next_i + 1
  return wrk.format("POST", "/api/token/refresh/", {["Content-Type"] = "application/json"},
    '{"refresh":"' .. token .. '"}')
end
