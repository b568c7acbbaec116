//! Stripe: the body is an Event object; `id` is `evt_…`, `type` names it,
//! `created` is when it happened.

use crate::payload::{Doc, NULL, Payload};
use chrono::DateTime;

use super::{Inbound, NormalizeError, Normalized, first, format_money, i, s, truncate_chars};

pub(super) fn normalize(
    input: &Inbound<'_>,
    d: &Doc<'_>,
    data: Payload,
) -> Result<Normalized, NormalizeError> {
    let ty = s(d, &["type"]).ok_or(NormalizeError::MissingField {
        field: "type",
        expected: "string",
    })?;
    let id = s(d, &["id"]).ok_or(NormalizeError::MissingField {
        field: "id",
        expected: "string",
    })?;
    let time = i(d, &["created"])
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or(input.received);
    Ok(Normalized {
        id: id.to_string(),
        source: "https://api.stripe.com".to_string(),
        ty: format!("com.stripe.{ty}"),
        time,
        summary: summary(ty, d),
        data,
    })
}

fn money(o: &Doc<'_>, amount_key: &str) -> Option<String> {
    let amount = i(o, &[amount_key])?;
    let cur = s(o, &["currency"])?;
    Some(format_money(amount, cur))
}

/// The paying customer as a person would recognise them: an email when the
/// object carries one, else the `cus_…` id.
fn customer<'v>(o: &'v Doc<'_>) -> Option<&'v str> {
    first(
        o,
        &[
            &["customer_email"],
            &["receipt_email"],
            &["customer_details", "email"],
            &[
                "last_payment_error",
                "payment_method",
                "billing_details",
                "email",
            ],
            &["customer"],
        ],
    )
}

fn from(o: &Doc<'_>) -> String {
    customer(o)
        .map(|c| format!(" from {c}"))
        .unwrap_or_default()
}

/// `2024-08-17` for a Stripe unix timestamp.
fn date(o: &Doc<'_>, key: &str) -> Option<String> {
    DateTime::from_timestamp(i(o, &[key])?, 0).map(|t| t.format("%Y-%m-%d").to_string())
}

/// "Pro monthly, 20.00 USD/month" for a subscription item's price (or a
/// legacy plan object).
fn plan(price: Option<&Doc<'_>>) -> Option<String> {
    let p = price?;
    let amount = money(p, "unit_amount").or_else(|| money(p, "amount"));
    let interval = first(p, &[&["recurring", "interval"], &["interval"]]);
    let cost = match (amount, interval) {
        (Some(a), Some(iv)) => Some(format!("{a}/{iv}")),
        (Some(a), None) => Some(a),
        _ => None,
    };
    match (first(p, &[&["nickname"], &["lookup_key"]]), cost) {
        (Some(n), Some(c)) => Some(format!("{n}, {c}")),
        (Some(n), None) => Some(n.to_string()),
        (None, c) => c,
    }
}

fn subscription_plan(o: &Doc<'_>) -> Option<String> {
    plan(o.pointer("/items/data/0/price").or_else(|| o.get("plan")))
}

fn summary(ty: &str, d: &Doc<'_>) -> String {
    let o = d.pointer("/data/object").unwrap_or(&NULL);
    let prev = d.pointer("/data/previous_attributes");
    let oid = s(o, &["id"]).unwrap_or("?");
    let amount = |key: &str| money(o, key).unwrap_or_else(|| "an unknown amount".into());
    match ty {
        "payment_intent.succeeded" => {
            let what = s(o, &["description"])
                .map(|x| format!(" ({})", truncate_chars(x, 60)))
                .unwrap_or_default();
            format!(
                "Payment of {}{} succeeded{what}",
                money(o, "amount_received")
                    .filter(|_| i(o, &["amount_received"]) != Some(0))
                    .unwrap_or_else(|| amount("amount")),
                from(o)
            )
        }
        "payment_intent.payment_failed" => {
            let err = o.get("last_payment_error").unwrap_or(&NULL);
            // `code` says what kind of failure (card_declined); the issuer's
            // `decline_code` says why (insufficient_funds). Show both.
            let reason = match (s(err, &["code"]), s(err, &["decline_code"])) {
                (Some(c), Some(dc)) if c != dc => format!("{c} ({dc})"),
                (Some(c), _) => c.to_string(),
                (None, Some(dc)) => dc.to_string(),
                (None, None) => s(err, &["type"]).unwrap_or("unknown reason").to_string(),
            };
            format!(
                "Payment of {}{} failed: {reason}",
                amount("amount"),
                from(o)
            )
        }
        "customer.subscription.created" => {
            let status = match s(o, &["status"]) {
                Some("trialing") => date(o, "trial_end")
                    .map(|t| format!(" (trial until {t})"))
                    .unwrap_or_else(|| " (trialing)".into()),
                Some(st) if st != "active" => format!(" ({st})"),
                _ => String::new(),
            };
            format!(
                "New subscription{}{}{status}",
                for_customer(o),
                subscription_plan(o)
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default()
            )
        }
        "customer.subscription.deleted" => {
            let why = first(
                o,
                &[
                    &["cancellation_details", "feedback"],
                    &["cancellation_details", "reason"],
                ],
            )
            .map(|w| format!(" ({})", w.replace('_', " ")))
            .unwrap_or_default();
            format!(
                "Subscription{} cancelled{}{why}",
                for_customer(o),
                subscription_plan(o)
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default()
            )
        }
        "customer.subscription.updated" => {
            let who = for_customer(o);
            let plan_now = subscription_plan(o);
            let prev = prev.unwrap_or(&NULL);
            let was = |k: &str| prev.get(k);
            let status = s(o, &["status"]).unwrap_or("?");
            if let Some(old) = was("status").and_then(Doc::as_str).filter(|p| *p != status) {
                return format!(
                    "Subscription{who} is now {status} (was {old}){}",
                    plan_now.map(|p| format!(": {p}")).unwrap_or_default()
                );
            }
            if was("items").is_some() || was("plan").is_some() {
                let old = plan(
                    prev.pointer("/items/data/0/price")
                        .or_else(|| prev.get("plan")),
                );
                return match (old, plan_now) {
                    (Some(a), Some(b)) if a != b => {
                        format!("Subscription{who} changed plan: {a} → {b}")
                    }
                    (_, Some(b)) => format!("Subscription{who} changed plan: now {b}"),
                    _ => format!("Subscription{who} changed plan"),
                };
            }
            if was("cancel_at_period_end").is_some() {
                return if o.get("cancel_at_period_end").and_then(Doc::as_bool) == Some(true) {
                    format!(
                        "Subscription{who} will cancel at period end{}",
                        date(o, "cancel_at")
                            .or_else(|| date(o, "current_period_end"))
                            .map(|t| format!(" ({t})"))
                            .unwrap_or_default()
                    )
                } else {
                    format!("Subscription{who} will no longer cancel at period end")
                };
            }
            // Each key once, where it first appears (as a JSON object's
            // keys, even when the sender repeated one).
            let mut changed: Vec<&str> = Vec::new();
            for (key, _) in prev.as_object().unwrap_or_default() {
                if !changed.contains(&key.as_ref()) {
                    changed.push(key);
                }
            }
            if changed.is_empty() {
                format!("Subscription{who} updated ({status})")
            } else {
                format!(
                    "Subscription{who} updated: {}",
                    truncate_chars(&changed.join(", "), 60)
                )
            }
        }
        "invoice.payment_succeeded" | "invoice.paid" => format!(
            "Invoice {} paid: {}{}",
            s(o, &["number"]).unwrap_or(oid),
            amount("amount_paid"),
            from(o)
        ),
        "invoice.payment_failed" => {
            let mut notes = Vec::new();
            if let Some(n) = i(o, &["attempt_count"]) {
                notes.push(format!("attempt {n}"));
            }
            if let Some(t) = date(o, "next_payment_attempt") {
                notes.push(format!("next retry {t}"));
            }
            format!(
                "Invoice {} payment of {}{} failed{}",
                s(o, &["number"]).unwrap_or(oid),
                amount("amount_due"),
                from(o),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join(", "))
                }
            )
        }
        "checkout.session.completed" => {
            let pending = match s(o, &["payment_status"]) {
                Some("unpaid") => " (payment pending)",
                _ => "",
            };
            let mode = match s(o, &["mode"]) {
                Some("subscription") => "subscription ",
                Some("setup") => "setup ",
                _ => "",
            };
            match money(o, "amount_total") {
                Some(total) => format!("Checkout {mode}completed: {total}{}{pending}", from(o)),
                None => format!("Checkout {mode}completed{}{pending}", from(o)),
            }
        }
        _ => {
            let value = money(o, "amount")
                .map(|m| format!(", {m}"))
                .unwrap_or_default();
            format!("Stripe {ty}: {oid}{value}")
        }
    }
}

fn for_customer(o: &Doc<'_>) -> String {
    customer(o).map(|c| format!(" for {c}")).unwrap_or_default()
}
