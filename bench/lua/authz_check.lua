-- POST /api/authz/check/ {"permission": BENCH_PERMISSION, "object_id": <id>} with a bearer token
-- (BENCH_ACCESS); every request asks about an id drawn at random from BENCH_OBJECT_IDS (one per
-- line: the bench mixes ids the user holds and ids it does not). The answers are counted
-- ("allowed" / "denied") so the report shows that both branches ran.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
table.insert(COUNTERS, "allowed")
table.insert(COUNTERS, "denied")

local ids = {}
local headers = {}
local prefix = ""
allowed = 0
denied = 0

function init(args)
  for line in io.lines(env("BENCH_OBJECT_IDS")) do
    if line ~= "" then table.insert(ids, line) end
  end
  math.randomseed(tonumber(env("BENCH_SEED")) + 7919 * wrk.thread:get("id"))
  headers = {["Authorization"] = "Bearer " .. env("BENCH_ACCESS"),
             ["Content-Type"] = "application/json"}
  prefix = '{"permission":"' .. env("BENCH_PERMISSION") .. '","object_id":"'
end

function request()
  return wrk.format("POST", "/api/authz/check/", headers, prefix .. ids[math.random(#ids)] .. '"}')
end

function response(status, hdrs, body)
  if status == 200 then
    if string.find(body, '"allowed"%s*:%s*true') then
      allowed = allowed + 1
    else
      denied = denied + 1
    end
  end
end
