//! `kitedesk-bench-explain DB`: EXPLAIN QUERY PLAN and one timed run of the
//! SQL that `kitedesk_store::Store::list` builds for bench/query.sh's
//! queries, on the SQLite build the daemon links (same sqlx and
//! libsqlite3-sys versions). The SQL is copied from crates/store/src/query.rs
//! (LIST_COLUMNS and the WHERE/ORDER BY shapes); keep it in step by hand.

use std::str::FromStr;
use std::time::Instant;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

const COLS: &str = "e.id, e.source_name, e.ce_source, e.ce_id, e.ce_type, e.time_ms, e.received_ms, \
     e.summary, e.importance, e.importance_reason, e.verified, e.verify_reason, e.relay_seq";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = std::env::args()
        .nth(1)
        .ok_or("usage: kitedesk-bench-explain DB [fts-word] [event-id]")?;
    let word = std::env::args().nth(2).unwrap_or_else(|| "merged".into());
    let mut c = SqliteConnectOptions::from_str("sqlite://")?
        .filename(&db)
        .read_only(true)
        .connect()
        .await?;
    // The search index lives beside the history (kitedesk_store::search_path);
    // the store's readers attach it the same way.
    sqlx::query("ATTACH DATABASE ? AS search")
        .bind(
            kitedesk_store::search_path(std::path::Path::new(&db))
                .to_string_lossy()
                .into_owned(),
        )
        .execute(&mut c)
        .await?;
    let v: String = sqlx::query_scalar("select sqlite_version()")
        .fetch_one(&mut c)
        .await?;
    println!("sqlite {v}");
    let fts = format!(
        "SELECT {COLS} FROM events_fts f JOIN events e ON e.id = f.rowid WHERE events_fts MATCH ?"
    );
    let plain = format!("SELECT {COLS} FROM events e WHERE 1=1");
    let cases: Vec<(&str, String, Vec<Arg>)> = vec![
        (
            "filtered first page",
            format!(
                "{plain} AND e.source_name IN (?) AND e.importance >= ? ORDER BY e.id DESC LIMIT ?"
            ),
            vec![Arg::T("github".into()), Arg::I(2), Arg::I(51)],
        ),
        (
            "full-text page",
            format!("{fts} ORDER BY f.rowid DESC LIMIT ?"),
            vec![Arg::T(format!("\"{word}\"")), Arg::I(51)],
        ),
        (
            "full-text + source",
            format!("{fts} AND e.source_name IN (?) ORDER BY f.rowid DESC LIMIT ?"),
            vec![
                Arg::T("\"failed\"".into()),
                Arg::T("github".into()),
                Arg::I(51),
            ],
        ),
        // The same with CROSS JOIN, SQLite's join-order hint (FTS drives).
        (
            "full-text + source, CROSS JOIN (suggested fix)",
            format!(
                "SELECT {COLS} FROM events_fts f CROSS JOIN events e ON e.id = f.rowid WHERE events_fts MATCH ? AND e.source_name IN (?) ORDER BY f.rowid DESC LIMIT ?"
            ),
            vec![
                Arg::T("\"failed\"".into()),
                Arg::T("github".into()),
                Arg::I(51),
            ],
        ),
        (
            "type glob (rare type)",
            format!("{plain} AND (e.ce_type GLOB ?) ORDER BY e.id DESC LIMIT ?"),
            vec![Arg::T("com.stripe.invoice.*".into()), Arg::I(51)],
        ),
        (
            "critical only",
            format!("{plain} AND e.importance >= ? ORDER BY e.id DESC LIMIT ?"),
            vec![Arg::I(4), Arg::I(51)],
        ),
        (
            "count (health)",
            "SELECT count(*) FROM events".to_string(),
            vec![],
        ),
    ];
    for (name, sql, args) in cases {
        println!("== {name}\n   {sql}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for a in &args {
            q = a.bind(q);
        }
        for r in q.fetch_all(&mut c).await? {
            let detail: String = r.try_get(3)?;
            println!("   plan: {detail}");
        }
        for round in ["cold-ish", "warm"] {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for a in &args {
                q = a.bind(q);
            }
            let t0 = Instant::now();
            let rows = q.fetch_all(&mut c).await?;
            println!(
                "   {round}: {} rows in {:.2} ms",
                rows.len(),
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

enum Arg {
    I(i64),
    T(String),
}

impl Arg {
    fn bind<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        match self {
            Arg::I(i) => q.bind(*i),
            Arg::T(t) => q.bind(t.clone()),
        }
    }
}
