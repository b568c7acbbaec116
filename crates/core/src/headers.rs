//! Case-insensitive HTTP header list as it arrived, in order.

use serde::{Deserialize, Serialize};

/// Request headers with their original names kept for forwarding, looked up
/// case-insensitively. A `Vec` rather than a map: webhook requests carry a
/// dozen headers, and order and duplicates are preserved for faithful replay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers(Vec<(String, String)>);

/// Headers that authenticate the *request to us* and must never be stored or
/// forwarded: they would leak a hook token or API token.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of `name`, compared ASCII case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One entry per header name (compared ASCII case-insensitively, the
    /// first spelling kept), values of a repeated header joined with `", "`
    /// in arrival order, as RFC 9110 §5.3 allows. For a JSON object such as
    /// `kiteoriginalheaders`, which cannot hold a name twice: inserting
    /// repeats into a map would silently keep only the last value.
    pub fn folded(&self) -> Headers {
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.0.len());
        for (name, value) in &self.0 {
            match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, v)) => {
                    v.push_str(", ");
                    v.push_str(value);
                }
                None => out.push((name.clone(), value.clone())),
            }
        }
        Headers(out)
    }

    /// The headers worth keeping with an event: everything except credentials
    /// for our own endpoints and hop-by-hop transport headers.
    pub fn for_storage(&self) -> Headers {
        const HOP: &[&str] = &[
            "connection",
            "keep-alive",
            "transfer-encoding",
            "te",
            "upgrade",
            "host",
            "content-length",
        ];
        Headers(
            self.0
                .iter()
                .filter(|(n, _)| {
                    let n = n.to_ascii_lowercase();
                    !CREDENTIAL_HEADERS.contains(&n.as_str()) && !HOP.contains(&n.as_str())
                })
                .cloned()
                .collect(),
        )
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<T: IntoIterator<Item = (N, V)>>(iter: T) -> Self {
        Headers(
            iter.into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_storage_drops_credentials() {
        let h: Headers = [
            ("X-GitHub-Event", "push"),
            ("Authorization", "Bearer khk_secret"),
            ("Host", "127.0.0.1"),
        ]
        .into_iter()
        .collect();
        assert_eq!(h.get("x-github-event"), Some("push"));
        let kept = h.for_storage();
        assert_eq!(kept.len(), 1, "only the provider header survives: {kept:?}");
        assert_eq!(kept.get("authorization"), None);
    }

    #[test]
    fn folding_joins_repeats_in_order_and_keeps_the_first_spelling() {
        let h: Headers = [
            ("Via", "1.1 relay"),
            ("Content-Type", "application/json"),
            ("via", "1.1 tunnel"),
        ]
        .into_iter()
        .collect();
        let f = h.folded();
        assert_eq!(
            f.iter().collect::<Vec<_>>(),
            [
                ("Via", "1.1 relay, 1.1 tunnel"),
                ("Content-Type", "application/json")
            ],
            "no value is lost and the order of first appearance is kept"
        );
    }
}
