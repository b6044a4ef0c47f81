-- wrk script: POST /webhooks/sms with a random assigned `to` (the formula of
-- fill.py) and a message id unique to each request.
local AREAS = {201, 212, 213, 312, 415, 617, 646, 718, 917, 305}
local COUNT = tonumber(os.getenv("LOADTEST_NUMBERS") or "100000")
-- A prefix for the message ids when several wrk run at once (LOADTEST_RUN).
local RUN = os.getenv("LOADTEST_RUN") or ""
-- LOADTEST_IDS: each thread cycles through that many message ids, so that
-- once they are all recorded every request is a retry and the store stops
-- growing (runs compared within one session then see the same store).
local IDS = tonumber(os.getenv("LOADTEST_IDS") or "0")
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local sent = 0

function request()
  sent = sent + 1
  local i = math.random(0, COUNT - 1)
  local to = string.format("+1%d%d%04d", AREAS[i % 10 + 1], 200 + math.floor(i / 10) % 800, math.floor(i / 8000))
  local id = sent
  if IDS > 0 then
    id = sent % IDS
  end
  local body = string.format(
    '{"messageId":"lt-%s%d-%d","from":"+15005550006","to":"%s","body":"load test"}', RUN, tid, id, to)
  return wrk.format("POST", "/webhooks/sms", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("non-2xx or socket errors: status=%d connect=%d read=%d write=%d timeout=%d\n",
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
