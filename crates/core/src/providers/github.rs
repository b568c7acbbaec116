//! GitHub: `X-GitHub-Event` names the type, `X-GitHub-Delivery` is the id
//! (stable across redeliveries), the repository's `html_url` is the source.

use serde_json::Value;

use super::{Inbound, NormalizeError, Normalized, at, first, i, s, truncate_chars};

const TITLE_MAX: usize = 72;

pub(super) fn normalize(input: &Inbound<'_>, data: Value) -> Result<Normalized, NormalizeError> {
    let event = input
        .headers
        .get("x-github-event")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(NormalizeError::MissingHeader("X-GitHub-Event"))?;
    let id = input
        .headers
        .get("x-github-delivery")
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(input.minted_id)
        .to_string();
    let source = first(
        &data,
        &[&["repository", "html_url"], &["organization", "html_url"]],
    )
    .map(str::to_string)
    .or_else(|| s(&data, &["organization", "login"]).map(|o| format!("https://github.com/{o}")))
    .or_else(|| s(&data, &["sender", "html_url"]).map(str::to_string))
    .unwrap_or_else(|| "https://github.com".to_string());
    Ok(Normalized {
        id,
        source,
        ty: format!("com.github.{event}"),
        time: input.received,
        summary: summary(event, &data),
        data,
    })
}

/// The files a push touched (added, modified, removed across its commits),
/// for scoring rules with `paths`.
pub fn changed_files(data: &Value) -> Vec<String> {
    let mut files: Vec<String> = data
        .get("commits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            ["added", "modified", "removed"]
                .into_iter()
                .filter_map(move |k| c.get(k).and_then(Value::as_array))
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn short_ref(r: &str) -> &str {
    r.strip_prefix("refs/heads/")
        .or_else(|| r.strip_prefix("refs/tags/"))
        .unwrap_or(r)
}

fn quoted(title: Option<&str>) -> String {
    match title {
        Some(t) if !t.is_empty() => format!(" \"{}\"", truncate_chars(t, TITLE_MAX)),
        _ => String::new(),
    }
}

fn summary(event: &str, d: &Value) -> String {
    let repo = first(
        d,
        &[&["repository", "full_name"], &["organization", "login"]],
    );
    let in_repo = repo.map(|r| format!(" in {r}")).unwrap_or_default();
    let sender = s(d, &["sender", "login"]).unwrap_or("someone");
    let action = s(d, &["action"]).unwrap_or("");
    match event {
        "push" => {
            let pusher =
                first(d, &[&["pusher", "name"], &["sender", "login"]]).unwrap_or("someone");
            let r = s(d, &["ref"]).unwrap_or("");
            let name = short_ref(r);
            let kind = if r.starts_with("refs/tags/") {
                "tag"
            } else {
                "branch"
            };
            if d.get("deleted").and_then(Value::as_bool) == Some(true) {
                return format!("{pusher} deleted {kind} {name}{in_repo}");
            }
            let n = d
                .get("commits")
                .and_then(Value::as_array)
                .map_or(0, |c| c.len() as i64);
            if kind == "tag" {
                return format!("{pusher} pushed tag {name}{in_repo}");
            }
            if n == 0 && d.get("created").and_then(Value::as_bool) == Some(true) {
                return format!("{pusher} pushed new branch {name}{in_repo}");
            }
            let verb = if d.get("forced").and_then(Value::as_bool) == Some(true) {
                "force-pushed"
            } else {
                "pushed"
            };
            format!(
                "{pusher} {verb} {} to {name}{in_repo}",
                plural(n, "commit", "commits")
            )
        }
        "pull_request" => {
            let n = i(d, &["pull_request", "number"]).or_else(|| i(d, &["number"]));
            let merged = at(d, &["pull_request", "merged"]).and_then(Value::as_bool) == Some(true);
            let verb = match action {
                "closed" if merged => "merged",
                "synchronize" => "updated",
                "ready_for_review" => "marked ready for review",
                "review_requested" => "requested a review on",
                "" => "updated",
                other => other,
            };
            format!(
                "{sender} {verb} PR{}{}{in_repo}",
                n.map(|n| format!(" #{n}")).unwrap_or_default(),
                quoted(s(d, &["pull_request", "title"]))
            )
        }
        "pull_request_review" => {
            let n = i(d, &["pull_request", "number"]);
            let verb = match s(d, &["review", "state"])
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("approved") => "approved",
                Some("changes_requested") => "requested changes on",
                Some("commented") => "reviewed",
                Some("dismissed") => "had a review dismissed on",
                _ if action == "dismissed" => "dismissed a review on",
                _ => "reviewed",
            };
            format!(
                "{sender} {verb} PR{}{}{in_repo}",
                n.map(|n| format!(" #{n}")).unwrap_or_default(),
                quoted(s(d, &["pull_request", "title"]))
            )
        }
        "pull_request_review_comment" => {
            let n = i(d, &["pull_request", "number"]);
            let verb = match action {
                "created" | "" => "commented on",
                "edited" => "edited a comment on",
                "deleted" => "deleted a comment on",
                _ => "commented on",
            };
            let body = s(d, &["comment", "body"])
                .map(|b| format!(": {}", truncate_chars(b, 60)))
                .unwrap_or_default();
            format!(
                "{sender} {verb} the diff of PR{}{in_repo}{body}",
                n.map(|n| format!(" #{n}")).unwrap_or_default()
            )
        }
        "issues" => {
            let n = i(d, &["issue", "number"]);
            let extra = match action {
                "labeled" | "unlabeled" => s(d, &["label", "name"])
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                "assigned" | "unassigned" => s(d, &["assignee", "login"])
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            format!(
                "{sender} {} issue{}{}{extra}{in_repo}",
                if action.is_empty() { "updated" } else { action },
                n.map(|n| format!(" #{n}")).unwrap_or_default(),
                quoted(s(d, &["issue", "title"]))
            )
        }
        "issue_comment" => {
            let n = i(d, &["issue", "number"]);
            let what = if at(d, &["issue", "pull_request"]).is_some() {
                "PR"
            } else {
                "issue"
            };
            let verb = match action {
                "edited" => "edited a comment on",
                "deleted" => "deleted a comment on",
                _ => "commented on",
            };
            format!(
                "{sender} {verb} {what}{}{}{in_repo}",
                n.map(|n| format!(" #{n}")).unwrap_or_default(),
                quoted(s(d, &["issue", "title"]))
            )
        }
        "create" | "delete" => {
            let ref_type = s(d, &["ref_type"]).unwrap_or("ref");
            let r = s(d, &["ref"]).unwrap_or("?");
            let verb = if event == "create" {
                "created"
            } else {
                "deleted"
            };
            format!("{sender} {verb} {ref_type} {r}{in_repo}")
        }
        "release" => {
            let tag = first(d, &[&["release", "name"], &["release", "tag_name"]]).unwrap_or("?");
            let pre = if at(d, &["release", "prerelease"]).and_then(Value::as_bool) == Some(true) {
                "pre-release"
            } else {
                "release"
            };
            format!(
                "{sender} {} {pre} {}{in_repo}",
                if action.is_empty() { "updated" } else { action },
                truncate_chars(tag, TITLE_MAX)
            )
        }
        "workflow_run" => {
            let name =
                first(d, &[&["workflow_run", "name"], &["workflow", "name"]]).unwrap_or("workflow");
            let branch = s(d, &["workflow_run", "head_branch"])
                .map(|b| format!(" on {b}"))
                .unwrap_or_default();
            let state = run_state(
                action,
                s(d, &["workflow_run", "status"]),
                s(d, &["workflow_run", "conclusion"]),
            );
            format!(
                "Workflow \"{}\" {state}{branch}{in_repo}",
                truncate_chars(name, TITLE_MAX)
            )
        }
        "check_run" => {
            let name = s(d, &["check_run", "name"]).unwrap_or("check");
            let sha = s(d, &["check_run", "head_sha"])
                .map(|h| format!(" on {}", h.get(..7).unwrap_or(h)))
                .unwrap_or_default();
            let state = run_state(
                action,
                s(d, &["check_run", "status"]),
                s(d, &["check_run", "conclusion"]),
            );
            format!(
                "Check \"{}\" {state}{sha}{in_repo}",
                truncate_chars(name, TITLE_MAX)
            )
        }
        "ping" => {
            let zen = s(d, &["zen"]).map(|z| format!(": {z}")).unwrap_or_default();
            format!("GitHub webhook configured{in_repo}{zen}")
        }
        other => {
            let verb = if action.is_empty() {
                String::new()
            } else {
                format!(" {action}")
            };
            format!("{sender}{verb} {}{in_repo}", other.replace('_', " "))
        }
    }
}

/// "failed", "succeeded", "started", "requested"… from a run's action,
/// status and conclusion.
fn run_state(action: &str, status: Option<&str>, conclusion: Option<&str>) -> &'static str {
    match (action, status, conclusion) {
        (_, _, Some("success")) => "succeeded",
        (_, _, Some("failure")) => "failed",
        (_, _, Some("timed_out")) => "timed out",
        (_, _, Some("cancelled")) => "was cancelled",
        (_, _, Some("action_required")) => "needs action",
        (_, _, Some("skipped")) => "was skipped",
        (_, _, Some("neutral")) => "finished (neutral)",
        (_, _, Some("stale")) => "went stale",
        ("requested", _, _) | (_, Some("requested"), _) => "requested",
        ("in_progress", _, _) | (_, Some("in_progress"), _) => "started",
        ("created", _, _) | (_, Some("queued"), _) => "queued",
        ("rerequested", _, _) => "re-requested",
        ("completed", _, _) => "completed",
        _ => "updated",
    }
}
