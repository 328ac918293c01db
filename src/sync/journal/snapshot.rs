//! The snapshot's writes: the journal's store advances it, in the same transaction as the journal
//! row of what Pluvo acknowledged ([`Journal::record`]), records who the source listed, and ties
//! the database to its tenant. Reading it for a plan is `sync::snapshot`'s job.

use crate::clock::timestamp;
use crate::domain::{EmployeeRef, Language};
use crate::sync::snapshot::{SnapshotError, SnapshotUser, Tenant, check_tenant};

use super::Journal;

impl Journal {
    /// Records `tenant` as the database's tenant if none is yet (the first sync, or the first after
    /// upgrading a database made before tenants were recorded), then checks it as
    /// [`check_tenant`] does.
    pub async fn bind_tenant(&self, tenant: &Tenant) -> Result<(), SnapshotError> {
        let now = timestamp(self.clock.now());
        let bound = sqlx::query(
            "INSERT INTO tenant (id, url, client_id, bound_at) VALUES (1, ?1, ?2, ?3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&tenant.url)
        .bind(&tenant.client_id)
        .bind(&now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if bound == 1 {
            tracing::info!(url = %tenant.url, "recorded the Pluvo tenant this database belongs to");
        }
        check_tenant(&self.pool, tenant).await
    }

    /// Records that these people were in the source of `run_id`, changed or not, so the snapshot
    /// answers "when did the HR system last list this person?". One transaction, in chunks that
    /// stay under SQLite's bound-parameter limit.
    pub async fn mark_seen<'a>(
        &self,
        run_id: &str,
        people: impl Iterator<Item = &'a EmployeeRef>,
    ) -> Result<(), sqlx::Error> {
        const CHUNK: usize = 500;
        let refs: Vec<&str> = people.map(EmployeeRef::as_str).collect();
        let mut tx = self.pool.begin().await?;
        for chunk in refs.chunks(CHUNK) {
            // A JSON array keeps the statement text fixed whatever the chunk size.
            let list = serde_json::to_string(chunk).unwrap_or_else(|_| "[]".to_owned());
            sqlx::query(
                "UPDATE snapshot_users SET last_seen_run = ?1 \
                 WHERE employee_ref IN (SELECT value FROM json_each(?2))",
            )
            .bind(run_id)
            .bind(list)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

/// Writes one person's acknowledged state, inside the caller's transaction.
pub(super) async fn store(
    tx: &mut sqlx::SqliteConnection,
    user: &SnapshotUser,
    run_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    let json = |value: &dyn erased::Json| value.to_json();
    sqlx::query(
        "INSERT INTO snapshot_users (employee_ref, pluvo_id, email, name, roles, language, archived, \
             categories, groups, content_hash, first_seen_run, last_seen_run, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12) \
         ON CONFLICT (employee_ref) DO UPDATE SET pluvo_id = COALESCE(excluded.pluvo_id, pluvo_id), \
             email = excluded.email, name = excluded.name, roles = excluded.roles, \
             language = excluded.language, archived = excluded.archived, \
             categories = excluded.categories, groups = excluded.groups, \
             content_hash = excluded.content_hash, last_seen_run = excluded.last_seen_run, \
             updated_at = excluded.updated_at",
    )
    .bind(user.employee_ref.as_str())
    .bind(user.pluvo_id.as_deref())
    .bind(user.email.as_str())
    .bind(&user.name)
    .bind(json(&user.roles))
    .bind(user.language.map(Language::as_str))
    .bind(user.archived)
    .bind(json(&user.categories))
    .bind(json(&user.groups))
    .bind(user.content_hash())
    .bind(run_id)
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}

/// Serialising the snapshot's own collections cannot fail (string keys, plain values); this keeps
/// that fact in one place instead of an `expect` per column.
mod erased {
    pub trait Json {
        fn to_json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".to_owned())
        }
    }
}
