-- POST /api/token/verify/ {"token": BENCH_ACCESS}.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
wrk.method = "POST"
wrk.path = "/api/token/verify/"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token":"' .. env("BENCH_ACCESS") .. '"}'
