//! Paperclip (agent orchestration): the type comes from the
//! `x-paperclip-event` header or the body's `event` field; the source is the
//! company.

use crate::payload::{Doc, Payload};

use super::{Inbound, NormalizeError, Normalized, first, s, truncate_chars};

pub(super) fn normalize(
    input: &Inbound<'_>,
    d: &Doc<'_>,
    data: Payload,
) -> Result<Normalized, NormalizeError> {
    let event = input
        .headers
        .get("x-paperclip-event")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .or_else(|| s(d, &["event"]))
        .ok_or(NormalizeError::MissingField {
            field: "event (or the x-paperclip-event header)",
            expected: "string",
        })?
        .to_string();
    let company = first(
        d,
        &[
            &["companyId"],
            &["company_id"],
            &["data", "companyId"],
            &["company", "id"],
        ],
    );
    let source = match company {
        Some(c) => format!("https://paperclip.ing/company/{c}"),
        None => "https://paperclip.ing".to_string(),
    };
    let id = input
        .headers
        .get("x-paperclip-delivery")
        .or_else(|| first(d, &[&["id"], &["deliveryId"]]))
        .map_or_else(|| input.mint_id.mint(), str::to_string);
    Ok(Normalized {
        id,
        source,
        summary: summary(&event, d),
        ty: format!("com.paperclip.{event}"),
        time: input.received,
        data,
    })
}

/// Paperclip payloads nest their object under `data` or at the top level;
/// look in both.
fn get<'v>(d: &'v Doc<'_>, keys: &[&[&str]]) -> Option<&'v str> {
    first(d, keys).or_else(|| d.get("data").and_then(|inner| first(inner, keys)))
}

fn summary(event: &str, d: &Doc<'_>) -> String {
    let issue_key = get(
        d,
        &[
            &["issue", "identifier"],
            &["identifier"],
            &["issueId"],
            &["issue", "id"],
        ],
    );
    let issue = issue_key.unwrap_or("issue");
    let title = get(d, &[&["issue", "title"], &["title"]])
        .map(|t| format!(" \"{}\"", truncate_chars(t, 72)))
        .unwrap_or_default();
    let agent = get(
        d,
        &[
            &["agent", "name"],
            &["agentName"],
            &["agentId"],
            &["assigneeAgentId"],
        ],
    )
    .unwrap_or("an agent");
    match event {
        "heartbeat" => {
            // Paperclip records why a run was invoked (`timer`, `assignment`,
            // `on_demand`, `automation`); older payloads say `reason`.
            let why = get(
                d,
                &[
                    &["invocationSource"],
                    &["reason"],
                    &["trigger"],
                    &["wakeReason"],
                ],
            )
            .map(|r| format!(" ({})", r.replace('_', " ")))
            .unwrap_or_default();
            format!("Heartbeat for {agent}{why}")
        }
        "issue.assigned" => {
            let by = get(d, &[&["assignedBy", "name"], &["actor", "name"]])
                .map(|b| format!(" by {b}"))
                .unwrap_or_default();
            format!("{issue}{title} assigned to {agent}{by}")
        }
        "issue.commented" => {
            let author = get(
                d,
                &[
                    &["comment", "authorName"],
                    &["author", "name"],
                    &["authorName"],
                ],
            )
            .unwrap_or("someone");
            let body = get(d, &[&["comment", "body"], &["body"]])
                .map(|b| format!(": {}", truncate_chars(b, 60)))
                .unwrap_or_default();
            format!("{author} commented on {issue}{title}{body}")
        }
        "issue.status_changed" => {
            let from = get(d, &[&["previousStatus"], &["fromStatus"], &["from"]]);
            let to = get(
                d,
                &[
                    &["status"],
                    &["newStatus"],
                    &["toStatus"],
                    &["to"],
                    &["issue", "status"],
                ],
            );
            let who = get(d, &[&["changedBy", "name"], &["actor", "name"]]);
            match (who, from, to) {
                (Some(w), Some(f), Some(t)) => {
                    format!("{w} moved {issue}{title} from {f} to {t}")
                }
                (None, Some(f), Some(t)) => format!("{issue}{title} moved from {f} to {t}"),
                (Some(w), None, Some(t)) => format!("{w} moved {issue}{title} to {t}"),
                (None, None, Some(t)) => format!("{issue}{title} is now {t}"),
                _ => format!("{issue}{title} changed status"),
            }
        }
        other => match issue_key {
            Some(k) => format!("Paperclip {other}: {k}{title}"),
            None if !title.is_empty() => format!("Paperclip {other}:{title}"),
            None => match get(d, &[&["agent", "name"], &["agentName"]]) {
                Some(a) => format!("Paperclip {other} for {a}"),
                None => format!("Paperclip {other}"),
            },
        },
    }
}
