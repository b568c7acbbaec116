//! Kiket: the body is an envelope `{event, id, timestamp, organization_id,
//! payload}`; retries reuse `id`, so it is the CloudEvent id.

use crate::payload::{Doc, NULL, Payload};
use chrono::{DateTime, Utc};

use super::{Inbound, NormalizeError, Normalized, at, first, i, s, truncate_chars};

pub(super) fn normalize(
    input: &Inbound<'_>,
    d: &Doc<'_>,
    data: Payload,
) -> Result<Normalized, NormalizeError> {
    let event = s(d, &["event"])
        .or_else(|| input.headers.get("x-kiket-event"))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(NormalizeError::MissingField {
            field: "event",
            expected: "string",
        })?
        .to_string();
    let id = s(d, &["id"])
        .or_else(|| input.headers.get("x-kiket-event-id"))
        .or_else(|| input.headers.get("x-kiket-delivery"))
        .map_or_else(|| input.mint_id.mint(), str::to_string);
    let org = first(d, &[&["organization_id"]])
        .map(str::to_string)
        .or_else(|| {
            d.get("organization_id")
                .and_then(Doc::as_i64)
                .map(|n| n.to_string())
        })
        .or_else(|| {
            input
                .headers
                .get("x-kiket-organization")
                .map(str::to_string)
        });
    let source = match org {
        Some(o) => format!("https://kiket.dev/organizations/{o}"),
        None => "https://kiket.dev".to_string(),
    };
    let time = s(d, &["timestamp"])
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| i(d, &["timestamp"]).and_then(|t| DateTime::from_timestamp(t, 0)))
        .unwrap_or(input.received);
    let payload = d.get("payload").unwrap_or(&NULL);
    Ok(Normalized {
        id,
        source,
        summary: summary(&event, payload),
        ty: format!("com.kiket.{event}"),
        time,
        data,
    })
}

/// The SLA state of a `workflow.sla_status` payload (`breach`, `warning`,
/// `risk`…), lowercased, for summaries and importance.
pub fn sla_state(payload: &Doc<'_>) -> Option<String> {
    first(
        payload,
        &[
            &["status"],
            &["state"],
            &["sla", "status"],
            &["sla", "state"],
            &["level"],
        ],
    )
    .map(str::to_ascii_lowercase)
}

fn has_issue(p: &Doc<'_>) -> bool {
    p.get("issue").is_some_and(Doc::is_object) || p.get("issue_key").is_some()
}

fn issue_ref(p: &Doc<'_>) -> String {
    let key = first(
        p,
        &[
            &["issue", "key"],
            &["issue", "identifier"],
            &["issue_key"],
            &["issue", "id"],
        ],
    )
    .map(str::to_string)
    .or_else(|| i(p, &["issue", "id"]).map(|n| format!("#{n}")));
    let title = first(p, &[&["issue", "title"], &["issue", "summary"]])
        .map(|t| format!(" \"{}\"", truncate_chars(t, 60)));
    match (key, title) {
        (Some(k), Some(t)) => format!("{k}{t}"),
        (Some(k), None) => k,
        (None, Some(t)) => format!("issue{t}"),
        (None, None) => "an issue".to_string(),
    }
}

fn actor<'v>(p: &'v Doc<'_>) -> &'v str {
    first(
        p,
        &[
            &["actor", "name"],
            &["actor", "email"],
            &["actor"],
            &["user", "name"],
        ],
    )
    .unwrap_or("someone")
}

fn name_of<'v>(v: &'v Doc<'_>) -> Option<&'v str> {
    match v {
        Doc::String(s) => Some(s),
        Doc::Object(_) => first(v, &[&["name"], &["email"], &["id"]]),
        _ => None,
    }
}

/// "842 ms", "9m 32s", "4h 23m" for a duration in seconds.
fn human_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "an unknown time".to_string();
    }
    if secs < 1.0 {
        return format!("{:.0} ms", secs * 1000.0);
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (d, h, m, s) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    match (d, h, m, s) {
        (0, 0, m, 0) => format!("{m}m"),
        (0, 0, m, s) => format!("{m}m {s}s"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d {h}h"),
    }
}

/// A duration from the first key present: `*_ms` keys are milliseconds,
/// `*_minutes` minutes, anything else seconds.
fn duration(p: &Doc<'_>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| {
        let v = p.get(k)?.as_f64()?;
        let secs = if k.ends_with("_ms") {
            v / 1000.0
        } else if k.ends_with("_minutes") {
            v * 60.0
        } else {
            v
        };
        Some(human_duration(secs))
    })
}

/// The extension or product an event is about.
fn extension<'v>(p: &'v Doc<'_>) -> Option<&'v str> {
    first(
        p,
        &[
            &["extension", "name"],
            &["product", "name"],
            &["extension_id"],
            &["extension", "id"],
            &["installation_id"],
        ],
    )
}

/// "Delivery of notify_channel to Slack Notifier".
fn delivery(p: &Doc<'_>) -> String {
    let to = extension(p).unwrap_or("extension");
    match first(p, &[&["action_key"]]) {
        Some(action) => format!("Delivery of {action} to {to}"),
        None => format!("Delivery to {to}"),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn summary(event: &str, p: &Doc<'_>) -> String {
    let by_actor = || {
        first(
            p,
            &[
                &["actor", "name"],
                &["actor", "email"],
                &["actor"],
                &["user", "name"],
            ],
        )
    };
    match event {
        "workflow.issue.transitioned" => {
            let from = first(
                p,
                &[
                    &["previous_state"],
                    &["from_state"],
                    &["transition", "from"],
                    &["from"],
                ],
            );
            let to = first(
                p,
                &[
                    &["next_state"],
                    &["to_state"],
                    &["transition", "to"],
                    &["to"],
                ],
            );
            match (from, to) {
                (Some(f), Some(t)) => {
                    format!("{} moved {} from {f} to {t}", actor(p), issue_ref(p))
                }
                (_, Some(t)) => format!("{} moved {} to {t}", actor(p), issue_ref(p)),
                _ => format!("{} transitioned {}", actor(p), issue_ref(p)),
            }
        }
        "workflow.issue.assignment.updated" => {
            let new = p
                .get("new_assignee")
                .or_else(|| p.get("assignee"))
                .and_then(name_of);
            let old = p.get("previous_assignee").and_then(name_of);
            let confidence = at(p, &["recommendation", "confidence"])
                .and_then(Doc::as_f64)
                .filter(|c| (0.0..=1.0).contains(c))
                .map(|c| format!(", {:.0}% confidence", c * 100.0))
                .unwrap_or_default();
            let by = match first(p, &[&["source"], &["assigned_by"]]) {
                Some("ai") => format!(" (AI recommendation{confidence})"),
                Some("manual") => by_actor().map(|a| format!(" (by {a})")).unwrap_or_default(),
                Some(other) => format!(" (by {other})"),
                None => by_actor().map(|a| format!(" (by {a})")).unwrap_or_default(),
            };
            match (old, new) {
                (Some(o), Some(n)) => format!("{} reassigned from {o} to {n}{by}", issue_ref(p)),
                (None, Some(n)) => format!("{} assigned to {n}{by}", issue_ref(p)),
                (Some(o), None) => format!("{} unassigned from {o}{by}", issue_ref(p)),
                (None, None) => format!("{} unassigned{by}", issue_ref(p)),
            }
        }
        "workflow.sla_status" => {
            let state = sla_state(p).unwrap_or_else(|| "update".to_string());
            let verb = match state.as_str() {
                "breach" | "breached" => "SLA breached",
                "warning" => "SLA warning",
                "risk" | "at_risk" => "SLA at risk",
                _ => "SLA status",
            };
            let target = first(
                p,
                &[
                    &["sla", "name"],
                    &["target"],
                    &["sla_target"],
                    &["sla", "target"],
                ],
            );
            let elapsed = duration(p, &["elapsed_minutes", "elapsed_seconds", "elapsed"]);
            let limit = p
                .get("sla")
                .and_then(|sla| duration(sla, &["target_minutes", "target_seconds"]));
            let detail = match (target, elapsed, limit) {
                (t, Some(e), Some(l)) => Some(format!(
                    "{}{e} elapsed of {l}",
                    t.map(|t| format!("{t}, ")).unwrap_or_default()
                )),
                (t, Some(e), None) => Some(format!(
                    "{}{e} elapsed",
                    t.map(|t| format!("{t}, ")).unwrap_or_default()
                )),
                (Some(t), None, _) => Some(t.to_string()),
                (None, None, _) => None,
            };
            match detail {
                Some(d) => format!("{verb} on {} ({d})", issue_ref(p)),
                None => format!("{verb} on {}", issue_ref(p)),
            }
        }
        "workflow.approval.requested" => {
            let role = first(
                p,
                &[
                    &["required_role"],
                    &["role"],
                    &["approver_role"],
                    &["required_entity"],
                    &["entity"],
                ],
            )
            .map(|r| format!(" from {r}"))
            .unwrap_or_default();
            let by = p
                .get("requested_by")
                .and_then(name_of)
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            let subject = if has_issue(p) {
                issue_ref(p)
            } else {
                first(p, &[&["approval_id"], &["approval", "id"]])
                    .unwrap_or("an approval")
                    .to_string()
            };
            format!("Approval requested{role} for {subject}{by}")
        }
        "workflow.approval.resolved" => {
            let res =
                first(p, &[&["resolution"], &["status"], &["decision"]]).unwrap_or("resolved");
            let approver = p
                .get("approver")
                .and_then(name_of)
                .map(|a| format!(" by {a}"))
                .unwrap_or_default();
            let why = first(p, &[&["reason"]])
                .map(|r| format!(": {}", truncate_chars(r, 60)))
                .unwrap_or_default();
            format!("Approval {res}{approver} for {}{why}", issue_ref(p))
        }
        "extension.delivery.started" => {
            let attempt = i(p, &["attempt"])
                .filter(|n| *n > 1)
                .map(|n| format!(" (attempt {n})"))
                .unwrap_or_default();
            format!("{} started{attempt}", delivery(p))
        }
        "extension.delivery.completed" => {
            let took = duration(p, &["duration_ms", "duration_seconds", "duration"])
                .map(|d| format!(" in {d}"))
                .unwrap_or_default();
            let diags = p
                .get("diagnostics")
                .and_then(Doc::as_array)
                .filter(|a| !a.is_empty())
                .map(|a| format!(" ({})", plural(a.len(), "diagnostic", "diagnostics")))
                .unwrap_or_default();
            format!("{} completed{took}{diags}", delivery(p))
        }
        "extension.delivery.failed" => {
            let cat = first(
                p,
                &[&["error_category"], &["category"], &["error", "category"]],
            )
            .unwrap_or("error");
            let retry = i(p, &["retry_count"])
                .map(|n| format!(", retry {n}"))
                .unwrap_or_default();
            let msg = first(
                p,
                &[&["message"], &["error_message"], &["error", "message"]],
            )
            .map(|m| format!(": {}", truncate_chars(m, 80)))
            .unwrap_or_default();
            format!("{} failed ({cat}{retry}){msg}", delivery(p))
        }
        "marketplace.installation.created" => {
            let product = first(p, &[&["product", "name"], &["product"], &["product_id"]])
                .unwrap_or("An extension");
            let ws = first(
                p,
                &[
                    &["workspace", "name"],
                    &["workspace"],
                    &["customer", "name"],
                ],
            )
            .map(|w| format!(" in {w}"))
            .unwrap_or_default();
            let plan = first(p, &[&["plan", "name"], &["plan"]])
                .map(|x| format!(" on the {x} plan"))
                .unwrap_or_default();
            let by = p
                .get("installed_by")
                .and_then(name_of)
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            format!("{product} installed{ws}{plan}{by}")
        }
        "marketplace.installation.secrets.pending" => {
            let secrets: Vec<String> = p
                .get("secrets")
                .or_else(|| p.get("secret_keys"))
                .and_then(Doc::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| match k {
                            Doc::String(key) => Some(key.to_string()),
                            obj => {
                                let key = obj.get("key").and_then(Doc::as_str)?;
                                let state = first(obj, &[&["status"], &["state"]]);
                                let due = first(obj, &[&["due_at"], &["expires_at"]])
                                    .map(|d| d.get(..10).unwrap_or(d));
                                Some(match (state, due) {
                                    (Some(st), Some(d)) => format!("{key} ({st}, due {d})"),
                                    (Some(st), None) => format!("{key} ({st})"),
                                    (None, Some(d)) => format!("{key} (due {d})"),
                                    (None, None) => key.to_string(),
                                })
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let who = extension(p).unwrap_or("An installation");
            if secrets.is_empty() {
                format!("{who} has secrets missing or expiring")
            } else {
                format!(
                    "{who} needs secrets: {}",
                    truncate_chars(&secrets.join(", "), 100)
                )
            }
        }
        "analytics.dbt.run.started" => {
            let target = first(p, &[&["target_workspace"], &["workspace"], &["target"]])
                .map(|t| format!(" on {t}"))
                .unwrap_or_default();
            let by = first(p, &[&["trigger_source"], &["trigger"]])
                .map(|t| format!(" (trigger: {t})"))
                .unwrap_or_default();
            format!("dbt run started{target}{by}")
        }
        "analytics.dbt.run.completed" => {
            let target = first(p, &[&["target_workspace"], &["workspace"], &["target"]])
                .map(|t| format!(" on {t}"))
                .unwrap_or_default();
            let outcome = match first(p, &[&["status"]]) {
                Some("success" | "succeeded" | "pass") => "succeeded".to_string(),
                Some("failure" | "failed" | "error") => "failed".to_string(),
                Some(other) => format!("finished ({other})"),
                None => "finished".to_string(),
            };
            let took = duration(p, &["duration_seconds", "duration", "duration_ms"])
                .map(|d| format!(" in {d}"))
                .unwrap_or_default();
            format!("dbt run{target} {outcome}{took}")
        }
        "analytics.dbt.run.failed" => {
            let target = first(p, &[&["target_workspace"], &["workspace"], &["target"]])
                .map(|t| format!(" on {t}"))
                .unwrap_or_default();
            let code = i(p, &["exit_code"])
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            let models: Vec<&str> = p
                .get("failing_models")
                .or_else(|| p.get("models"))
                .and_then(Doc::as_array)
                .map(|a| a.iter().filter_map(Doc::as_str).collect())
                .unwrap_or_default();
            let models = if models.is_empty() {
                String::new()
            } else {
                format!(": {}", truncate_chars(&models.join(", "), 80))
            };
            format!("dbt run{target} failed{code}{models}")
        }
        other => fallback(other, p),
    }
}

/// An event the catalog does not list (Kiket adds events over time): name
/// it, then say what it is about, using the same fields the catalogued
/// events carry.
fn fallback(event: &str, p: &Doc<'_>) -> String {
    let subject = if has_issue(p) {
        Some(issue_ref(p))
    } else {
        let what = extension(p);
        let ws = first(p, &[&["workspace", "name"], &["target_workspace"]]);
        match (what, ws) {
            (Some(w), Some(ws)) => Some(format!("{w} in {ws}")),
            (Some(w), None) => Some(w.to_string()),
            (None, Some(ws)) => Some(ws.to_string()),
            (None, None) => {
                first(p, &[&["message"], &["summary"], &["title"]]).map(|m| truncate_chars(m, 80))
            }
        }
    };
    let by = first(p, &[&["actor", "name"], &["actor", "email"], &["actor"]])
        .map(|a| format!(" (by {a})"))
        .unwrap_or_default();
    match subject {
        Some(s) => format!("Kiket {event}: {s}{by}"),
        None => format!("Kiket {event}{by}"),
    }
}
