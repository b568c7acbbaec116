#!/usr/bin/python3
"""A bare WebKitGTK window for memory experiments (bench/RESULTS.md,
"Session 6"): one WebView loads a small page (40 list rows built by JS)
from an http.server on 127.0.0.1:0, and after --wait seconds this prints
one JSON line: PSS (/proc/PID/smaps_rollup) of this process and of its
WebKit children, whether each maps libLLVM / a Mesa DRI driver, and the
page's heading read back (so a crashed or blank page shows).

Run it the way the app's window process runs WebKit, e.g.

    env GDK_GL=disable MALLOC_ARENA_MAX=2 WEBKIT_DISABLE_DMABUF_RENDERER=1 \
        WEBKIT_WEB_RENDER_DEVICE_FILE=/dev/null JSC_useJIT=0 NO_AT_BRIDGE=1 \
        xvfb-run -a -s "-screen 0 1280x800x24" dbus-run-session -- \
        /usr/bin/python3 bench/desktop-webkit-probe.py --label base

and add the variable or option under test. H_DUMP=DIR also writes each
child's PSS per mapped file to DIR.
"""
import atexit, gi, re, os, shutil, tempfile, sys, time, json, threading, http.server, functools, argparse
gi.require_version("Gtk", "3.0"); gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2, GLib, Gdk
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>probe</title>
<style>body{font-family:sans-serif;margin:20px} li{padding:4px;border-bottom:1px solid #ccc} .c{color:#b00}</style></head>
<body><h1 id="h">Loading…</h1><ul id="l"></ul>
<script>
const l=document.getElementById('l');
for(let i=0;i<40;i++){const li=document.createElement('li');li.textContent='event '+i+' com.github.pull_request '+(i*7919%1000);if(i%5==0)li.className='c';l.appendChild(li);}
document.getElementById('h').textContent='Rendered 40 rows';
</script></body></html>
"""
ap = argparse.ArgumentParser()
ap.add_argument("--wait", type=float, default=15)
ap.add_argument("--cache", default="document_viewer")
ap.add_argument("--mem-limit", type=int, default=0)   # MB
ap.add_argument("--no-page-cache", action="store_true")
ap.add_argument("--compositing-before-load", action="store_true")
ap.add_argument("--shot", default="")
ap.add_argument("--label", default="")
ap.add_argument("--ephemeral", action="store_true")
ap.add_argument("--no-accel-policy", action="store_true")
a = ap.parse_args()
here = tempfile.mkdtemp(prefix="webkit-probe.")
atexit.register(shutil.rmtree, here, True)
with open(os.path.join(here, "page.html"), "w") as f:
    f.write(PAGE)
H = functools.partial(http.server.SimpleHTTPRequestHandler, directory=here)
class Q(H.func):
    def log_message(self, *x): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Q, directory=here))
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{srv.server_address[1]}/page.html"

kw = {}
if a.mem_limit:
    mps = WebKit2.MemoryPressureSettings.new()
    mps.set_memory_limit(a.mem_limit)
    kw["memory_pressure_settings"] = mps
if a.ephemeral:
    dm = WebKit2.WebsiteDataManager.new_ephemeral()
    kw["website_data_manager"] = dm
ctx = WebKit2.WebContext(**kw)
cm = {"document_viewer": WebKit2.CacheModel.DOCUMENT_VIEWER, "web_browser": WebKit2.CacheModel.WEB_BROWSER,
      "document_browser": WebKit2.CacheModel.DOCUMENT_BROWSER}[a.cache]
ctx.set_cache_model(cm)
settings = WebKit2.Settings()
if a.compositing_before_load and not a.no_accel_policy:
    settings.set_hardware_acceleration_policy(WebKit2.HardwareAccelerationPolicy.NEVER)
if a.no_page_cache:
    settings.set_enable_page_cache(False)
view = WebKit2.WebView(web_context=ctx, settings=settings) if a.compositing_before_load else WebKit2.WebView(web_context=ctx)
if not a.compositing_before_load and not a.no_accel_policy:
    # as the app does: after the view exists (tauri with_webview after build)
    view.get_settings().set_hardware_acceleration_policy(WebKit2.HardwareAccelerationPolicy.NEVER)
win = Gtk.Window(title="probe"); win.set_default_size(1100, 760); win.add(view); win.show_all()
win.connect("destroy", Gtk.main_quit)
title = {"t": ""}
def loaded(v, ev):
    if ev == WebKit2.LoadEvent.FINISHED: title["t"] = "loaded"
view.connect("load-changed", loaded)
crashed = {"c": False}
def crash(v, reason): crashed["c"] = str(reason); return False
view.connect("web-process-terminated", crash)
view.load_uri(url)

def kids(root):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            st = open(f"/proc/{p}/stat").read(); ppid = int(st.rsplit(")", 1)[1].split()[1])
        except Exception: continue
        if ppid == root: out.append(int(p))
    res = []
    for k in out: res += [k] + kids(k)
    return res
def pss(pid):
    for l in open(f"/proc/{pid}/smaps_rollup"):
        if l.startswith("Pss:"): return int(l.split()[1])
def maps(pid):
    m = open(f"/proc/{pid}/maps").read()
    return {"llvm": "libLLVM" in m, "dri": "_dri.so" in m, "egl_mesa": "libEGL_mesa" in m}
def smapsum(pid):
    agg={}; cur=None
    for l in open(f"/proc/{pid}/smaps"):
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", l):
            parts=l.split(None,5); cur=(parts[5].strip() if len(parts)>5 else "[anon]") or "[anon]"
            agg.setdefault(cur,[0,0,0])
        elif l.startswith("Pss:"): agg[cur][0]+=int(l.split()[1])
        elif l.startswith("Private_Dirty:"): agg[cur][1]+=int(l.split()[1])
        elif l.startswith("Private_Clean:"): agg[cur][2]+=int(l.split()[1])
    return sorted(agg.items(), key=lambda x:-x[1][0])[:25]
def measure():
    me = os.getpid(); res = {"label": a.label, "procs": []}
    if os.environ.get("H_DUMP"):
        for p in kids(me):
            try: c=open(f"/proc/{p}/comm").read().strip()
            except Exception: continue
            with open(os.path.join(os.environ["H_DUMP"], f"smaps-{a.label}-{c}.txt"),"w") as f:
                for k,(ps,pd,pc) in smapsum(p): f.write(f"{ps/1024:8.1f} MB pss  {pd/1024:6.1f} dirty {pc/1024:6.1f} clean  {k}\n")
    tot = 0
    for p in [me] + kids(me):
        try:
            comm = open(f"/proc/{p}/comm").read().strip(); k = pss(p); mm = maps(p)
        except Exception: continue
        tot += k
        res["procs"].append(dict(pid=p, comm=comm, pss_kb=k, **mm))
    res["total_mb"] = round(tot / 1024, 1); res["crashed"] = crashed["c"]; res["load"] = title["t"]
    # page text check
    def done(obj, result, _):
        try:
            v = view.evaluate_javascript_finish(result); res["h1"] = v.to_string()
        except Exception as e: res["h1"] = "ERR " + str(e)[:80]
        if a.shot:
            w = win.get_window(); pb = Gdk.pixbuf_get_from_window(w, 0, 0, w.get_width(), w.get_height())
            pb.savev(a.shot, "png", [], [])
        print(json.dumps(res), flush=True)
        Gtk.main_quit()
    view.evaluate_javascript("document.getElementById('h').textContent", -1, None, None, None, done, None)
    return False
GLib.timeout_add(int(a.wait * 1000), measure)
GLib.timeout_add(int((a.wait + 20) * 1000), lambda: (print(json.dumps({"label": a.label, "timeout": True, "crashed": crashed["c"]})), Gtk.main_quit()))
Gtk.main()
