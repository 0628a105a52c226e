-- wrk script for write benchmarks: requests from the file named by WRK_LINES,
-- one per line: METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY. Each thread takes every
-- n-th line, so no two requests repeat one another's line until the file wraps;
-- every request gets its own Idempotency-Key.
local lines = {}
local counter = 0
local thread_id = 0
local threads = 1

function setup(thread)
  thread:set("thread_id", threads - 1)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("WRK_LINES")) do
    if line ~= "" then table.insert(lines, line) end
  end
  counter = thread_id
end

function request()
  local line = lines[(counter % #lines) + 1]
  counter = counter + 2
  local method, path, token, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)")
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = string.format("%d-%d-%d", thread_id, counter, math.random(1, 1e9)),
    ["Content-Type"] = "application/json",
  }
  if body == "" then body = nil; headers["Content-Type"] = nil end
  return wrk.format(method, path, headers, body)
end
