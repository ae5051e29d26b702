-- GET BENCH_PATH with extra request headers: BENCH_HEADERS, one "Name: value" per line.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
wrk.method = "GET"
wrk.path = env("BENCH_PATH")
for line in string.gmatch(env("BENCH_HEADERS"), "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name == nil then
    error("BENCH_HEADERS: not a header line: " .. line)
  end
  wrk.headers[name] = value
end
