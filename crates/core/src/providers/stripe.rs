//! Stripe: the body is an Event object; `id` is `evt_…`, `type` names it,
//! `created` is when it happened.

use chrono::DateTime;
use serde_json::Value;

use super::{Inbound, NormalizeError, Normalized, first, format_money, i, s};

pub(super) fn normalize(input: &Inbound<'_>, data: Value) -> Result<Normalized, NormalizeError> {
    let ty = s(&data, &["type"]).ok_or(NormalizeError::MissingField {
        field: "type",
        expected: "string",
    })?;
    let id = s(&data, &["id"]).ok_or(NormalizeError::MissingField {
        field: "id",
        expected: "string",
    })?;
    let time = i(&data, &["created"])
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or(input.received);
    Ok(Normalized {
        id: id.to_string(),
        source: "https://api.stripe.com".to_string(),
        ty: format!("com.stripe.{ty}"),
        time,
        summary: summary(ty, &data),
        data,
    })
}

fn money(o: &Value, amount_key: &str) -> Option<String> {
    let amount = i(o, &[amount_key])?;
    let cur = s(o, &["currency"])?;
    Some(format_money(amount, cur))
}

fn who(o: &Value) -> String {
    first(
        o,
        &[
            &["customer_email"],
            &["receipt_email"],
            &["customer_details", "email"],
            &["customer"],
        ],
    )
    .map(|c| format!(" for {c}"))
    .unwrap_or_default()
}

fn summary(ty: &str, d: &Value) -> String {
    let o = d.pointer("/data/object").unwrap_or(&Value::Null);
    let oid = s(o, &["id"]).unwrap_or("?");
    match ty {
        "payment_intent.succeeded" => format!(
            "Payment of {} succeeded{}",
            money(o, "amount_received")
                .or_else(|| money(o, "amount"))
                .unwrap_or_else(|| "?".into()),
            who(o)
        ),
        "payment_intent.payment_failed" => {
            let err = o.get("last_payment_error").unwrap_or(&Value::Null);
            let reason =
                first(err, &[&["decline_code"], &["code"], &["type"]]).unwrap_or("unknown reason");
            format!(
                "Payment of {} failed: {reason}{}",
                money(o, "amount").unwrap_or_else(|| "?".into()),
                who(o)
            )
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let price = o
                .pointer("/items/data/0/price")
                .or_else(|| o.pointer("/plan"));
            let plan = price
                .and_then(|p| {
                    let amount = money(p, "unit_amount").or_else(|| money(p, "amount"))?;
                    let interval = first(p, &[&["recurring", "interval"], &["interval"]]);
                    Some(match interval {
                        Some(iv) => format!(" ({amount}/{iv})"),
                        None => format!(" ({amount})"),
                    })
                })
                .unwrap_or_default();
            let status = s(o, &["status"]).unwrap_or("?");
            match ty {
                "customer.subscription.created" => {
                    format!(
                        "Subscription {oid} started{}{plan}, status {status}",
                        who(o)
                    )
                }
                "customer.subscription.deleted" => {
                    format!("Subscription {oid} cancelled{}{plan}", who(o))
                }
                _ => {
                    let prev = d
                        .pointer("/data/previous_attributes/status")
                        .and_then(Value::as_str);
                    let change = match prev {
                        Some(p) if p != status => format!("status {p} → {status}"),
                        _ if o.get("cancel_at_period_end").and_then(Value::as_bool)
                            == Some(true) =>
                        {
                            "set to cancel at period end".to_string()
                        }
                        _ => format!("status {status}"),
                    };
                    format!("Subscription {oid} updated{}: {change}{plan}", who(o))
                }
            }
        }
        "invoice.payment_succeeded" | "invoice.paid" => format!(
            "Invoice {} paid: {}{}",
            s(o, &["number"]).unwrap_or(oid),
            money(o, "amount_paid").unwrap_or_else(|| "?".into()),
            who(o)
        ),
        "invoice.payment_failed" => format!(
            "Invoice {} payment of {} failed{}{}",
            s(o, &["number"]).unwrap_or(oid),
            money(o, "amount_due").unwrap_or_else(|| "?".into()),
            i(o, &["attempt_count"])
                .map(|n| format!(" (attempt {n})"))
                .unwrap_or_default(),
            who(o)
        ),
        "checkout.session.completed" => format!(
            "Checkout completed: {}{}",
            money(o, "amount_total").unwrap_or_else(|| "?".into()),
            who(o)
        ),
        _ => format!("Stripe {ty} ({oid})"),
    }
}
