//! Kiket: the body is an envelope `{event, id, timestamp, organization_id,
//! payload}`; retries reuse `id`, so it is the CloudEvent id.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Inbound, NormalizeError, Normalized, first, i, s, truncate_chars};

pub(super) fn normalize(input: &Inbound<'_>, data: Value) -> Result<Normalized, NormalizeError> {
    let event = s(&data, &["event"])
        .or_else(|| input.headers.get("x-kiket-event"))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(NormalizeError::MissingField {
            field: "event",
            expected: "string",
        })?
        .to_string();
    let id = s(&data, &["id"])
        .or_else(|| input.headers.get("x-kiket-event-id"))
        .or_else(|| input.headers.get("x-kiket-delivery"))
        .unwrap_or(input.minted_id)
        .to_string();
    let org = first(&data, &[&["organization_id"]])
        .map(str::to_string)
        .or_else(|| {
            data.get("organization_id")
                .and_then(Value::as_i64)
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
    let time = s(&data, &["timestamp"])
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| i(&data, &["timestamp"]).and_then(|t| DateTime::from_timestamp(t, 0)))
        .unwrap_or(input.received);
    let payload = data.get("payload").cloned().unwrap_or(Value::Null);
    Ok(Normalized {
        id,
        source,
        summary: summary(&event, &payload),
        ty: format!("com.kiket.{event}"),
        time,
        data,
    })
}

/// The SLA state of a `workflow.sla_status` payload (`breach`, `warning`,
/// `risk`…), lowercased, for summaries and importance.
pub fn sla_state(payload: &Value) -> Option<String> {
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

fn issue_ref(p: &Value) -> String {
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

fn actor(p: &Value) -> &str {
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

fn name_of<'v>(v: &'v Value) -> Option<&'v str> {
    match v {
        Value::String(s) => Some(s.as_str()),
        Value::Object(_) => first(v, &[&["name"], &["email"], &["id"]]),
        _ => None,
    }
}

fn secs(p: &Value, keys: &[&[&str]]) -> Option<String> {
    keys.iter().find_map(|k| {
        let v = super::at(p, k)?;
        let f = v.as_f64()?;
        Some(if f >= 120.0 {
            format!("{:.0}m", f / 60.0)
        } else {
            format!("{f:.1}s")
        })
    })
}

fn summary(event: &str, p: &Value) -> String {
    let ext = first(
        p,
        &[
            &["extension", "name"],
            &["extension_id"],
            &["action_key"],
            &["installation_id"],
        ],
    )
    .unwrap_or("extension");
    match event {
        "workflow.issue.transitioned" => {
            let from = first(
                p,
                &[
                    &["from_state"],
                    &["previous_state"],
                    &["transition", "from"],
                    &["from"],
                ],
            );
            let to = first(
                p,
                &[
                    &["to_state"],
                    &["next_state"],
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
            let by = first(p, &[&["source"], &["assigned_by"]])
                .map(|s| format!(" (by {s})"))
                .unwrap_or_default();
            match new {
                Some(n) => format!("{} assigned to {n}{by}", issue_ref(p)),
                None => format!("{} unassigned{by}", issue_ref(p)),
            }
        }
        "workflow.sla_status" => {
            let state = sla_state(p).unwrap_or_else(|| "update".to_string());
            let target = first(
                p,
                &[
                    &["sla", "name"],
                    &["target"],
                    &["sla_target"],
                    &["sla", "target"],
                ],
            )
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
            let verb = match state.as_str() {
                "breach" | "breached" => "SLA breached",
                "warning" => "SLA warning",
                "risk" | "at_risk" => "SLA at risk",
                _ => "SLA status",
            };
            format!("{verb} on {}{target}", issue_ref(p))
        }
        "workflow.approval.requested" => {
            let role = first(
                p,
                &[
                    &["required_role"],
                    &["role"],
                    &["approver_role"],
                    &["entity"],
                ],
            )
            .map(|r| format!(" from {r}"))
            .unwrap_or_default();
            let id = first(p, &[&["approval_id"], &["approval", "id"]]).unwrap_or("approval");
            format!("Approval {id} requested{role} for {}", issue_ref(p))
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
        "extension.delivery.started" => format!("Delivery to {ext} started"),
        "extension.delivery.completed" => format!(
            "Delivery to {ext} completed{}",
            secs(p, &[&["duration_seconds"], &["duration"]])
                .map(|d| format!(" in {d}"))
                .or_else(|| i(p, &["duration_ms"]).map(|ms| format!(" in {ms} ms")))
                .unwrap_or_default()
        ),
        "extension.delivery.failed" => {
            let cat = first(
                p,
                &[&["error_category"], &["category"], &["error", "category"]],
            )
            .unwrap_or("error");
            let msg = first(
                p,
                &[&["message"], &["error_message"], &["error", "message"]],
            )
            .map(|m| format!(": {}", truncate_chars(m, 80)))
            .unwrap_or_default();
            let retry = i(p, &["retry_count"])
                .map(|n| format!(" (retry {n})"))
                .unwrap_or_default();
            format!("Delivery to {ext} failed ({cat}){msg}{retry}")
        }
        "marketplace.installation.created" => {
            let product = first(p, &[&["product", "name"], &["product"], &["product_id"]])
                .unwrap_or("product");
            let plan = first(p, &[&["plan", "name"], &["plan"]])
                .map(|x| format!(" on {x}"))
                .unwrap_or_default();
            let ws = first(
                p,
                &[
                    &["workspace", "name"],
                    &["workspace"],
                    &["customer", "name"],
                ],
            )
            .map(|w| format!(" for {w}"))
            .unwrap_or_default();
            format!("{product} installed{plan}{ws}")
        }
        "marketplace.installation.secrets.pending" => {
            let keys: Vec<&str> = p
                .get("secret_keys")
                .or_else(|| p.get("secrets"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().or_else(|| k.get("key").and_then(Value::as_str)))
                        .collect()
                })
                .unwrap_or_default();
            if keys.is_empty() {
                "Installation secrets missing or expiring".to_string()
            } else {
                format!(
                    "{} secret(s) missing or expiring: {}",
                    keys.len(),
                    truncate_chars(&keys.join(", "), 80)
                )
            }
        }
        "analytics.dbt.run.started" => {
            let by = first(p, &[&["trigger_source"], &["trigger"]])
                .map(|t| format!(" ({t})"))
                .unwrap_or_default();
            let target = first(p, &[&["target_workspace"], &["workspace"], &["target"]])
                .map(|t| format!(" for {t}"))
                .unwrap_or_default();
            format!("dbt run started{target}{by}")
        }
        "analytics.dbt.run.completed" => {
            let status = first(p, &[&["status"]]).unwrap_or("finished");
            let dur = secs(p, &[&["duration_seconds"], &["duration"]])
                .map(|d| format!(" in {d}"))
                .unwrap_or_default();
            format!("dbt run completed: {status}{dur}")
        }
        "analytics.dbt.run.failed" => {
            let code = i(p, &["exit_code"])
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            let models: Vec<&str> = p
                .get("failing_models")
                .or_else(|| p.get("models"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let models = if models.is_empty() {
                String::new()
            } else {
                format!(": {}", truncate_chars(&models.join(", "), 80))
            };
            format!("dbt run failed{code}{models}")
        }
        other => format!("Kiket {other}"),
    }
}
