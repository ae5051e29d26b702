-- POST BENCH_PATH with the JSON body BENCH_BODY and a bearer token (BENCH_ACCESS).
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
wrk.method = "POST"
wrk.path = env("BENCH_PATH")
wrk.headers["Authorization"] = "Bearer " .. env("BENCH_ACCESS")
wrk.headers["Content-Type"] = "application/json"
wrk.body = env("BENCH_BODY")
