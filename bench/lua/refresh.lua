-- Refresh with rotation: each refresh token is single-use, so every request takes the next one
-- from BENCH_POOL (one token per line). Thread i uses lines i, i+n, i+2n... (n = BENCH_THREADS).
-- A thread that runs out stops rather than replaying tokens (a replay would be a cheap 401, not
-- a rotation). wrk then still divides by the whole duration, so each thread also records when
-- it started and when its last successful refresh came back; done() (common.lua) reports the
-- rate over that active span as "active_rps".
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local pool = {}
local next_i = 1
-- Globals of this thread's Lua state, read by done() through thread:get().
refresh_ok = 0
t_start = 0
t_last = 0

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
  t_start = now_us()
end

function request()
  local token = pool[next_i]
  if token == nil then
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  next_i = next_i + 1
  return wrk.format("POST", "/api/token/refresh/", {["Content-Type"] = "application/json"},
    '{"refresh":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    refresh_ok = refresh_ok + 1
    t_last = now_us()
  end
end
