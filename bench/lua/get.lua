-- A plain GET of BENCH_PATH (the unauthenticated floor).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
wrk.method = "GET"
wrk.path = env("BENCH_PATH")
