# Webhook POST → Notify call observed, per event.
#
# Runs inside a D-Bus session with a notification server (see
# bench/notify-latency.sh). Becomes a bus monitor for Notify calls, then for
# each event: takes t0, writes the POST request on a keep-alive connection,
# iterates the GLib loop until the Notify call whose summary carries this
# event's marker is seen (t1, taken in the message callback), then reads the
# HTTP answer. Prints one line per event: the latency (ms), and when the
# HTTP answer had been read (ms).
#
#   python3 notify_latency.py URL EVENTS WARMUP
import http.client
import json
import sys
import time
import urllib.parse

import dbus
import dbus.bus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

url, events, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
u = urllib.parse.urlparse(url)

DBusGMainLoop(set_as_default=True)
import os
bus = dbus.bus.BusConnection(os.environ["DBUS_SESSION_BUS_ADDRESS"])
seen = {}


# Notify calls not yet answered, by (sender, serial). The next event is sent
# only once the server answered the last one: the server (dunst drawing on
# Xvfb answers ~25 calls a second here) must not fall behind the one-at-a-time
# pace and leave the daemon with a backlog of unanswered calls, which it
# drops as "server_busy" after 64. The budget is the daemon's latency.
unanswered = set()


def on_message(_bus, msg):
    if msg.get_type() == 2:  # method return
        unanswered.discard((msg.get_destination(), msg.get_reply_serial()))
    elif msg.get_member() == "Notify":
        now = time.perf_counter()
        summary = str(msg.get_args_list()[3])
        seen.setdefault(summary, now)
        unanswered.add((msg.get_sender(), msg.get_serial()))


bus.add_message_filter(on_message)
bus.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                  "org.freedesktop.DBus.Monitoring", "BecomeMonitor", "asu",
                  (["type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
                    "type='method_return'"], 0))
ctx = GLib.MainContext.default()
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
out = []
for i in range(warmup + events):
    marker = f"bench-{os.getpid()}-{i}"
    summary = f"acme: {marker}"
    body = json.dumps({"message": marker}).encode()
    t0 = time.perf_counter()
    conn.request("POST", "/hooks/acme", body, {"content-type": "application/json"})
    # Block in the loop (no busy polling: the daemon needs the CPU); a
    # timer wakes it for the deadline.
    timer = GLib.timeout_add(10_000, lambda: False)
    while summary not in seen:
        ctx.iteration(True)
        if time.perf_counter() - t0 > 10:
            sys.exit(f"no Notify call for {marker} within 10 s")
    GLib.source_remove(timer)
    resp = conn.getresponse()
    resp.read()
    t_resp = time.perf_counter()
    if resp.status != 202:
        sys.exit(f"POST answered {resp.status}")
    timer = GLib.timeout_add(10_000, lambda: False)
    while unanswered:
        ctx.iteration(True)
        if time.perf_counter() - t0 > 10:
            sys.exit(f"the notification server did not answer the Notify call for {marker} within 10 s")
    GLib.source_remove(timer)
    if i >= warmup:
        out.append(((seen.pop(summary) - t0) * 1000, (t_resp - t0) * 1000))
    else:
        seen.pop(summary)
# Column 2: when the HTTP answer had been read (after the Notify call was
# seen, so an upper bound on the ingest answer time), for diagnosis.
for ms, resp_ms in out:
    print(f"{ms:.3f} {resp_ms:.3f}")
