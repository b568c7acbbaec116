//! GitHub: `X-GitHub-Event` names the type, `X-GitHub-Delivery` is the id
//! (stable across redeliveries), the repository's `html_url` is the source.

use crate::payload::{Doc, Payload};

use super::{Inbound, NormalizeError, Normalized, at, first, i, s, truncate_chars};

const TITLE_MAX: usize = 72;

pub(super) fn normalize(
    input: &Inbound<'_>,
    d: &Doc<'_>,
    data: Payload,
) -> Result<Normalized, NormalizeError> {
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
        .map_or_else(|| input.mint_id.mint(), str::to_string);
    let source = first(
        d,
        &[&["repository", "html_url"], &["organization", "html_url"]],
    )
    .map(str::to_string)
    .or_else(|| s(d, &["organization", "login"]).map(|o| format!("https://github.com/{o}")))
    .or_else(|| s(d, &["sender", "html_url"]).map(str::to_string))
    .unwrap_or_else(|| "https://github.com".to_string());
    Ok(Normalized {
        id,
        source,
        ty: format!("com.github.{event}"),
        time: input.received,
        summary: summary(event, d),
        data,
    })
}

/// The files a push touched (added, modified, removed across its commits),
/// for scoring rules with `paths`.
pub fn changed_files(data: &Doc<'_>) -> Vec<String> {
    let mut files: Vec<String> = data
        .get("commits")
        .and_then(Doc::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            ["added", "modified", "removed"]
                .into_iter()
                .filter_map(move |k| c.get(k).and_then(Doc::as_array))
                .flatten()
                .filter_map(Doc::as_str)
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

fn summary(event: &str, d: &Doc<'_>) -> String {
    let repo = first(
        d,
        &[&["repository", "full_name"], &["organization", "login"]],
    );
    let in_repo = repo.map(|r| format!(" in {r}")).unwrap_or_default();
    let sender = s(d, &["sender", "login"]).unwrap_or("someone");
    let action = s(d, &["action"]).unwrap_or("");
    match event {
        "push" => push(d, &in_repo),
        "pull_request" => {
            let merged = at(d, &["pull_request", "merged"]).and_then(Doc::as_bool) == Some(true);
            let draft = at(d, &["pull_request", "draft"]).and_then(Doc::as_bool) == Some(true);
            let (pre, post) = match action {
                "closed" if merged => ("merged ".to_string(), String::new()),
                "opened" if draft => ("opened draft ".to_string(), String::new()),
                "synchronize" => ("pushed to ".to_string(), String::new()),
                "ready_for_review" => ("marked ".to_string(), " ready for review".to_string()),
                "converted_to_draft" => ("converted ".to_string(), " to a draft".to_string()),
                "review_requested" => match reviewer(d) {
                    Some(r) => (format!("requested a review from {r} on "), String::new()),
                    None => ("requested a review on ".to_string(), String::new()),
                },
                "review_request_removed" => match reviewer(d) {
                    Some(r) => (
                        format!("withdrew the review request for {r} on "),
                        String::new(),
                    ),
                    None => ("withdrew a review request on ".to_string(), String::new()),
                },
                "auto_merge_enabled" => ("enabled auto-merge on ".to_string(), String::new()),
                "auto_merge_disabled" => ("disabled auto-merge on ".to_string(), String::new()),
                "enqueued" => ("added ".to_string(), " to the merge queue".to_string()),
                "dequeued" => ("removed ".to_string(), " from the merge queue".to_string()),
                _ => item_verb(d, sender, action),
            };
            let n = i(d, &["pull_request", "number"]).or_else(|| i(d, &["number"]));
            format!(
                "{sender} {pre}PR{}{}{post}{in_repo}",
                number(n),
                quoted(s(d, &["pull_request", "title"]))
            )
        }
        "issues" => {
            let (pre, post) = match action {
                "closed" => match s(d, &["issue", "state_reason"]) {
                    Some("not_planned") => ("closed ".to_string(), " as not planned".to_string()),
                    _ => ("closed ".to_string(), String::new()),
                },
                "transferred" => {
                    let to = s(d, &["changes", "new_repository", "full_name"])
                        .map(|r| format!(" to {r}"))
                        .unwrap_or_default();
                    let from = repo.map(|r| format!(" from {r}")).unwrap_or_default();
                    return format!(
                        "{sender} transferred issue{}{}{from}{to}",
                        number(i(d, &["issue", "number"])),
                        quoted(s(d, &["issue", "title"]))
                    );
                }
                _ => item_verb(d, sender, action),
            };
            format!(
                "{sender} {pre}issue{}{}{post}{in_repo}",
                number(i(d, &["issue", "number"])),
                quoted(s(d, &["issue", "title"]))
            )
        }
        "pull_request_review" => {
            let reviewer = s(d, &["review", "user", "login"]);
            let verb = match (
                action,
                s(d, &["review", "state"]).map(str::to_ascii_lowercase),
            ) {
                ("dismissed", _) => match reviewer {
                    Some(r) if r != sender => format!("dismissed {r}'s review on"),
                    _ => "dismissed their review on".to_string(),
                },
                ("edited", _) => "edited a review on".to_string(),
                (_, Some(st)) if st == "approved" => "approved".to_string(),
                (_, Some(st)) if st == "changes_requested" => "requested changes on".to_string(),
                _ => "reviewed".to_string(),
            };
            format!(
                "{sender} {verb} PR{}{}{in_repo}",
                number(i(d, &["pull_request", "number"])),
                quoted(s(d, &["pull_request", "title"]))
            )
        }
        "pull_request_review_comment" => {
            let verb = match action {
                "edited" => "edited a comment on",
                "deleted" => "deleted a comment on",
                _ => "commented on",
            };
            let body = s(d, &["comment", "body"])
                .filter(|b| !b.trim().is_empty())
                .map(|b| format!(": {}", truncate_chars(b, 60)))
                .unwrap_or_default();
            format!(
                "{sender} {verb} the diff of PR{}{in_repo}{body}",
                number(i(d, &["pull_request", "number"]))
            )
        }
        "issue_comment" => {
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
                number(i(d, &["issue", "number"])),
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
            let name = truncate_chars(
                first(d, &[&["release", "name"], &["release", "tag_name"]]).unwrap_or("?"),
                TITLE_MAX,
            );
            let flag = |k: &str| at(d, &["release", k]).and_then(Doc::as_bool) == Some(true);
            let kind = if flag("prerelease") {
                "pre-release"
            } else {
                "release"
            };
            let verb = match action {
                "prereleased" => "published pre-release".to_string(),
                "released" => "released".to_string(),
                "created" if flag("draft") => format!("drafted {kind}"),
                "" => format!("updated {kind}"),
                other => format!("{} {kind}", other.replace('_', " ")),
            };
            format!("{sender} {verb} {name}{in_repo}")
        }
        "workflow_run" => {
            let name =
                first(d, &[&["workflow_run", "name"], &["workflow", "name"]]).unwrap_or("workflow");
            let run = i(d, &["workflow_run", "run_number"])
                .map(|n| format!(" #{n}"))
                .unwrap_or_default();
            let branch = s(d, &["workflow_run", "head_branch"])
                .map(|b| format!(" on {b}"))
                .unwrap_or_default();
            let state = run_state(
                action,
                s(d, &["workflow_run", "status"]),
                s(d, &["workflow_run", "conclusion"]),
            );
            format!(
                "Workflow \"{}\"{run} {state}{branch}{in_repo}",
                truncate_chars(name, TITLE_MAX)
            )
        }
        "check_run" => {
            let name = truncate_chars(s(d, &["check_run", "name"]).unwrap_or("check"), TITLE_MAX);
            let sha = s(d, &["check_run", "head_sha"]).map(|h| h.get(..7).unwrap_or(h));
            let place = match (s(d, &["check_run", "check_suite", "head_branch"]), sha) {
                (Some(b), Some(h)) => format!(" on {b} ({h})"),
                (Some(b), None) => format!(" on {b}"),
                (None, Some(h)) => format!(" on {h}"),
                (None, None) => String::new(),
            };
            match action {
                // Someone asked for a re-run, or clicked a button the check
                // offered: the person is the news, not the check's old state.
                "rerequested" => format!("{sender} re-ran check \"{name}\"{place}{in_repo}"),
                "requested_action" => {
                    format!("{sender} requested an action on check \"{name}\"{place}{in_repo}")
                }
                _ => {
                    let state = run_state(
                        action,
                        s(d, &["check_run", "status"]),
                        s(d, &["check_run", "conclusion"]),
                    );
                    format!("Check \"{name}\" {state}{place}{in_repo}")
                }
            }
        }
        "ping" => {
            let zen = s(d, &["zen"]).map(|z| format!(": {z}")).unwrap_or_default();
            format!("GitHub webhook configured{in_repo}{zen}")
        }
        other => {
            let verb = if action.is_empty() {
                String::new()
            } else {
                format!(" {}", action.replace('_', " "))
            };
            format!("{sender}{verb} {}{in_repo}", other.replace('_', " "))
        }
    }
}

fn push(d: &Doc<'_>, in_repo: &str) -> String {
    let pusher = first(d, &[&["pusher", "name"], &["sender", "login"]]).unwrap_or("someone");
    let r = s(d, &["ref"]).unwrap_or("");
    let name = short_ref(r);
    let flag = |k: &str| d.get(k).and_then(Doc::as_bool) == Some(true);
    let kind = if r.starts_with("refs/tags/") {
        "tag"
    } else {
        "branch"
    };
    if flag("deleted") {
        return format!("{pusher} deleted {kind} {name}{in_repo}");
    }
    if kind == "tag" {
        return format!("{pusher} pushed tag {name}{in_repo}");
    }
    let n = d
        .get("commits")
        .and_then(Doc::as_array)
        .map_or(0, |c| c.len() as i64);
    let verb = if flag("forced") {
        "force-pushed"
    } else {
        "pushed"
    };
    match (flag("created"), n) {
        (true, 0) => format!("{pusher} pushed new branch {name}{in_repo}"),
        (true, n) => format!(
            "{pusher} {verb} {} to new branch {name}{in_repo}",
            plural(n, "commit", "commits")
        ),
        (false, n) => format!(
            "{pusher} {verb} {} to {name}{in_repo}",
            plural(n, "commit", "commits")
        ),
    }
}

fn number(n: Option<i64>) -> String {
    n.map(|n| format!(" #{n}")).unwrap_or_default()
}

/// Who a review was requested from: a user or a team.
fn reviewer<'v>(d: &'v Doc<'_>) -> Option<&'v str> {
    first(
        d,
        &[
            &["requested_reviewer", "login"],
            &["requested_team", "name"],
        ],
    )
}

/// The words around "PR #2 "title"" / "issue #1 "title"" for the actions
/// issues and pull requests share, as (before, after).
fn item_verb(d: &Doc<'_>, sender: &str, action: &str) -> (String, String) {
    let label = s(d, &["label", "name"]);
    let assignee = s(d, &["assignee", "login"]);
    let milestone = first(
        d,
        &[
            &["milestone", "title"],
            &["issue", "milestone", "title"],
            &["pull_request", "milestone", "title"],
        ],
    );
    let words = |pre: String| (pre, String::new());
    match action {
        "labeled" => match label {
            Some(l) => words(format!("added label {l} to ")),
            None => words("labeled ".into()),
        },
        "unlabeled" => match label {
            Some(l) => words(format!("removed label {l} from ")),
            None => words("unlabeled ".into()),
        },
        "assigned" => match assignee {
            Some(a) if a == sender => words("self-assigned ".into()),
            Some(a) => (format!("assigned {a} to "), String::new()),
            None => words("assigned ".into()),
        },
        "unassigned" => match assignee {
            Some(a) if a == sender => words("unassigned themselves from ".into()),
            Some(a) => words(format!("unassigned {a} from ")),
            None => words("unassigned ".into()),
        },
        "milestoned" => match milestone {
            Some(m) => ("added ".into(), format!(" to milestone {m}")),
            None => words("milestoned ".into()),
        },
        "demilestoned" => match milestone {
            Some(m) => ("removed ".into(), format!(" from milestone {m}")),
            None => words("removed the milestone from ".into()),
        },
        "" => words("updated ".into()),
        other => words(format!("{} ", other.replace('_', " "))),
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
