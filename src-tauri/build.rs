//! Tauri's build step. The config lives at the repository root (see the
//! README), so point tauri-build at it; `generate_context!` in lib.rs reads
//! the same file.

fn main() {
    tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
        .unwrap_or_else(|e| panic!("tauri-build failed: {e:#}"));
}
