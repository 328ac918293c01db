//! Opening the one SQLite database (snapshot, journal, lease) and bringing its schema up to date.
//!
//! The database holds every synced employee's name and e-mail address (the snapshot) and their
//! history (the journal), so it is private to the account that runs pluvo-sync: the file is
//! created mode 0600, which SQLite carries over to its `-wal` and `-shm` files, and a directory
//! made for it is 0700. A file left group- or world-readable by an older version is tightened the
//! next time it is opened for writing.
//!
//! Commands that only read the journal open an existing file read-only ([`open_existing`]): a
//! mistyped path must fail with a clear message, not leave an empty database (and directories)
//! behind and report an empty audit trail.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Owner read and write, nobody else anything.
const PRIVATE_FILE: u32 = 0o600;
const PRIVATE_DIR: u32 = 0o700;

/// Why an existing database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "there is no database at {}; check sync.database in the configuration (and --config). \
         pluvo-sync creates it on the first sync, never when reading the journal",
        .0.display()
    )]
    Missing(PathBuf),
    #[error("cannot open the database {}: {source}", path.display())]
    Db {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
}

/// How [`open_existing`] opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading the journal: nothing can be written, not even the schema.
    ReadOnly,
    /// Changing an existing database (pruning): migrated, but never created.
    ReadWrite,
}

/// Opens (creating if needed) the database at `path` and applies pending migrations.
///
/// WAL lets auditors read with `sqlite3` while a run writes; `busy_timeout` lets a second process
/// (a `sync` beside the daemon) wait for a lock instead of failing; foreign keys make pruning a run
/// take its operations with it.
pub async fn open(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR)
            .create(parent)
            .map_err(sqlx::Error::Io)?;
    }
    make_private(path).map_err(sqlx::Error::Io)?;
    open_read_write(path, true).await
}

/// Opens the database at `path` only if it exists; see [`Access`].
pub async fn open_existing(path: &Path, access: Access) -> Result<SqlitePool, OpenError> {
    if !path.is_file() {
        return Err(OpenError::Missing(path.to_owned()));
    }
    let db = |source| OpenError::Db {
        path: path.to_owned(),
        source,
    };
    match access {
        Access::ReadWrite => {
            make_private(path).map_err(|e| db(sqlx::Error::Io(e)))?;
            open_read_write(path, false).await.map_err(db)
        }
        Access::ReadOnly => {
            let options = SqliteConnectOptions::new()
                .filename(path)
                .read_only(true)
                .create_if_missing(false)
                .busy_timeout(BUSY_WAIT);
            SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(options)
                .await
                .map_err(db)
        }
    }
}

async fn open_read_write(path: &Path, create: bool) -> Result<SqlitePool, sqlx::Error> {
    // Processes opening a new file together can meet in a way SQLite answers with "database is
    // locked" at once instead of waiting out `busy_timeout`: both read the empty file, then both
    // want the exclusive lock to switch it to WAL, and SQLite refuses one rather than deadlock.
    // The refused one starts again after a pause and then finds the file set up.
    let give_up = tokio::time::Instant::now() + BUSY_WAIT;
    let mut pause = Duration::from_millis(10);
    loop {
        match try_open_read_write(path, create).await {
            Err(error) if is_busy(&error) && tokio::time::Instant::now() + pause < give_up => {
                tracing::debug!(%error, "the database is busy being opened by another process; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            outcome => return outcome,
        }
    }
}

/// How long a process waits for another to finish with the database: SQLite's `busy_timeout`,
/// and the time [`open_read_write`] keeps trying to set up a file another process is setting up.
const BUSY_WAIT: Duration = Duration::from_secs(30);

async fn try_open_read_write(path: &Path, create: bool) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_WAIT)
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
    match migrate(&pool).await {
        Ok(()) => Ok(pool),
        Err(error) => {
            pool.close().await;
            Err(error)
        }
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let mut migrating = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::migrate!("./migrations").run(&mut migrating).await?;
    migrating.commit().await
}

/// SQLite's SQLITE_BUSY or SQLITE_LOCKED, in any of their extended forms, from any step of
/// opening.
fn is_busy(error: &sqlx::Error) -> bool {
    let database = match error {
        sqlx::Error::Database(database) => Some(database.as_ref()),
        sqlx::Error::Migrate(migrate) => match migrate.as_ref() {
            sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(database))
            | sqlx::migrate::MigrateError::ExecuteMigration(sqlx::Error::Database(database), _) => {
                Some(database.as_ref())
            }
            _ => None,
        },
        _ => None,
    };
    database
        .and_then(|database| database.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

/// Creates `path` empty with mode 0600 if it does not exist (SQLite then gives its `-wal` and
/// `-shm` files the same mode), and takes group and world access away from an existing file and
/// its companions. Creating the file here, rather than letting SQLite do it under the umask,
/// means it is never readable by others, not even for a moment.
fn make_private(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    for file in companions(path) {
        let mode = match std::fs::metadata(&file) {
            Ok(metadata) => metadata.permissions().mode(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, Permissions::from_mode(mode & PRIVATE_FILE))?;
            tracing::warn!(path = %file.display(), was = format!("{:o}", mode & 0o777), "the database was readable by other accounts; made it private to this one (0600)");
        }
    }
    Ok(())
}

/// The database file and the files SQLite keeps beside it.
fn companions(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_owned(), with("-wal"), with("-shm")]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn many_openers_of_one_new_database_all_get_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..10 {
            let path = dir.path().join(format!("new-{round}.db"));
            let openers = futures::future::join_all((0..12).map(|_| open(&path))).await;
            for opener in openers {
                let pool = opener.unwrap_or_else(|e| panic!("round {round}: {e}"));
                let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                assert_eq!(runs, 0);
                pool.close().await;
            }
        }
    }

    #[tokio::test]
    async fn a_new_database_and_its_wal_files_are_private_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("pluvo-sync.db");
        let pool = open(&path).await.unwrap();
        // The migrations wrote through the WAL, so all three files exist while the pool is open.
        for file in companions(&path) {
            assert!(file.exists(), "{} exists", file.display());
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        pool.close().await;
    }

    #[tokio::test]
    async fn an_existing_world_readable_database_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pluvo-sync.db");
        open(&path).await.unwrap().close().await;
        for file in companions(&path).iter().filter(|f| f.exists()) {
            std::fs::set_permissions(file, Permissions::from_mode(0o644)).unwrap();
        }
        let pool = open(&path).await.unwrap();
        for file in companions(&path).iter().filter(|f| f.exists()) {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        pool.close().await;
    }

    #[tokio::test]
    async fn opening_a_missing_database_for_the_journal_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo").join("pluvo-sync.db");
        for access in [Access::ReadOnly, Access::ReadWrite] {
            let error = open_existing(&path, access).await.unwrap_err();
            assert!(
                matches!(error, OpenError::Missing(_)),
                "{access:?}: {error}"
            );
            assert!(error.to_string().contains("sync.database"), "{error}");
        }
        assert!(!dir.path().join("typo").exists(), "no directory was made");
    }

    #[tokio::test]
    async fn a_read_only_database_reads_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pluvo-sync.db");
        open(&path).await.unwrap().close().await;
        let pool = open_existing(&path, Access::ReadOnly).await.unwrap();
        let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(runs, 0);
        assert!(
            sqlx::query("DELETE FROM runs")
                .execute(&pool)
                .await
                .is_err()
        );
    }
}
