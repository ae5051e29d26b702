-- Wrong-password logins: POST /api/token/ with BENCH_USERNAME and a password that never matches.
-- Counts the answers by status (401: the password was hashed and refused; 429: throttled first).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
wrk.method = "POST"
wrk.path = "/api/token/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username":"' .. env("BENCH_USERNAME") .. '","password":"not the password"}'

local counts = {}

function response(status, headers, body)
  local key = "status_" .. status
  counts[key] = (counts[key] or 0) + 1
  wrk.thread:set(key, counts[key])
end
