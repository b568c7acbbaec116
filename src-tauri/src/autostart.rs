//! "Start at login": toggles the XDG autostart entry
//! ([`kitedesk_desktop::autostart`]) for this executable and its flags.

use anyhow::Context as _;
use kitedesk_desktop::args::AppArgs;
use kitedesk_desktop::autostart::Autostart;

pub(crate) fn is_enabled() -> bool {
    Autostart::from_env().is_ok_and(|a| a.is_enabled())
}

/// Switch the entry on or off; returns the new state.
pub(crate) fn set(args: &AppArgs, on: bool) -> anyhow::Result<bool> {
    let a = Autostart::from_env()?;
    if on {
        let exe = std::env::current_exe().context("cannot find this executable's path")?;
        a.enable(&exe, &args.autostart_args())?;
        tracing::info!(path = %a.path().display(), "start at login: on");
    } else {
        a.disable()?;
        tracing::info!(path = %a.path().display(), "start at login: off");
    }
    Ok(a.is_enabled())
}
