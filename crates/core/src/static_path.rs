//! Mapping a request path (untrusted) to a file path inside the embedded
//! web UI, refusing anything that could climb out of it.

/// The path relative to the UI root (`index.html` for `/`), or `None` for a
/// path with a `..` segment, a backslash, a NUL, a bad `%` escape or
/// invalid UTF-8 — checked after percent-decoding, so `%2e%2e` counts.
pub fn static_path(path: &str) -> Option<String> {
    let decoded = percent_decode(path)?;
    if decoded.contains('\\') || decoded.contains('\0') {
        return None;
    }
    let mut parts = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return None,
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Some("index.html".into());
    }
    Some(parts.join("/"))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        assert_eq!(static_path("/").as_deref(), Some("index.html"));
        assert_eq!(static_path("/events/12").as_deref(), Some("events/12"));
        assert_eq!(
            static_path("/assets/index-abc.js").as_deref(),
            Some("assets/index-abc.js")
        );
        assert_eq!(
            static_path("/./assets//x.css").as_deref(),
            Some("assets/x.css")
        );
        assert_eq!(static_path("/a%20b").as_deref(), Some("a b"));
    }

    #[test]
    fn climbing_out_is_refused() {
        for bad in [
            "/../Cargo.toml",
            "/assets/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/assets/%2E%2E%2f%2e%2e%2fetc%2fpasswd",
            "/..%5c..%5cwindows",
            "/a%00b",
            "/%zz",
            "/%2",
            "/%c0%ae%c0%ae/x",
        ] {
            assert_eq!(static_path(bad), None, "{bad} must be refused");
        }
    }
}
