"""Webhook -> relay -> forwarding client -> local target, on loopback.

Serves the target on 127.0.0.1:TARGET_PORT (records when each POST arrives),
then for each of N samples POSTs one JSON webhook ({"bench": ID}) to the
relay's ingress and waits until the forwarding client (whichever is running:
`kitedesk serve` with a proxy sink, or smee-client) delivers it to the target.
Latency = from just before the POST to the arrival of the forwarded request,
both read from this process's monotonic clock. One at a time, on a
kept-alive connection; WARMUP samples first, not counted. Prints one RESULT line.

    python3 forward_latency.py HOOK_URL HOOK_TOKEN TARGET_PORT N [WARMUP]
"""
import http.client
import http.server
import json
import sys
import threading
import time
import urllib.parse

arrived = {}
cond = threading.Condition()


class Target(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        t = time.perf_counter()
        try:
            key = json.loads(body).get("bench")
        except (ValueError, AttributeError):
            key = None
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
        if key is not None:
            with cond:
                arrived.setdefault(key, t)
                cond.notify_all()

    def log_message(self, *args):
        pass


def main():
    hook_url, hook_token, port, n = sys.argv[1:5]
    n, warmup = int(n), int(sys.argv[5]) if len(sys.argv) > 5 else 20
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Target)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    u = urllib.parse.urlsplit(hook_url)
    post = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    run = "%08x" % (int(time.time() * 1000) & 0xFFFFFFFF)
    samples = []
    for i in range(warmup + n):
        key = f"fwd-{run}-{i}"
        t0 = time.perf_counter()
        post.request("POST", u.path, body=json.dumps({"bench": key}), headers={
            "Authorization": f"Bearer {hook_token}",
            "Content-Type": "application/json",
        })
        r = post.getresponse()
        r.read()
        assert 200 <= r.status < 300, r.status
        with cond:
            if not cond.wait_for(lambda: key in arrived, timeout=30):
                raise SystemExit(f"{key} never reached the target")
            t1 = arrived[key]
        if i >= warmup:
            samples.append((t1 - t0) * 1000)
    srv.shutdown()
    s = sorted(samples)
    pct = lambda p: s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]
    print(f"RESULT n={n} p50_ms={pct(50):.2f} p90_ms={pct(90):.2f} p99_ms={pct(99):.2f} "
          f"max_ms={s[-1]:.2f} mean_ms={sum(s) / len(s):.2f}")


main()
