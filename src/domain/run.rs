//! The words of a run: what started it, how it ended, and what each operation was and did.
//!
//! The engine, the journal, the scheduler and the admin server all speak of runs; the words live
//! here, below all of them, so none of them imports another to name a run's state. Each word is
//! stored in the journal as its `snake_case` name, which is also how it prints.

use serde::{Deserialize, Serialize};

/// `as_str`, `Display` and `FromStr` through strum, with the journal's `snake_case` names.
macro_rules! run_word {
    ($(#[$meta:meta])* pub enum $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize,
            strum::IntoStaticStr, strum::Display, strum::EnumString, strum::VariantArray,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        pub enum $name { $($body)* }

        impl $name {
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// The word for a journal value, or `None` for one this version does not know.
            pub fn parse(raw: &str) -> Option<Self> {
                raw.parse().ok()
            }
        }

        /// How the journal's rows decode the word (`#[sqlx(try_from = "String")]`).
        impl TryFrom<String> for $name {
            type Error = strum::ParseError;

            fn try_from(raw: String) -> Result<Self, Self::Error> {
                raw.parse()
            }
        }
    };
}

run_word! {
    /// What started a run; journaled with it.
    pub enum Trigger {
        /// `pluvo-sync sync` on the command line.
        Cli,
        /// The cron schedule of `pluvo-sync run`.
        Schedule,
        /// `POST /v1/sync` on the admin listener.
        Http,
        /// `run_on_start` of `pluvo-sync run`.
        Startup,
    }
}

run_word! {
    /// How a run ended. `Running` exists only in the journal while a run is in progress.
    pub enum RunStatus {
        Running,
        /// Everything planned was acknowledged, and no record was rejected.
        Ok,
        /// Some people failed or were rejected, or the archive guard withheld archives.
        Partial,
        /// The run could not do its job: the source was unreadable, Pluvo refused every call, …
        Failed,
        /// Shutdown arrived mid-run; what remained is done by the next run.
        Aborted,
    }
}

run_word! {
    /// How an operation ended.
    pub enum OpStatus {
        /// Pluvo acknowledged it.
        Ok,
        /// Pluvo refused it, or it could not be delivered after its retries.
        Failed,
        /// Not attempted: an earlier step for the same person failed, or the run was aborted.
        Skipped,
        /// A source record that could not be used.
        Rejected,
    }
}

run_word! {
    /// What an operation was. Journaled as its name, and the `kind` label of the operations metric.
    pub enum OpKind {
        /// A new Pluvo user.
        Create,
        /// Changed name, e-mail, roles or language of an existing user.
        Update,
        /// An archived user brought back (a rehire, or a record back in the export).
        Unarchive,
        /// A leaver archived.
        Archive,
        /// An existing account, found by e-mail, taken on as this employee's.
        Adopt,
        /// Custom field ("extra category") values set.
        Categories,
        /// Added to a managed group.
        GroupAdd,
        /// Removed from a managed group.
        GroupRemove,
        /// A source record that could not be used.
        RejectedRecord,
        /// A person absent from the export and a new record with their e-mail address, both held:
        /// probably one person whose employee number changed format.
        SuspectedRefChange,
    }
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn every_word_reads_back_from_its_journal_name() {
        for status in RunStatus::VARIANTS {
            assert_eq!(RunStatus::parse(status.as_str()), Some(*status));
            assert_eq!(status.to_string(), status.as_str());
        }
        for trigger in Trigger::VARIANTS {
            assert_eq!(Trigger::parse(trigger.as_str()), Some(*trigger));
        }
        for status in OpStatus::VARIANTS {
            assert_eq!(OpStatus::parse(status.as_str()), Some(*status));
        }
        for kind in OpKind::VARIANTS {
            assert_eq!(OpKind::parse(kind.as_str()), Some(*kind));
        }
    }

    #[test]
    fn journal_names_are_the_ones_already_on_disk() {
        assert_eq!(OpKind::GroupAdd.as_str(), "group_add");
        assert_eq!(OpKind::RejectedRecord.as_str(), "rejected_record");
        assert_eq!(RunStatus::Partial.as_str(), "partial");
        assert_eq!(Trigger::Startup.as_str(), "startup");
        assert_eq!(
            serde_json::to_value(OpStatus::Skipped).unwrap(),
            serde_json::json!("skipped")
        );
        assert_eq!(RunStatus::parse("done"), None);
    }
}
