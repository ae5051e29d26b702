-- GET BENCH_PATH cycling through many sessions: one session cookie value per line of
-- BENCH_COOKIES (used to touch a sample of stored sessions in the memory test).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local cookies = {}
local next_i = 1
local path = "/"

function init(args)
  for line in io.lines(env("BENCH_COOKIES")) do
    if line ~= "" then table.insert(cookies, line) end
  end
  next_i = 1 + wrk.thread:get("id")
  path = env("BENCH_PATH")
end

function request()
  local c = cookies[((next_i - 1) % #cookies) + 1]
  next_i = next_i + 1
  return wrk.format("GET", path, {["Cookie"] = "sessionid=" .. c})
end
