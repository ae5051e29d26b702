-- GET with a session cookie: BENCH_PATH, BENCH_COOKIE (the whole Cookie header).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
wrk.method = "GET"
wrk.path = env("BENCH_PATH")
wrk.headers["Cookie"] = env("BENCH_COOKIE")
