#!/usr/bin/env bash
# Install what building and testing Kite Desk needs on Debian/Ubuntu.
# Idempotent: checks first, installs only what is missing, and is quick
# when everything is there. Uses sudo when not root.
set -euo pipefail

# System packages, by what needs them:
#   gcc, pkg-config   C parts of crates (SQLite is bundled and built by cc)
#   curl, ca-certificates   fetching crates
#   libwebkit2gtk-4.1-dev, libayatana-appindicator3-dev, librsvg2-dev,
#   libxdo-dev, libssl-dev, file   building the Tauri desktop app (src-tauri)
#   nodejs, npm   building the web UI (ui/); only when `node`/`npm` are absent
#                 (a NodeSource node ships its own npm and conflicts with Debian's)
#   xvfb, xauth, dbus-x11, at-spi2-core, x11-utils, xdotool   a headless display
#   dunst, libnotify-bin   a real notification server for the notification tests
#   gnome-keyring, libsecret-tools   a real Secret Service keychain (secret-tool)
#   chromium, fonts-dejavu-core   the browser the UI end-to-end tests drive
#   python3-dbus, python3-gi   the StatusNotifierWatcher stand-in for tray tests
PACKAGES=(gcc libc6-dev pkg-config curl ca-certificates
    libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev file
    xvfb xauth dbus-x11 at-spi2-core x11-utils xdotool
    dunst libnotify-bin gnome-keyring libsecret-tools
    chromium fonts-dejavu-core python3-dbus python3-gi)

command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is missing. Install Rust 1.90 or newer (https://rustup.rs), then run make again." >&2
    exit 1
fi
rust_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "${rust_minor:-0}" -lt 90 ]; then
    echo "setup: Rust $(rustc --version) is too old; Kite Desk needs 1.90 or newer." >&2
    exit 1
fi
