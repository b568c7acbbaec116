"""Webhook -> relay -> client -> history row latency, on loopback.

For each of N samples: POST one webhook to the relay (a structured
CloudEvent with a unique id) and wait until the daemon's live feed
(/api/stream, written after the history commit) carries that event.
Latency = from just before the POST to the SSE frame. One at a time, on
kept-alive connections; prints one RESULT line.

    python3 relay_latency.py HOOK_URL HOOK_TOKEN DAEMON_URL API_TOKEN N
"""
import http.client
import json
import sys
import time
import urllib.parse


def conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30), u.path


def main():
    hook_url, hook_token, daemon_url, api_token, n = sys.argv[1:6]
    n = int(n)
    sse, _ = conn(daemon_url)
    sse.request("GET", "/api/stream", headers={"Authorization": f"Bearer {api_token}"})
    feed = sse.getresponse()
    assert feed.status == 200, feed.status

    def next_frame():
        lines = []
        while True:
            line = feed.fp.readline().decode()
            if line in ("\n", "\r\n", ""):
                if lines:
                    return lines
                if line == "":
                    raise SystemExit("live feed closed")
                continue
            lines.append(line.rstrip("\n"))

    while not any(l.startswith("event: ready") for l in next_frame()):
        pass
    post, path = conn(hook_url)
    run = "%08x" % (int(time.time() * 1000) & 0xFFFFFFFF)
    samples = []
    for i in range(n):
        eid = f"lat-{run}-{i}"
        body = json.dumps({
            "specversion": "1.0", "id": eid, "source": "https://bench.test/app",
            "type": "com.app.tick", "kitesummary": eid, "data": {"i": i},
        })
        t0 = time.perf_counter()
        post.request("POST", path, body=body, headers={
            "Authorization": f"Bearer {hook_token}",
            "Content-Type": "application/cloudevents+json",
        })
        r = post.getresponse()
        r.read()
        assert 200 <= r.status < 300, r.status
        while True:
            f = next_frame()
            data = next((l[6:] for l in f if l.startswith("data: ")), None)
            if any(l == "event: event" for l in f) and data and json.loads(data)["event_id"] == eid:
                break
        samples.append((time.perf_counter() - t0) * 1000)
    s = sorted(samples)
    pct = lambda p: s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]
    print(f"RESULT n={n} p50_ms={pct(50):.2f} p90_ms={pct(90):.2f} p99_ms={pct(99):.2f} "
          f"max_ms={s[-1]:.2f} mean_ms={sum(s) / len(s):.2f}")


main()
