-- Session login with CSRF: POST /api/auth/login/ with the csrftoken cookie and the matching
-- X-CSRFToken header (BENCH_CSRF, minted for an anonymous caller), BENCH_USERNAME/PASSWORD.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")
wrk.method = "POST"
wrk.path = "/api/auth/login/"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Cookie"] = "csrftoken=" .. env("BENCH_CSRF")
wrk.headers["X-CSRFToken"] = env("BENCH_CSRF")
wrk.body = '{"username":"' .. env("BENCH_USERNAME") .. '","password":"' .. env("BENCH_PASSWORD") .. '"}'
