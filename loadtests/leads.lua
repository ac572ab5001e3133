-- wrk script: POST varied leads from loadtests/.bench/bodies.txt (one JSON body per line).
local bodies = {}
local i = 0
for line in io.lines(os.getenv("BODIES") or "loadtests/.bench/bodies.txt") do
  bodies[#bodies + 1] = line
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
