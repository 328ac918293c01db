//! Opening the one SQLite database (snapshot, journal, lease) and bringing its schema up to date.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Opens (creating if needed) the database at `path` and applies pending migrations.
///
/// WAL lets auditors read with `sqlite3` while a run writes; `busy_timeout` lets a second process
/// (a `sync` beside the daemon) wait for a lock instead of failing; foreign keys make pruning a run
/// take its operations with it.
pub async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;
    // sqlx does not lock SQLite while migrating, so two processes opening a new file at once
    // (the daemon and a `sync`, two cron jobs) both apply the first migration and one fails with
    // "table already exists". An IMMEDIATE transaction takes the write lock before reading which
    // migrations are applied; the migrations run inside it as savepoints, and the process that
    // waited (busy_timeout) then finds them applied.
    let mut migrating = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::migrate!("./migrations").run(&mut migrating).await?;
    migrating.commit().await?;
    Ok(pool)
}
