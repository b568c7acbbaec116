//! Importance scoring: manifest rules first (first match wins), then the
//! built-in defaults per provider and event, then `default_importance`.

use crate::event::Importance;
use crate::manifest::{MatchRule, Scoring};
use crate::payload::Doc;
use crate::providers;

/// What scoring decided and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub importance: Importance,
    pub reason: String,
}

/// The event facts scoring looks at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub source_name: &'a str,
    pub ty: &'a str,
    /// The event's data (for a structured CloudEvent, its `data` member).
    pub data: &'a Doc<'a>,
    /// Files the event touched: a GitHub push's commits, or an enrichment
    /// hook's `changed_files`.
    pub changed_files: &'a [String],
}

impl MatchRule {
    /// All present fields must match (AND); `actor` is `data.sender.login`,
    /// `ref` is `data.ref`, as in the Kite CLI.
    pub fn matches(&self, f: &Facts<'_>) -> bool {
        let field = |path: &[&str]| providers::s(f.data, path).unwrap_or("");
        self.source
            .as_ref()
            .is_none_or(|g| g.is_match(f.source_name))
            && self.ty.as_ref().is_none_or(|g| g.is_match(f.ty))
            && self
                .actor
                .as_ref()
                .is_none_or(|g| g.is_match(field(&["sender", "login"])))
            && self
                .git_ref
                .as_ref()
                .is_none_or(|g| g.is_match(field(&["ref"])))
    }
}

/// Score one event.
pub fn score(scoring: &Scoring, f: &Facts<'_>) -> Score {
    for (n, rule) in scoring.rules.iter().enumerate() {
        if !rule.rule.matches(f) {
            continue;
        }
        if !rule.paths.is_empty() {
            let hit = f
                .changed_files
                .iter()
                .find(|file| rule.paths.iter().any(|g| g.is_match(file)));
            let Some(file) = hit else { continue };
            return Score {
                importance: rule.importance,
                reason: rule
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("scoring rule {} matched path {file}", n + 1)),
            };
        }
        return Score {
            importance: rule.importance,
            reason: rule
                .reason
                .clone()
                .unwrap_or_else(|| format!("scoring rule {} matched", n + 1)),
        };
    }
    if let Some((importance, why)) = builtin(f.ty, f.data) {
        return Score {
            importance,
            reason: format!("built-in: {why}"),
        };
    }
    Score {
        importance: scoring.default_importance,
        reason: "default importance".to_string(),
    }
}

/// Kite Desk's own defaults (the Kite CLI has none, so nothing would ever be
/// critical). Returns `None` for events that take `default_importance`.
pub fn builtin(ty: &str, data: &Doc<'_>) -> Option<(Importance, &'static str)> {
    use Importance::*;
    let conclusion = |obj: &str| providers::s(data, &[obj, "conclusion"]);
    let failed = |c: Option<&str>| matches!(c, Some("failure" | "timed_out" | "startup_failure"));
    Some(match ty {
        "com.stripe.payment_intent.payment_failed"
        | "com.stripe.invoice.payment_failed"
        | "com.stripe.charge.failed"
        | "com.stripe.checkout.session.async_payment_failed"
        | "kite.subscription.payment_failed" => (Critical, "payment failure"),
        "com.stripe.charge.dispute.created" | "com.stripe.radar.early_fraud_warning.created" => {
            (Critical, "dispute or fraud warning")
        }
        "com.github.security_advisory"
        | "com.github.secret_scanning_alert"
        | "com.github.repository_vulnerability_alert"
        | "com.github.dependabot_alert"
        | "com.github.code_scanning_alert" => (Critical, "security event"),
        // Kiket's facts sit in the envelope's `payload`.
        "com.kiket.workflow.sla_status" => {
            match providers::kiket_sla_state(data.get("payload").unwrap_or(data)).as_deref() {
                Some("breach" | "breached") => (Critical, "SLA breach"),
                Some("warning" | "risk" | "at_risk") => (High, "SLA at risk"),
                _ => return None,
            }
        }
        "com.kiket.extension.delivery.failed" => (Critical, "extension delivery failed"),
        "com.kiket.workflow.approval.requested" => (High, "approval requested"),
        "com.kiket.marketplace.installation.secrets.pending" => {
            (High, "installation secrets missing or expiring")
        }
        "com.kiket.analytics.dbt.run.failed" => (High, "dbt run failed"),
        // The catalog's `run.completed` covers failed runs too.
        "com.kiket.analytics.dbt.run.completed"
            if matches!(
                providers::s(data.get("payload").unwrap_or(data), &["status"]),
                Some("failure" | "failed" | "error")
            ) =>
        {
            (High, "dbt run failed")
        }
        "com.github.workflow_run" if failed(conclusion("workflow_run")) => {
            (High, "workflow run failed")
        }
        "com.github.check_run" if failed(conclusion("check_run")) => (High, "check run failed"),
        "com.github.ping" => (Low, "webhook ping"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use serde_json::json;

    fn doc(v: &serde_json::Value) -> Doc<'_> {
        Doc::from(v)
    }

    fn facts<'a>(ty: &'a str, data: &'a Doc<'a>, files: &'a [String]) -> Facts<'a> {
        Facts {
            source_name: crate::event::derive_source_name(ty),
            ty,
            data,
            changed_files: files,
        }
    }

    #[test]
    fn builtins_mark_failures() {
        let d = json!({});
        let d = doc(&d);
        let s = score(
            &Scoring::default(),
            &facts("com.stripe.payment_intent.payment_failed", &d, &[]),
        );
        assert_eq!(s.importance, Importance::Critical);
        assert_eq!(s.reason, "built-in: payment failure");
        let wf = json!({"workflow_run": {"conclusion": "failure"}});
        let wf = doc(&wf);
        assert_eq!(
            score(
                &Scoring::default(),
                &facts("com.github.workflow_run", &wf, &[])
            )
            .importance,
            Importance::High
        );
        let ok = json!({"workflow_run": {"conclusion": "success"}});
        let ok = doc(&ok);
        assert_eq!(
            score(
                &Scoring::default(),
                &facts("com.github.workflow_run", &ok, &[])
            )
            .importance,
            Importance::Normal
        );
        let sla = json!({"event": "workflow.sla_status", "payload": {"status": "breach"}});
        let sla = doc(&sla);
        let s = score(
            &Scoring::default(),
            &facts("com.kiket.workflow.sla_status", &sla, &[]),
        );
        assert_eq!(
            (s.importance, s.reason.as_str()),
            (Importance::Critical, "built-in: SLA breach"),
            "state is read from the envelope payload"
        );
        let ping = json!({});
        let ping = doc(&ping);
        assert_eq!(
            score(&Scoring::default(), &facts("com.github.ping", &ping, &[])).importance,
            Importance::Low
        );
    }

    #[test]
    fn rules_win_over_builtins_and_paths_need_a_touched_file() {
        let m = Manifest::from_json(
            br#"{"scoring": {"default_importance": "low", "rules": [
                {"match": {"type": "com.github.push"}, "paths": ["deploy/**"], "importance": "critical", "reason": "deploy config changed"},
                {"match": {"type": "com.github.ping"}, "importance": "high"}
            ]}}"#,
        )
        .unwrap();
        let d = json!({});
        let d = doc(&d);
        let files = vec!["deploy/prod/values.yaml".to_string()];
        let s = score(&m.scoring, &facts("com.github.push", &d, &files));
        assert_eq!(
            (s.importance, s.reason.as_str()),
            (Importance::Critical, "deploy config changed")
        );
        let other = vec!["src/lib.rs".to_string()];
        let s = score(&m.scoring, &facts("com.github.push", &d, &other));
        assert_eq!(
            s.importance,
            Importance::Low,
            "no deploy path touched → default"
        );
        let s = score(&m.scoring, &facts("com.github.ping", &d, &[]));
        assert_eq!(
            (s.importance, s.reason.as_str()),
            (Importance::High, "scoring rule 2 matched")
        );
    }
}
