-- wrk script: POSTs OpenRTB bid requests to the HTTP bidder of `cx serve`
-- (`/openrtb2/bid`, Content-Type application/json), cycling through the
-- requests of a file.
--
--   wrk -t1 -c64 -d10s --latency -s benches/wrk/post_bid.lua \
--       http://127.0.0.1:8080/openrtb2/bid -- FILE [PIPELINE]
--
-- FILE (default: $CX_BID_FILE, else the prebid sample of the repository)
-- holds bid requests as `cx-bench load --mix FILE` reads them: one per line
-- (JSONL), `{"request": {...}}` wrapper lines (the `request` is sent), or a
-- single pretty-printed request. The file is split into top-level JSON
-- values by a small scanner (strings and escapes respected), so lines and
-- pretty documents read alike; a wrapper is an object with a top-level
-- `request` key and no `imp`. Nothing is validated: the server says what it
-- thinks of a bad request (400).
--
-- PIPELINE (default 1): requests written per send on each connection; wrk
-- waits for all their answers before it writes again.
--
-- Every request is built once in init(); request() only picks the next.
-- There is no response() callback (it would make wrk parse every answer's
-- headers in Lua); wrk counts statuses of 400 and over as errors, and 204 is
-- a success for it, as for cx-bench. done() prints one summary line with
-- p99.9, which `--latency` leaves out.
--
-- wrk is closed loop: each connection sends its next request only when the
-- previous answer came back, so its latencies exclude the time a request
-- would have waited behind a slow one (coordinated omission). They are not
-- comparable with `cx-bench load` (open loop) at the same rate; see
-- docs/BENCHMARKS.md, "HTTP bidder (issue 14)".

local DEFAULT_FILE = "components/wire/tests/fixtures/openrtb/prebid_sample.jsonl"

-- The end (index of the closing character) of the JSON string that starts
-- at `i` (its opening quote).
local function string_end(text, i)
  local j = i + 1
  local n = #text
  while j <= n do
    local c = text:byte(j)
    if c == 92 then -- backslash: skip the escaped character
      j = j + 2
    elseif c == 34 then -- closing quote
      return j
    else
      j = j + 1
    end
  end
  return nil
end

-- The end of the JSON value (object, array, string, or scalar) that starts
-- at `i`.
local function value_end(text, i)
  local c = text:sub(i, i)
  if c == '"' then
    return string_end(text, i)
  end
  if c ~= "{" and c ~= "[" then
    local j = text:find("[,}%]%s]", i)
    return j and j - 1 or #text
  end
  local depth = 0
  local j = i
  local n = #text
  while j <= n do
    local b = text:sub(j, j)
    if b == '"' then
      j = string_end(text, j)
      if not j then return nil end
    elseif b == "{" or b == "[" then
      depth = depth + 1
    elseif b == "}" or b == "]" then
      depth = depth - 1
      if depth == 0 then return j end
    end
    j = j + 1
  end
  return nil
end

-- The top-level keys of the object `obj`, with where each value lies.
local function top_level(obj)
  local fields = {}
  local i = 2 -- after the opening brace
  local n = #obj
  while i <= n do
    local start = obj:find('[%S]', i)
    if not start then break end
    local c = obj:sub(start, start)
    if c == "}" then break end
    if c == "," then
      i = start + 1
    elseif c == '"' then
      local key_end = string_end(obj, start)
      if not key_end then break end
      local key = obj:sub(start + 1, key_end - 1)
      local colon = obj:find("[%S]", key_end + 1)
      if not colon or obj:sub(colon, colon) ~= ":" then break end
      local v = obj:find("[%S]", colon + 1)
      if not v then break end
      local e = value_end(obj, v)
      if not e then break end
      fields[key] = { v, e }
      i = e + 1
    else
      break
    end
  end
  return fields
end

-- The bid requests of `text`: every top-level object, a wrapper's
-- `request` in its place.
local function requests_of(text)
  local out = {}
  local i = 1
  while true do
    local start = text:find("{", i, true)
    if not start then break end
    local e = value_end(text, start)
    if not e then break end
    local obj = text:sub(start, e)
    local fields = top_level(obj)
    local inner = fields["request"]
    if inner and not fields["imp"] and obj:sub(inner[1], inner[1]) == "{" then
      obj = obj:sub(inner[1], inner[2])
    end
    out[#out + 1] = obj
    i = e + 1
  end
  return out
end

local requests = {}
local next_request = 1

function init(args)
  local path = args[1] or os.getenv("CX_BID_FILE") or DEFAULT_FILE
  local pipeline = tonumber(args[2] or "1") or 1
  local file = assert(io.open(path, "rb"), "post_bid.lua: cannot open " .. path)
  local text = file:read("*a")
  file:close()
  local bodies = requests_of(text)
  assert(#bodies > 0, "post_bid.lua: no bid requests in " .. path)
  local headers = {
    ["Content-Type"] = "application/json",
    ["x-openrtb-version"] = "2.6",
  }
  -- The URL's path, or the bidder's default when the URL has none.
  local target = (wrk.path ~= nil and wrk.path ~= "/") and wrk.path or "/openrtb2/bid"
  local single = {}
  for k, body in ipairs(bodies) do
    single[k] = wrk.format("POST", target, headers, body)
  end
  -- PIPELINE consecutive requests per send, cycling through the file.
  for k = 1, #single do
    local batch = {}
    for p = 0, pipeline - 1 do
      batch[#batch + 1] = single[((k - 1 + p) % #single) + 1]
    end
    requests[k] = table.concat(batch)
  end
  io.stderr:write(string.format(
    "post_bid.lua: %d bid requests from %s, %d per send\n", #single, path, pipeline))
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "wrk summary: %d requests in %.2f s = %.0f req/s; latency us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f; " ..
    "errors: connect %d read %d write %d status>399 %d timeout %d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
