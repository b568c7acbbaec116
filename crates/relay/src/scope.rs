//! Connection scopes (Kite protocol §1.3): which events of a team a
//! WebSocket client receives. Several scopes are OR'd.
//!
//! * `*`: everything.
//! * `source:NAME`: events that came in on source `NAME`
//!   (`/hooks/{team}/NAME`), or whose CloudEvent `source` contains `NAME`
//!   (the Kite relay's substring rule, so Kite CLI `--source` still works).
//! * `type:PATTERN`: a glob on the CloudEvent `type` when `PATTERN` has glob
//!   characters (`com.github.pull_request.*`), else a substring match, as
//!   the Kite CLI sends plain names (`type:push`).
//! * `agent_to:ID`: `com.kite.agent.message` events whose `data.to` is `ID`.

use kitedesk_core::glob::Glob;

#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Source(String),
    TypeContains(String),
    TypeGlob(Glob),
    AgentTo(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scope {scope:?}: {problem}")]
pub struct ScopeError {
    pub scope: String,
    pub problem: String,
}

/// The facts a scope looks at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub source_name: &'a str,
    pub ce_source: &'a str,
    pub ce_type: &'a str,
    /// The CloudEvent JSON, parsed only for `agent_to:` scopes.
    pub event_json: &'a str,
}

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, ScopeError> {
        let err = |problem: &str| ScopeError {
            scope: s.to_string(),
            problem: problem.to_string(),
        };
        let s = s.trim();
        if s == "*" {
            return Ok(Scope::All);
        }
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| err("expected *, source:NAME, type:PATTERN or agent_to:ID"))?;
        if value.is_empty() {
            return Err(err("empty value"));
        }
        match kind {
            "source" => Ok(Scope::Source(value.to_string())),
            "type" if value.contains(['*', '?', '[', '{']) => Glob::new(value)
                .map(Scope::TypeGlob)
                .map_err(|e| err(&e.problem)),
            "type" => Ok(Scope::TypeContains(value.to_string())),
            "agent_to" => Ok(Scope::AgentTo(value.to_string())),
            _ => Err(err("unknown kind: expected source, type or agent_to")),
        }
    }

    pub fn matches(&self, f: &Facts<'_>) -> bool {
        match self {
            Scope::All => true,
            Scope::Source(name) => f.source_name == name || f.ce_source.contains(name.as_str()),
            Scope::TypeContains(t) => f.ce_type.contains(t.as_str()),
            Scope::TypeGlob(g) => g.is_match(f.ce_type),
            Scope::AgentTo(id) => {
                f.ce_type == kite_protocol::agent_message::EVENT_TYPE
                    && serde_json::from_str::<serde_json::Value>(f.event_json)
                        .ok()
                        .and_then(|v| v.get("data")?.get("to")?.as_str().map(|to| to == id))
                        .unwrap_or(false)
            }
        }
    }
}

/// Parse a list of scopes; an empty list means everything (`*`).
pub fn parse_all(scopes: &[String]) -> Result<Vec<Scope>, ScopeError> {
    if scopes.is_empty() {
        return Ok(vec![Scope::All]);
    }
    scopes.iter().map(|s| Scope::parse(s)).collect()
}

/// Whether any scope matches.
pub fn any_match(scopes: &[Scope], f: &Facts<'_>) -> bool {
    scopes.iter().any(|s| s.matches(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(source_name: &'a str, ty: &'a str) -> Facts<'a> {
        Facts {
            source_name,
            ce_source: "https://github.com/acme/api",
            ce_type: ty,
            event_json: "{}",
        }
    }

    #[test]
    fn scopes_match_like_the_kite_relay() {
        let push = facts("github", "com.github.push");
        assert!(Scope::parse("*").unwrap().matches(&push));
        assert!(Scope::parse("source:github").unwrap().matches(&push));
        assert!(
            Scope::parse("source:acme").unwrap().matches(&push),
            "source: also matches a substring of the CloudEvent source URI"
        );
        assert!(!Scope::parse("source:stripe").unwrap().matches(&push));
        assert!(Scope::parse("type:push").unwrap().matches(&push));
        assert!(Scope::parse("type:com.github.*").unwrap().matches(&push));
        assert!(!Scope::parse("type:com.stripe.*").unwrap().matches(&push));
        assert!(
            !Scope::parse("type:com.github.pull_request.*")
                .unwrap()
                .matches(&push)
        );
    }

    #[test]
    fn agent_to_reads_data_to() {
        let json = r#"{"type":"com.kite.agent.message","data":{"to":"bob","from":"a","body":"x"}}"#;
        let f = Facts {
            source_name: "agents",
            ce_source: "https://getkite.sh/agents/a",
            ce_type: "com.kite.agent.message",
            event_json: json,
        };
        assert!(Scope::parse("agent_to:bob").unwrap().matches(&f));
        assert!(!Scope::parse("agent_to:carol").unwrap().matches(&f));
    }

    #[test]
    fn bad_scopes_are_refused_with_a_reason() {
        for bad in ["", "source:", "kind:x", "type:[", "github"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
