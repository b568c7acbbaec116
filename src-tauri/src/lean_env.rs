//! Start in a lean environment: on Linux the app re-executes itself once,
//! at the very start, with
//!
//! * `GDK_GL=disable`: GDK otherwise probes GLX when it opens the display,
//!   which loads Mesa's driver; on a machine with software GL (llvmpipe)
//!   that maps libLLVM, ~26 MB PSS in a tray process that draws no GL
//!   (bench/desktop-memory.sh). The window's WebKit does not composite on
//!   the GPU either (see `window_process.rs`), so nothing uses GL.
//! * `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates its own
//!   arena (up to 8 per core), and a tokio process keeps their free pages.
//!
//! glibc and GDK read these when the process starts, so they must be in the
//! environment before `main`; setting them from inside would need the
//! `unsafe` `set_var`. A value the user set is kept. A marker variable stops
//! a second re-exec; argv (including argv\[0\]) and the pid are unchanged,
//! so single instance, autostart and anyone waiting on the pid see no
//! difference. If the exec fails the app runs on as it is.
//!
//! The window process gets a few more ([`WINDOW`]), set on the command that
//! starts it only: they concern WebKit, which the tray process never runs.

/// Set in the re-executed process (and inherited by the window process).
pub(crate) const MARKER: &str = "KITEDESK_LEAN_ENV";

/// The variables and the values the app starts with unless already set.
pub(crate) const LEAN: [(&str, &str); 2] = [("GDK_GL", "disable"), ("MALLOC_ARENA_MAX", "2")];

/// What the window process (`kitedesk-app --window`) and with it WebKit's
/// processes start with, unless the user set a value: WebKit reads these
/// when it starts, and they concern only the webview, so they go on the
/// window process's command rather than into the tray process. Measured
/// with bench/desktop-memory.sh (bench/RESULTS.md, Sessions 5 and 6):
///
/// * `WEBKIT_DISABLE_DMABUF_RENDERER=1` and
///   `WEBKIT_WEB_RENDER_DEVICE_FILE=/dev/null`: WebKit otherwise opens an
///   EGL display in the window process, once to test for its DMA-BUF
///   renderer and once to find the GPU's DRM render node for the web
///   process; with Mesa that loads the GL driver and libLLVM (~28 MB PSS in
///   the window process, even though the view never composites on the GPU,
///   see `window_process.rs`). Without the DMA-BUF renderer the web process
///   paints in software into shared memory, which is what it did anyway
///   with acceleration off; the render node is then never used (it is
///   for GPU buffers and WebGL), so a path that is no device is enough.
///   WebKitGTK 2.50's web process still opens one (its drawing area reads
///   the compositing setting before the page's preferences are applied), so
///   with Mesa ~28 MB of libLLVM remain there: every Mesa DRI driver is one
///   file that links libLLVM, and a web process whose EGL display cannot be
///   initialised aborts (bench/RESULTS.md, "Session 6").
/// * `JSC_useJIT=0`: JavaScriptCore runs the UI in its interpreter. A list
///   UI fetched page by page has no hot loops worth compiling, and the JIT's
///   code and compiler pages cost ~9 MB PSS in the web process.
/// * `GALLIUM_DRIVER=softpipe` and `DRAW_USE_LLVM=0`: when Mesa's software
///   rasteriser serves the EGL display the web process must open (above),
///   it is softpipe instead of llvmpipe. libLLVM is still mapped (it is
///   the same driver file), but llvmpipe's own setup is skipped: 0.6-0.8 MB
///   PSS less in the web process of a bare WebKitGTK window, within the
///   run-to-run spread in the app (bench/RESULTS.md, "Session 6"). Nothing
///   there draws with GL (see `window_process.rs`), and the variables only
///   choose among Mesa's software drivers.
///
/// What did not help, and why libLLVM stays mapped in the web process, is
/// in bench/RESULTS.md ("Session 6").
pub(crate) const WINDOW: [(&str, &str); 5] = [
    ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
    ("WEBKIT_WEB_RENDER_DEVICE_FILE", "/dev/null"),
    ("JSC_useJIT", "0"),
    ("GALLIUM_DRIVER", "softpipe"),
    ("DRAW_USE_LLVM", "0"),
];

/// [`WINDOW`] on `cmd`, keeping what the user set.
pub(crate) fn window_env(cmd: &mut std::process::Command) {
    for (k, v) in WINDOW {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) fn reexec() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os(MARKER).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args).env(MARKER, "1");
    for (k, v) in LEAN {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    // Only returns on failure (e.g. the binary was replaced on disk).
    let err = cmd.exec();
    eprintln!("kitedesk-app: cannot restart in the lean environment ({err}); going on");
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn reexec() {}
