-- wrk script for bench/ingest.sh: POST a signed GitHub push with a unique
-- X-GitHub-Delivery per request (otherwise every request after the first
-- would be a dedup hit), count answers by status, print one RESULT line.
--
--   wrk ... -s hook.lua URL -- BODY_FILE SIGNATURE RUN_ID
--
-- BODY_FILE: the exact bytes signed; SIGNATURE: "sha256=<hex>";
-- RUN_ID: 8 hex digits, different per run, so deliveries never repeat
-- across runs against the same history.

local threads = {}

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   local f = assert(io.open(args[1], "rb"))
   local body = f:read("*a")
   f:close()
   run_id = args[3]
   counter = 0
   accepted, ok200, other2xx, client4xx, server5xx, other = 0, 0, 0, 0, 0, 0
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
   wrk.headers["X-GitHub-Event"] = "push"
   wrk.headers["X-GitHub-Hook-ID"] = "292430182"
   wrk.headers["X-Hub-Signature-256"] = args[2]
end

function request()
   counter = counter + 1
   -- UUID-shaped, unique per (run, thread, request).
   wrk.headers["X-GitHub-Delivery"] =
      string.format("%s-%04x-4000-8000-%012x", run_id, tid, counter)
   return wrk.format()
end

function response(status, headers, body)
   if status == 202 then
      -- Kite Desk answers 202 {"status":"accepted"} for a new row, 200
      -- {"status":"duplicate_ignored"} for a redelivery.
      if body and string.find(body, '"accepted"', 1, true) then
         accepted = accepted + 1
      else
         other2xx = other2xx + 1
      end
   elseif status == 200 then
      ok200 = ok200 + 1
   elseif status >= 200 and status < 300 then
      other2xx = other2xx + 1
   elseif status >= 400 and status < 500 then
      client4xx = client4xx + 1
   elseif status >= 500 then
      server5xx = server5xx + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local t = { accepted = 0, ok200 = 0, other2xx = 0, client4xx = 0, server5xx = 0, other = 0 }
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do
         t[k] = t[k] + (thread:get(k) or 0)
      end
   end
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d secs=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "accepted=%d ok200=%d other2xx=%d c4xx=%d s5xx=%d other=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      t.accepted, t.ok200, t.other2xx, t.client4xx, t.server5xx, t.other,
      e.connect, e.read, e.write, e.timeout))
end
