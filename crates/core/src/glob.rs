//! Globs with the Kite manifest's semantics: `*` stops at `/`, `**` crosses
//! it, `?`, `[…]`, `{a,b}`, and `\` escapes.

use globset::{GlobBuilder, GlobMatcher};

/// A compiled glob that remembers its pattern for display and errors.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    matcher: GlobMatcher,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob {pattern:?}: {problem}")]
pub struct GlobError {
    pub pattern: String,
    pub problem: String,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .empty_alternates(true)
            .build()
            .map_err(|e| GlobError {
                pattern: pattern.to_string(),
                problem: e.kind().to_string(),
            })?;
        Ok(Self {
            pattern: pattern.to_string(),
            matcher: glob.compile_matcher(),
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl<'de> serde::Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Glob::new(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Glob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("refs/heads/*", "refs/heads/main", true)]
    #[case("refs/*", "refs/heads/main", false)]
    #[case("refs/**", "refs/heads/main", true)]
    #[case("com.github.*", "com.github.push", true)]
    #[case(
        "com.stripe.*payment_failed*",
        "com.stripe.invoice.payment_failed",
        true
    )]
    #[case("*\\[bot\\]", "dependabot[bot]", true)]
    #[case("com.{github,stripe}.*", "com.stripe.x", true)]
    #[case("deploy/**", "src/main.rs", false)]
    fn kite_glob_semantics(#[case] pat: &str, #[case] text: &str, #[case] want: bool) {
        assert_eq!(
            Glob::new(pat).unwrap().is_match(text),
            want,
            "{pat} vs {text}"
        );
    }

    #[test]
    fn bad_glob_is_an_error() {
        let e = Glob::new("com.[github").unwrap_err();
        assert!(e.to_string().contains("com.[github"), "{e}");
    }
}
