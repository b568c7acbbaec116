//! The line protocol between the tray process and its window process.
//!
//! The window (the webview and with it every WebKit process) lives in a
//! child process, `kitedesk-app --window`, so closing it gives all of
//! WebKit's memory back: the tray process never loads a webview. The tray
//! process writes [`ToWindow`] lines to the child's stdin (the first one
//! says where to go; the URL carries the API token, which is why it travels
//! over a pipe and never in argv) and reads [`FromWindow`] lines from its
//! stdout. The child ends when its window closes or its stdin closes (the
//! tray process quit).

use std::fmt;

/// Tray process → window process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToWindow {
    /// Raise and focus the window where it is.
    Show,
    /// Load this URL, then raise and focus the window.
    Open(String),
}

/// Window process → tray process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromWindow {
    /// The window gained (`true`) or lost (`false`) the keyboard focus.
    Focused(bool),
}

impl ToWindow {
    /// One line, without the newline. URLs hold no whitespace or newline
    /// (they are serialized by `url`), so the line is unambiguous.
    pub fn to_line(&self) -> String {
        self.to_string()
    }

    /// Parse a line (a trailing newline is ignored); `None` if unknown.
    pub fn parse(line: &str) -> Option<ToWindow> {
        let line = line.trim_end_matches(['\n', '\r']);
        match line.split_once(' ') {
            None if line == "show" => Some(ToWindow::Show),
            Some(("open", url)) if !url.is_empty() && !url.contains(char::is_whitespace) => {
                Some(ToWindow::Open(url.to_string()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ToWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToWindow::Show => f.write_str("show"),
            ToWindow::Open(url) => write!(f, "open {url}"),
        }
    }
}

impl FromWindow {
    pub fn to_line(self) -> String {
        self.to_string()
    }

    pub fn parse(line: &str) -> Option<FromWindow> {
        match line.trim_end_matches(['\n', '\r']) {
            "focused 1" => Some(FromWindow::Focused(true)),
            "focused 0" => Some(FromWindow::Focused(false)),
            _ => None,
        }
    }
}

impl fmt::Display for FromWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromWindow::Focused(b) => write!(f, "focused {}", u8::from(*b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_window_round_trips() {
        for m in [
            ToWindow::Show,
            ToWindow::Open("http://127.0.0.1:4100/events/42?token=kd_x".into()),
        ] {
            assert_eq!(ToWindow::parse(&format!("{}\n", m.to_line())), Some(m));
        }
    }

    #[test]
    fn from_window_round_trips() {
        for m in [FromWindow::Focused(true), FromWindow::Focused(false)] {
            assert_eq!(FromWindow::parse(&m.to_line()), Some(m));
        }
    }

    #[test]
    fn unknown_lines_are_none() {
        for l in [
            "",
            "open",
            "open ",
            "open a b",
            "shown",
            "show now",
            "Gtk-WARNING",
        ] {
            assert_eq!(ToWindow::parse(l), None, "{l:?}");
        }
        for l in ["", "focused", "focused 2", "focused true"] {
            assert_eq!(FromWindow::parse(l), None, "{l:?}");
        }
    }
}
