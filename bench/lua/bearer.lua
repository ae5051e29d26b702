-- GET with an access token: BENCH_PATH, BENCH_ACCESS.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
wrk.method = "GET"
wrk.path = env("BENCH_PATH")
wrk.headers["Authorization"] = "Bearer " .. env("BENCH_ACCESS")
