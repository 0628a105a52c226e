-- wrk script for the benchmarks: requests from the file named by WRK_LINES,
-- one per line: METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY. Each thread takes every
-- n-th line, so no two requests repeat one another's line until the file wraps;
-- every request gets its own Idempotency-Key (WRK_RUN, thread and counter). At the end it prints how many
-- answers had each status ("status 409 12"), for the non-2xx to be classified.
-- thread_id and statuses are globals: setup() sets the one, done() reads the
-- other, in each thread's own Lua state (a local would hide them).
local lines = {}
local counter = 0
local threads = 0
local run = ""
local all_threads = {}
thread_id = 0
statuses = {}

function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
  table.insert(all_threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("WRK_LINES")) do
    if line ~= "" then table.insert(lines, line) end
  end
  counter = thread_id
  run = os.getenv("WRK_RUN")  -- unique per wrk run: keys never repeat across runs
end

function request()
  local line = lines[(counter % #lines) + 1]
  counter = counter + 2
  local method, path, token, body = line:match("([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)")
  local headers = {}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  if method ~= "GET" then
    headers["Idempotency-Key"] = string.format("%s-%d-%d", run, thread_id, counter)
  end
  if body == "" then body = nil else headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(all_threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %d %d\n", status, n))
  end
end
