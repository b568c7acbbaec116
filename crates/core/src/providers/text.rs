//! Text helpers for summaries: character-safe truncation, money.

/// Cut `text` to at most `max` characters on a character boundary, adding
/// `…` when cut, and fold whitespace and control characters into single
/// spaces so a summary stays one printable line (no newlines, no terminal
/// escape sequences from a payload). The Kite CLI slices bytes and panics on
/// multibyte text; this never does.
pub fn truncate_chars(text: &str, max: usize) -> String {
    let printable: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line: String = printable.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// Currencies whose minor unit is the major unit (Stripe's list).
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
/// Currencies with three decimal places (Stripe's list).
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// Format a Stripe amount in minor units: `2000, "usd"` → `20.00 USD`,
/// `500, "jpy"` → `500 JPY`, `1234, "kwd"` → `1.234 KWD`.
pub fn format_money(amount: i64, currency: &str) -> String {
    let cur = currency.to_ascii_lowercase();
    let decimals: u32 = if ZERO_DECIMAL.contains(&cur.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&cur.as_str()) {
        3
    } else {
        2
    };
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let upper = cur.to_ascii_uppercase();
    if decimals == 0 {
        return format!("{sign}{abs} {upper}");
    }
    let div = 10u64.pow(decimals);
    format!(
        "{sign}{}.{:0width$} {upper}",
        abs / div,
        abs % div,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn money_formats_by_currency_exponent() {
        assert_eq!(format_money(2000, "usd"), "20.00 USD");
        assert_eq!(format_money(5, "eur"), "0.05 EUR");
        assert_eq!(format_money(500, "jpy"), "500 JPY");
        assert_eq!(format_money(1234, "kwd"), "1.234 KWD");
        assert_eq!(format_money(-150, "usd"), "-1.50 USD");
    }

    #[test]
    fn truncation_is_on_character_boundaries() {
        assert_eq!(truncate_chars("héllo wörld", 5), "héll…");
        assert_eq!(truncate_chars("a\nb", 10), "a b");
        assert_eq!(truncate_chars("🎉🎉🎉", 2), "🎉…");
        assert_eq!(
            truncate_chars("ok\u{1b}[2J\u{7}done", 20),
            "ok [2J done",
            "escape sequences from a payload must not reach a terminal"
        );
    }

    proptest! {
        #[test]
        fn truncation_never_exceeds_max(s in "(\\PC|\\pC){0,200}", max in 1usize..100) {
            let t = truncate_chars(&s, max);
            prop_assert!(t.chars().count() <= max);
            prop_assert!(!t.chars().any(char::is_control), "one printable line: {:?}", t);
        }
    }
}
