//! What Pluvo last acknowledged, per person: the "before" side of every diff.
//!
//! The snapshot is *not* a copy of Pluvo. It records what this sync sent and Pluvo confirmed, so
//! that a field an administrator edits by hand in Pluvo is left alone until the HR system changes
//! it. It advances only for acknowledged operations, in the same transaction as the journal row
//! (see `journal`), so a crash can at worst repeat an idempotent call. This module reads the
//! snapshot; the journal's store is the one that writes it.
//!
//! A snapshot belongs to one **tenant** (Pluvo URL and API client), recorded in the database by
//! the first sync. Pointing the same database at another tenant is refused: its snapshot would
//! make the plan skip creates and update people who are not there.

use std::collections::BTreeMap;

use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};

use crate::domain::Categories;
use crate::domain::{Email, EmployeeRef, Groups, Language, Roles};

/// One person as Pluvo acknowledged them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotUser {
    pub employee_ref: EmployeeRef,
    pub pluvo_id: Option<String>,
    pub email: Email,
    pub name: String,
    pub roles: Roles,
    pub language: Option<Language>,
    pub archived: bool,
    pub categories: Categories,
    /// Managed groups this person was added to (and not since removed from).
    pub groups: Groups,
}

impl SnapshotUser {
    /// The row `desired` leaves once Pluvo has acknowledged all of it, before Pluvo's id is known.
    pub fn acknowledged(desired: &crate::sync::mapping::DesiredUser) -> Self {
        Self {
            employee_ref: desired.employee_ref.clone(),
            pluvo_id: None,
            email: desired.email.clone(),
            name: desired.name.clone(),
            roles: desired.roles.clone(),
            language: desired.language,
            archived: false,
            categories: desired.categories.clone(),
            groups: desired.groups.clone(),
        }
    }

    /// A digest of every synced field, stored beside the row so that drift between the row and
    /// its hash (a hand edit of the database) is detectable.
    pub fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        // serde_json of these types is deterministic: sorted collections, fixed field order.
        match serde_json::to_vec(&(
            &self.email,
            &self.name,
            &self.roles,
            &self.language,
            self.archived,
            &self.categories,
            &self.groups,
        )) {
            Ok(bytes) => hasher.update(&bytes),
            Err(_) => hasher.update(self.employee_ref.as_str().as_bytes()),
        }
        hex::encode(hasher.finalize())
    }
}

/// Everyone the sync has ever acknowledged, by employee number.
pub type Snapshot = BTreeMap<EmployeeRef, SnapshotUser>;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read the snapshot: {0}")]
    Db(#[from] sqlx::Error),
    #[error(
        "the snapshot row for employee {employee_ref} is corrupt ({detail}); restore the database from a backup or delete that row so it is re-synced"
    )]
    Corrupt {
        employee_ref: String,
        detail: String,
    },
    #[error(
        "this database belongs to the Pluvo tenant {recorded}, but the configuration points at \
         {configured}. Its snapshot is what that tenant acknowledged, so planning another tenant \
         against it would be wrong. For another tenant, set sync.database to a new file (this one \
         keeps the old tenant's journal). If it is the same tenant under a new address or API \
         client, run: sqlite3 <sync.database> 'DELETE FROM tenant' and the next sync records the \
         new one"
    )]
    OtherTenant {
        recorded: Tenant,
        configured: Tenant,
    },
}

/// The Pluvo tenant a snapshot belongs to: its GraphQL endpoint (normalised by URL parsing:
/// scheme and host lower-cased, default port dropped, one trailing slash) and the API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub url: String,
    pub client_id: String,
}

impl Tenant {
    pub fn new(graphql_url: &reqwest::Url, client_id: &str) -> Self {
        Self {
            url: graphql_url.to_string(),
            client_id: client_id.trim().to_owned(),
        }
    }
}

impl std::fmt::Display for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (client {})", self.url, self.client_id)
    }
}

/// The tenant recorded in the database, if any.
async fn recorded_tenant(pool: &SqlitePool) -> Result<Option<Tenant>, sqlx::Error> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT url, client_id FROM tenant WHERE id = 1")
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(url, client_id)| Tenant { url, client_id }))
}

/// Refuses a database whose snapshot belongs to another tenant than `tenant`. A database with
/// no tenant recorded yet passes; the journal's `bind_tenant` records one.
pub async fn check_tenant(pool: &SqlitePool, tenant: &Tenant) -> Result<(), SnapshotError> {
    match recorded_tenant(pool).await? {
        Some(recorded) if recorded != *tenant => Err(SnapshotError::OtherTenant {
            recorded,
            configured: tenant.clone(),
        }),
        _ => Ok(()),
    }
}

/// Loads the whole snapshot in one streamed query: each row is decoded as it arrives, so at no
/// moment are all the raw rows held beside the decoded people (at 100k people that doubled the
/// peak memory of a plan).
pub async fn load(pool: &SqlitePool) -> Result<Snapshot, SnapshotError> {
    let mut rows = sqlx::query(
        "SELECT employee_ref, pluvo_id, email, name, roles, language, archived, categories, groups \
         FROM snapshot_users",
    )
    .fetch(pool);
    let mut snapshot = Snapshot::new();
    while let Some(row) = rows.try_next().await? {
        let user = decode(&row)?;
        snapshot.insert(user.employee_ref.clone(), user);
    }
    Ok(snapshot)
}

/// The columns of [`load`]'s query, by position: looking a column up by name costs a string
/// comparison per column per row.
mod column {
    pub const REF: usize = 0;
    pub const PLUVO_ID: usize = 1;
    pub const EMAIL: usize = 2;
    pub const NAME: usize = 3;
    pub const ROLES: usize = 4;
    pub const LANGUAGE: usize = 5;
    pub const ARCHIVED: usize = 6;
    pub const CATEGORIES: usize = 7;
    pub const GROUPS: usize = 8;
}

fn decode(row: &sqlx::sqlite::SqliteRow) -> Result<SnapshotUser, SnapshotError> {
    let raw_ref: &str = row.try_get(column::REF)?;
    let corrupt = |detail: String| SnapshotError::Corrupt {
        employee_ref: raw_ref.to_owned(),
        detail,
    };
    let employee_ref = EmployeeRef::parse(raw_ref).map_err(|e| corrupt(e.to_string()))?;
    let email =
        Email::parse(row.try_get::<&str, _>(column::EMAIL)?).map_err(|e| corrupt(e.to_string()))?;
    let language = match row.try_get::<Option<&str>, _>(column::LANGUAGE)? {
        Some(code) => Some(Language::parse(code).map_err(|e| corrupt(e.to_string()))?),
        None => None,
    };
    let json = |index: usize| -> Result<&str, SnapshotError> { Ok(row.try_get::<&str, _>(index)?) };
    let roles =
        serde_json::from_str(json(column::ROLES)?).map_err(|e| corrupt(format!("roles: {e}")))?;
    let categories = serde_json::from_str(json(column::CATEGORIES)?)
        .map_err(|e| corrupt(format!("categories: {e}")))?;
    let groups =
        serde_json::from_str(json(column::GROUPS)?).map_err(|e| corrupt(format!("groups: {e}")))?;
    Ok(SnapshotUser {
        employee_ref,
        pluvo_id: row.try_get(column::PLUVO_ID)?,
        email,
        name: row.try_get(column::NAME)?,
        roles,
        language,
        archived: row.try_get::<i64, _>(column::ARCHIVED)? != 0,
        categories,
        groups,
    })
}
