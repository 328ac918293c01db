//! The assignment ledger's reads (and, once rules are applied, its writes): what training rules
//! gave whom. The plan diffs rules against it, never against a read-back from Pluvo, because
//! training membership there is asynchronous.

use sqlx::Row;

use crate::domain::{EmployeeRef, OfferEventRef, TrainingRef, TrainingRole};
use crate::sync::plan::assignments::{Grant, Ledger, Target};

use super::Journal;

impl Journal {
    /// Every person's grant per target: the live one, or else the latest ended one (which still
    /// says "enrolled once" for an offer event). A row this version cannot read (a ref or role
    /// edited by hand) is skipped rather than failing the plan.
    pub async fn assignment_ledger(&self) -> Result<Ledger, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT employee_ref, target_kind, target_ref, role, rule_name, linked_via_object,
                    ended_at IS NOT NULL AS ended
             FROM assignment_ledger ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut ledger = Ledger::new();
        for row in rows {
            let kind: String = row.try_get("target_kind")?;
            let target_ref: String = row.try_get("target_ref")?;
            let role: String = row.try_get("role")?;
            let target = match kind.as_str() {
                "training" => match (TrainingRef::parse(&target_ref), TrainingRole::parse(&role)) {
                    (Ok(training), Ok(role)) => Target::Training { training, role },
                    _ => continue,
                },
                _ => match OfferEventRef::parse(&target_ref) {
                    Ok(offer_event) => Target::OfferEvent { offer_event },
                    Err(_) => continue,
                },
            };
            let Ok(person) = EmployeeRef::parse(&row.try_get::<String, _>("employee_ref")?) else {
                continue;
            };
            let grant = Grant {
                rule: row.try_get("rule_name")?,
                linked_via_object: row.try_get("linked_via_object")?,
                ended: row.try_get("ended")?,
            };
            let key = (person, target);
            let live_already = ledger.get(&key).is_some_and(|g: &Grant| !g.ended);
            if !live_already {
                ledger.insert(key, grant);
            }
        }
        Ok(ledger)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn a_live_grant_wins_over_history_and_an_ended_enrolment_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("j.db")).await.unwrap();
        let clock = ManualClock::new("2026-11-23T01:00:00Z".parse().unwrap());
        let journal = Journal::new(pool, Arc::new(clock));
        sqlx::query(
            "INSERT INTO assignment_ledger
               (employee_ref, target_kind, target_ref, role, rule_name, rule_version,
                acknowledged_at, run_id, linked_via_object, ended_at, ended_reason)
             VALUES
               ('1', 'training', 'safety', 'PARTICIPANT', 'old', 'v1', 't0', 'r0', 0, 't1', 'unmatched'),
               ('1', 'training', 'safety', 'PARTICIPANT', 'ops', 'v2', 't2', 'r2', 1, NULL, NULL),
               ('2', 'offer_event', 'intro', '', 'intro', 'v1', 't0', 'r0', 0, 't1', 'cancelled'),
               ('3', 'training', 'safety', 'CEO', 'x', 'v1', 't0', 'r0', 0, NULL, NULL)",
        )
        .execute(journal.pool())
        .await
        .unwrap();
        let ledger = journal.assignment_ledger().await.unwrap();
        let training = Target::Training {
            training: TrainingRef::parse("safety").unwrap(),
            role: TrainingRole::Participant,
        };
        let live = &ledger[&(EmployeeRef::parse("1").unwrap(), training)];
        assert_eq!(
            live,
            &Grant {
                rule: "ops".into(),
                linked_via_object: true,
                ended: false
            }
        );
        let event = Target::OfferEvent {
            offer_event: OfferEventRef::parse("intro").unwrap(),
        };
        assert!(ledger[&(EmployeeRef::parse("2").unwrap(), event)].ended);
        // The unreadable role is skipped, not a failure.
        assert_eq!(ledger.len(), 2);
    }
}
