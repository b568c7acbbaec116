//! "Start at login": an XDG autostart entry,
//! `$XDG_CONFIG_HOME/autostart/kitedesk.desktop` (the Desktop Application
//! Autostart Specification; GNOME, KDE, XFCE and others read it).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "kitedesk.desktop";

#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("neither XDG_CONFIG_HOME nor HOME is set: cannot place the autostart entry")]
    NoConfigHome,
    #[error("the app's path or arguments are not UTF-8: {0:?}")]
    NotUtf8(OsString),
    #[error("cannot write the autostart entry {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the autostart entry {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The autostart entry's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autostart {
    path: PathBuf,
}

impl Autostart {
    /// `<config_home>/autostart/kitedesk.desktop`.
    pub fn in_config_home(config_home: &Path) -> Self {
        Self {
            path: config_home.join("autostart").join(FILE_NAME),
        }
    }

    /// From `XDG_CONFIG_HOME`, else `$HOME/.config`.
    pub fn from_env() -> Result<Self, AutostartError> {
        let home = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .ok_or(AutostartError::NoConfigHome)?;
        Ok(Self::in_config_home(&home))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entry exists and is not switched off (`Hidden=true` or
    /// `X-GNOME-Autostart-enabled=false`, which desktop settings apps write
    /// instead of deleting the file).
    pub fn is_enabled(&self) -> bool {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return false;
        };
        !text.lines().map(str::trim).any(|l| {
            l.eq_ignore_ascii_case("Hidden=true")
                || l.eq_ignore_ascii_case("X-GNOME-Autostart-enabled=false")
        })
    }

    /// Write the entry so the next login runs `exe args…`.
    pub fn enable(&self, exe: &Path, args: &[OsString]) -> Result<(), AutostartError> {
        let entry = desktop_entry(exe, args)?;
        let write = |e| AutostartError::Write {
            path: self.path.clone(),
            source: e,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        // Write-then-rename: a crash never leaves a half entry behind.
        let tmp = self.path.with_extension("desktop.tmp");
        std::fs::write(&tmp, entry).map_err(write)?;
        std::fs::rename(&tmp, &self.path).map_err(write)
    }

    pub fn disable(&self) -> Result<(), AutostartError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AutostartError::Remove {
                path: self.path.clone(),
                source: e,
            }),
        }
    }
}

/// The `.desktop` file's text.
pub fn desktop_entry(exe: &Path, args: &[OsString]) -> Result<String, AutostartError> {
    let mut exec = vec![exec_arg(exe.as_os_str())?];
    for a in args {
        exec.push(exec_arg(a)?);
    }
    Ok(format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=Kite Desk\n\
         Comment=Webhook events in the tray\n\
         Exec={}\n\
         Icon=kitedesk\n\
         Terminal=false\n\
         Categories=Development;\n\
         X-GNOME-Autostart-enabled=true\n",
        exec.join(" ")
    ))
}

/// One argument of an `Exec` key: quoted when it holds a reserved
/// character, with the spec's two escaping layers (the quoting rules, then
/// the string-value rule that turns each `\` into `\\`) and `%` doubled
/// (field codes).
fn exec_arg(arg: &std::ffi::OsStr) -> Result<String, AutostartError> {
    let s = arg
        .to_str()
        .ok_or_else(|| AutostartError::NotUtf8(arg.to_os_string()))?;
    const RESERVED: &[char] = &[
        ' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(',
        ')', '`',
    ];
    let s = s.replace('%', "%%");
    if !s.is_empty() && !s.contains(RESERVED) {
        return Ok(s);
    }
    let mut quoted = String::from("\"");
    for c in s.chars() {
        match c {
            // Inside quotes `"`, `` ` ``, `$` and `\` take a backslash …
            '"' | '`' | '$' => {
                quoted.push_str("\\\\");
                quoted.push(c);
            }
            // … and every backslash is doubled again by the string escape.
            '\\' => quoted.push_str("\\\\\\\\"),
            '\n' => quoted.push_str("\\n"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    Ok(quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_disable_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let a = Autostart::in_config_home(dir.path());
        assert!(!a.is_enabled(), "no entry yet");
        a.enable(Path::new("/usr/bin/kitedesk-app"), &["--hidden".into()])
            .unwrap();
        assert!(a.is_enabled());
        let text = std::fs::read_to_string(dir.path().join("autostart/kitedesk.desktop")).unwrap();
        assert!(
            text.contains("\nExec=/usr/bin/kitedesk-app --hidden\n"),
            "{text}"
        );
        a.disable().unwrap();
        assert!(!a.is_enabled());
        a.disable().unwrap(); // disabling twice is fine
    }

    #[test]
    fn switched_off_entries_count_as_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let a = Autostart::in_config_home(dir.path());
        a.enable(Path::new("/x"), &[]).unwrap();
        let text = std::fs::read_to_string(a.path()).unwrap();
        std::fs::write(
            a.path(),
            text.replace(
                "X-GNOME-Autostart-enabled=true",
                "X-GNOME-Autostart-enabled=false",
            ),
        )
        .unwrap();
        assert!(!a.is_enabled());
    }

    #[test]
    fn exec_quoting_follows_the_spec() {
        let e = |s: &str| exec_arg(std::ffi::OsStr::new(s)).unwrap();
        assert_eq!(e("/opt/kd/app"), "/opt/kd/app");
        assert_eq!(e("/home/a b/app"), "\"/home/a b/app\"");
        assert_eq!(e("100%"), "100%%");
        assert_eq!(e("a\"b"), "\"a\\\\\"b\"");
        assert_eq!(e("a\\b"), "\"a\\\\\\\\b\"");
        assert_eq!(e("$HOME"), "\"\\\\$HOME\"");
        assert_eq!(e(""), "\"\"");
    }
}
