//! Filtered, keyset-paged event queries and FTS5 search.

use chrono::{DateTime, Utc};
use kitedesk_core::Importance;

use crate::events::{LIST_COLUMNS, StoredEvent, row_to_event};
use crate::{Store, StoreError};

/// Largest page the API hands out.
pub const MAX_LIMIT: u32 = 500;
pub const DEFAULT_LIMIT: u32 = 50;

/// Filters for a page of events, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    /// Exact configured source names (any of).
    pub sources: Vec<String>,
    /// A glob over the CloudEvent type, e.g. `com.github.*`.
    pub type_glob: Option<String>,
    pub min_importance: Option<Importance>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    pub verified: Option<bool>,
    /// Full-text search over summary and payload.
    pub q: Option<String>,
    /// Return events with `id` below this (the previous page's `next_cursor`).
    pub before: Option<i64>,
    /// Return events with `id` above this (catching up a live feed).
    pub after: Option<i64>,
    /// Oldest first instead of newest first (with `after`, to catch up in order).
    pub oldest_first: bool,
    pub limit: Option<u32>,
}

/// One page; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub events: Vec<StoredEvent>,
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("search query is empty after removing operators")]
    EmptySearch,
    #[error("invalid type glob {0:?}: {1}")]
    BadGlob(String, String),
}

impl Store {
    pub async fn list(&self, q: &EventQuery) -> Result<Page, StoreError> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let rows = bound(list_sql(q, limit)?).fetch_all(&self.read).await?;
        let mut events = rows
            .iter()
            .map(row_to_event)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| e.id)
        } else {
            None
        };
        Ok(Page {
            events,
            next_cursor,
        })
    }

    /// SQLite's plan for [`Store::list`] (`EXPLAIN QUERY PLAN` details),
    /// for diagnostics and for tests that pin the plan of hot queries.
    pub async fn query_plan(&self, q: &EventQuery) -> Result<Vec<String>, StoreError> {
        let (sql, binds) = list_sql(q, DEFAULT_LIMIT)?;
        let rows = bound((format!("EXPLAIN QUERY PLAN {sql}"), binds))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| Ok(sqlx::Row::try_get::<String, _>(r, "detail")?))
            .collect()
    }
}

/// Bind values to a query built by [`list_sql`].
fn bound(
    (sql, binds): (String, Vec<Bind>),
) -> sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    // Only fixed fragments are formatted into the SQL; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = match b {
            Bind::Int(i) => query.bind(i),
            Bind::Text(t) => query.bind(t),
        };
    }
    query
}

/// The SQL and values for one page (one extra row tells whether another
/// page exists).
fn list_sql(q: &EventQuery, limit: u32) -> Result<(String, Vec<Bind>), QueryError> {
    let mut sql = String::new();
    let mut binds: Vec<Bind> = Vec::new();
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(text) = search {
        // Drive from the FTS index in rowid order so a common term does
        // not materialize every match before the LIMIT applies. CROSS
        // JOIN pins that order: with a plain JOIN and a source filter,
        // SQLite walks the source index and runs MATCH per row (two
        // minutes instead of a millisecond on a 1M-event history).
        sql.push_str(&format!(
            "SELECT {LIST_COLUMNS} FROM events_fts f CROSS JOIN events e ON e.id = f.rowid \
                 WHERE events_fts MATCH ?"
        ));
        binds.push(Bind::Text(fts_query(text)?));
    } else {
        let dir = if q.oldest_first { "ASC" } else { "DESC" };
        let branches = split_branches(q);
        if branches != [(None, None)] {
            // A source filter and/or a minimum importance: one keyset walk
            // per (source, importance level) over `events_source_importance`,
            // each stopping after `limit + 1` rows, merged by id. A single
            // `IN (…)` / `>=` would either sort every match (an index range
            // is not in id order) or walk one index and filter (a rare
            // combination such as github + critical reads most of github).
            sql.push_str(&format!(
                "SELECT {LIST_COLUMNS} FROM events e WHERE e.id IN ("
            ));
            for (i, (source, rank)) in branches.iter().enumerate() {
                if i > 0 {
                    sql.push_str(" UNION ALL ");
                }
                sql.push_str("SELECT id FROM (SELECT e.id FROM events e WHERE 1=1");
                if let Some(source) = source {
                    sql.push_str(" AND e.source_name = ?");
                    binds.push(Bind::Text((*source).to_string()));
                }
                if let Some(rank) = rank {
                    sql.push_str(" AND e.importance = ?");
                    binds.push(Bind::Int(*rank));
                }
                common_filters(q, &mut sql, &mut binds, false)?;
                sql.push_str(&format!(" ORDER BY e.id {dir} LIMIT ?)"));
                binds.push(Bind::Int(i64::from(limit) + 1));
            }
            sql.push_str(&format!(") ORDER BY e.id {dir} LIMIT ?"));
            binds.push(Bind::Int(i64::from(limit) + 1));
            return Ok((sql, binds));
        }
        sql.push_str(&format!("SELECT {LIST_COLUMNS} FROM events e WHERE 1=1"));
        common_filters(q, &mut sql, &mut binds, true)?;
        sql.push_str(&format!(" ORDER BY e.id {dir} LIMIT ?"));
        binds.push(Bind::Int(i64::from(limit) + 1));
        return Ok((sql, binds));
    }
    common_filters(q, &mut sql, &mut binds, true)?;
    let dir = if q.oldest_first { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY f.rowid {dir} LIMIT ?"));
    binds.push(Bind::Int(i64::from(limit) + 1));
    Ok((sql, binds))
}

/// Most keyset walks one list query may split into (sources × importance
/// levels): 16 sources at every level. Beyond this the query filters one
/// walk instead.
const MAX_BRANCHES: usize = 64;

/// The (source, importance level) pairs a non-search list query walks
/// separately: one pair (`[(None, None)]`) when it needs no split. A source
/// filter always splits by level too: `events_source_importance` is the
/// only index that starts with the source (an `events_source` index of
/// (source, id) cost every insert a page write for this one walk).
fn split_branches(q: &EventQuery) -> Vec<(Option<&str>, Option<i64>)> {
    let lowest = match q.min_importance {
        Some(min) if min.rank() > Importance::Low.rank() => Some(min.rank()),
        _ if !q.sources.is_empty() => Some(Importance::Low.rank()),
        _ => None,
    };
    let ranks: Vec<Option<i64>> = match lowest {
        Some(low) => (low..=Importance::Critical.rank()).map(Some).collect(),
        None => vec![None],
    };
    let sources: Vec<Option<&str>> = if q.sources.is_empty() {
        vec![None]
    } else {
        let mut s: Vec<&str> = q.sources.iter().map(String::as_str).collect();
        s.sort_unstable();
        s.dedup();
        s.into_iter().map(Some).collect()
    };
    if (sources == [None] && ranks == [None]) || sources.len() * ranks.len() > MAX_BRANCHES {
        return vec![(None, None)];
    }
    sources
        .iter()
        .flat_map(|s| ranks.iter().map(move |r| (*s, *r)))
        .collect()
}

/// The WHERE terms every list query shares. `with_split` is true when the
/// caller did not split on sources and importance (so they filter here).
fn common_filters(
    q: &EventQuery,
    sql: &mut String,
    binds: &mut Vec<Bind>,
    with_split: bool,
) -> Result<(), QueryError> {
    let key = if q.q.as_deref().is_some_and(|t| !t.trim().is_empty()) {
        "f.rowid"
    } else {
        "e.id"
    };
    if let Some(before) = q.before {
        sql.push_str(&format!(" AND {key} < ?"));
        binds.push(Bind::Int(before));
    }
    if let Some(after) = q.after {
        sql.push_str(&format!(" AND {key} > ?"));
        binds.push(Bind::Int(after));
    }
    if with_split && !q.sources.is_empty() {
        sql.push_str(" AND e.source_name IN (");
        sql.push_str(&vec!["?"; q.sources.len()].join(", "));
        sql.push(')');
        binds.extend(q.sources.iter().cloned().map(Bind::Text));
    }
    if let Some(glob) = q.type_glob.as_deref().filter(|g| !g.is_empty()) {
        let alternatives = sql_globs(glob)?;
        sql.push_str(" AND (");
        sql.push_str(&vec!["e.ce_type GLOB ?"; alternatives.len()].join(" OR "));
        sql.push(')');
        binds.extend(alternatives.into_iter().map(Bind::Text));
    }
    if with_split && let Some(min) = q.min_importance {
        sql.push_str(" AND e.importance >= ?");
        binds.push(Bind::Int(min.rank()));
    }
    if let Some(since) = q.since {
        sql.push_str(" AND e.received_ms >= ?");
        binds.push(Bind::Int(since.timestamp_millis()));
    }
    if let Some(until) = q.until {
        sql.push_str(" AND e.received_ms < ?");
        binds.push(Bind::Int(until.timestamp_millis()));
    }
    if let Some(v) = q.verified {
        sql.push_str(" AND e.verified = ?");
        binds.push(Bind::Int(i64::from(v)));
    }
    Ok(())
}

enum Bind {
    Int(i64),
    Text(String),
}

/// Turn user text into a safe FTS5 query: every word becomes a quoted
/// phrase (so `card_declined` or `acme/api` match as written and FTS
/// operators in user input are inert), ANDed together; a trailing `*` keeps
/// prefix search.
pub fn fts_query(text: &str) -> Result<String, QueryError> {
    let terms: Vec<String> = text
        .split_whitespace()
        .filter_map(|word| {
            let (word, prefix) = match word.strip_suffix('*') {
                Some(w) => (w, true),
                None => (word, false),
            };
            // Keep only characters the tokenizer would index; a word of
            // punctuation alone would make an empty phrase.
            if !word.chars().any(char::is_alphanumeric) {
                return None;
            }
            let quoted = format!("\"{}\"", word.replace('"', "\"\""));
            Some(if prefix { format!("{quoted}*") } else { quoted })
        })
        .collect();
    if terms.is_empty() {
        return Err(QueryError::EmptySearch);
    }
    Ok(terms.join(" "))
}

/// A Kite type glob as SQLite `GLOB` patterns: `{a,b}` alternatives expand
/// to several patterns (SQLite has no braces); `*`, `?` and `[…]` carry over.
pub fn sql_globs(glob: &str) -> Result<Vec<String>, QueryError> {
    kitedesk_core::glob::Glob::new(glob)
        .map_err(|e| QueryError::BadGlob(glob.to_string(), e.problem))?;
    let mut out = vec![String::new()];
    let mut rest = glob;
    while let Some(open) = rest.find('{') {
        let Some(close_rel) = rest[open..].find('}') else {
            break;
        };
        let close = open + close_rel;
        let prefix = &rest[..open];
        let alts: Vec<&str> = rest[open + 1..close].split(',').collect();
        out = out
            .iter()
            .flat_map(|p| alts.iter().map(move |a| format!("{p}{prefix}{a}")))
            .collect();
        rest = &rest[close + 1..];
        if out.len() > 64 {
            return Err(QueryError::BadGlob(
                glob.to_string(),
                "too many {…} alternatives".into(),
            ));
        }
    }
    Ok(out
        .into_iter()
        .map(|p| sqlite_glob(&format!("{p}{rest}")))
        .collect())
}

/// One Kite glob (braces expanded) in SQLite's `GLOB` syntax: a `\x`
/// escape becomes the one-character class `[x]`, and a class negated with
/// `!` is negated with `^` (in SQLite `[!x]` is the class of `!` and `x`, so
/// `com.[!s]*` matched only what the live feed's glob refuses).
fn sqlite_glob(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push('[');
                    out.push(n);
                    out.push(']');
                }
            }
            '[' => {
                out.push('[');
                if chars.next_if_eq(&'!').is_some() {
                    out.push('^');
                }
                // The class runs to its closing `]`; one right after the
                // opening (or the negation) is a member, as in both syntaxes.
                let mut first = true;
                for m in chars.by_ref() {
                    out.push(m);
                    if m == ']' && !first {
                        break;
                    }
                    first = false;
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_queries_quote_user_words() {
        assert_eq!(fts_query("card_declined").unwrap(), "\"card_declined\"");
        assert_eq!(fts_query("acme/api pus*").unwrap(), "\"acme/api\" \"pus\"*");
        assert_eq!(
            fts_query("say \"hi\" OR").unwrap(),
            "\"say\" \"\"\"hi\"\"\" \"OR\""
        );
        assert_eq!(fts_query("  ( ) ").unwrap_err(), QueryError::EmptySearch);
    }

    #[test]
    fn type_globs_expand_braces_and_escapes() {
        assert_eq!(sql_globs("com.github.*").unwrap(), vec!["com.github.*"]);
        assert_eq!(
            sql_globs("com.{github,stripe}.*").unwrap(),
            vec!["com.github.*", "com.stripe.*"]
        );
        assert_eq!(sql_globs("a\\*b").unwrap(), vec!["a[*]b"]);
        assert_eq!(sql_globs("com.[!s]*").unwrap(), vec!["com.[^s]*"]);
        assert_eq!(sql_globs("com.[!]x]*").unwrap(), vec!["com.[^]x]*"]);
        assert_eq!(sql_globs("com.[a!]*").unwrap(), vec!["com.[a!]*"]);
        assert!(sql_globs("com.[x").is_err());
    }
}
