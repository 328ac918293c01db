//! `pluvo-sync check`: everything that would stop a sync, found before one is attempted.
//!
//! Every check runs even when an earlier one failed, so an operator setting up a tenant sees
//! the whole list at once; the exception is Pluvo itself. A token is asked for once, without
//! retries: a check is a question, not a sync. When none can be had (Pluvo unreachable, or the
//! credentials refused), that is one line, and the checks that need a token are skipped, since
//! each would only repeat it after its own retries.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;

use serde::Serialize;

use super::{Cli, Context, Exit};
use crate::pluvo::{PluvoClient, PluvoError, ResolvedPluvo};
use crate::sync::engine::RunOptions;
use crate::sync::rules::Rules;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the findings as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also read the tenant's schema by introspection and compare it with schema/pluvo.graphql:
    /// every type, field, argument and enum value pluvo-sync uses must exist with the same type.
    #[arg(long)]
    pub schema: bool,
}

#[derive(Debug, Serialize)]
struct Finding {
    check: &'static str,
    ok: bool,
    detail: String,
}

pub async fn run(cli: &Cli, args: &Args) -> Exit {
    let context = match Context::load(cli) {
        Ok(context) => context,
        Err(exit) => return exit,
    };
    let mut findings = vec![Finding {
        check: "config",
        ok: true,
        detail: format!("{} is valid", cli.config.display()),
    }];
    let engine = match context.engine().await {
        Ok(engine) => engine,
        Err(exit) => return exit,
    };

    // The source: readable, parseable, and which groups and choices it produces.
    let prepared = engine.prepare(RunOptions::default()).await;
    let mut produced_groups: BTreeSet<String> = context
        .settings
        .mapping
        .static_groups()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut produced_choices: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    match &prepared {
        Ok(prepared) => {
            for person in prepared.mapped.people.values() {
                produced_groups.extend(person.groups.iter().map(ToString::to_string));
                for (category, value) in &person.categories {
                    if let crate::domain::CategoryValue::Choice(choice) = value {
                        produced_choices
                            .entry(category.to_string())
                            .or_default()
                            .insert(choice.clone());
                    }
                }
            }
            findings.push(Finding {
                check: "source",
                ok: prepared.mapped.rejected.is_empty(),
                detail: format!(
                    "{}: {} records, {} people, {} rejected{}",
                    prepared.source,
                    prepared.rows_read,
                    prepared.mapped.people.len(),
                    prepared.mapped.rejected.len(),
                    prepared
                        .mapped
                        .rejected
                        .iter()
                        .take(10)
                        .map(|r| format!("\n      {r}"))
                        .collect::<String>()
                ),
            });
        }
        Err(error) => findings.push(Finding {
            check: "source",
            ok: false,
            detail: error.to_string(),
        }),
    }

    let client = engine.client();
    let probe = match PluvoClient::new(
        ResolvedPluvo {
            max_attempts: NonZeroU32::MIN,
            ..context.settings.pluvo.clone()
        },
        context.metrics.clone(),
    ) {
        Ok(probe) => probe,
        Err(error) => {
            errln!("error: {error}");
            return Exit::Usage;
        }
    };
    if let Err(error) = probe.check_token().await {
        // Exhausted after one attempt is the transient failure itself.
        let error = match error {
            PluvoError::Exhausted { last, .. } => *last,
            error => error,
        };
        findings.push(Finding {
            check: "pluvo token",
            ok: false,
            detail: format!(
                "{error} (at {}); the Pluvo checks that need a token were skipped",
                context.settings.pluvo.token_url
            ),
        });
        return report(&findings, args);
    }
    findings.push(Finding {
        check: "pluvo token",
        ok: true,
        detail: "a token was issued".to_owned(),
    });

    match client.groups().await {
        Ok(groups) => {
            let known: BTreeSet<String> = groups.iter().filter_map(|g| g.r#ref.clone()).collect();
            let missing: Vec<&String> = produced_groups
                .iter()
                .filter(|g| !known.contains(*g))
                .collect();
            findings.push(Finding {
                check: "groups",
                ok: missing.is_empty(),
                detail: if missing.is_empty() {
                    format!(
                        "all {} groups the mapping produces exist",
                        produced_groups.len()
                    )
                } else {
                    format!(
                        "missing in Pluvo (an administrator must create them, with these refs): {}",
                        missing
                            .iter()
                            .map(|g| g.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            });
        }
        Err(error) => findings.push(Finding {
            check: "groups",
            ok: false,
            detail: format!("cannot list groups: {error}"),
        }),
    }

    match client.user_categories().await {
        Ok(categories) => {
            let by_ref: BTreeMap<String, _> = categories
                .iter()
                .filter_map(|c| c.r#ref.clone().map(|r| (r, c)))
                .collect();
            let mut problems = Vec::new();
            for rule in context.settings.mapping.categories() {
                let (category, kind) = (rule.category_ref(), rule.kind());
                match by_ref.get(category.as_str()) {
                    None => problems.push(format!(
                        "custom field '{category}' does not exist for users"
                    )),
                    Some(remote) if !kind.matches_pluvo_type(&remote.category_type) => problems
                        .push(format!(
                            "custom field '{category}' is {} in Pluvo but mapped as {}",
                            remote.category_type,
                            kind.type_name()
                        )),
                    Some(remote) => {
                        let options: BTreeSet<&str> =
                            remote.choices.iter().map(String::as_str).collect();
                        for choice in produced_choices
                            .get(category.as_str())
                            .into_iter()
                            .flatten()
                        {
                            if !options.contains(choice.as_str()) {
                                problems.push(format!(
                                    "custom field '{category}' has no option '{choice}'"
                                ));
                            }
                        }
                    }
                }
            }
            findings.push(Finding {
                check: "custom fields",
                ok: problems.is_empty(),
                detail: if problems.is_empty() {
                    format!(
                        "all {} mapped custom fields exist with matching types",
                        context.settings.mapping.categories().len()
                    )
                } else {
                    problems.join("; ")
                },
            });
        }
        Err(error) => findings.push(Finding {
            check: "custom fields",
            ok: false,
            detail: format!("cannot list custom fields: {error}"),
        }),
    }

    if !context.settings.rules.is_empty() {
        findings.push(rule_targets(client, &context.settings.rules).await);
    }

    if args.schema {
        findings.push(match client.compare_schema().await {
            Ok(report) if report.differences.is_empty() => Finding {
                check: "schema",
                ok: true,
                detail: format!(
                    "the tenant has all {} types, fields, arguments and enums pluvo-sync uses, typed as in schema/pluvo.graphql",
                    report.compared
                ),
            },
            Ok(report) => Finding {
                check: "schema",
                ok: false,
                detail: format!(
                    "the tenant's schema differs from schema/pluvo.graphql where pluvo-sync relies on it; syncs will fail until pluvo-sync is built against the tenant's schema (send this list to its maintainers):{}",
                    report
                        .differences
                        .iter()
                        .map(|d| format!("\n      {d}"))
                        .collect::<String>()
                ),
            },
            Err(error) => Finding {
                check: "schema",
                ok: false,
                detail: format!(
                    "cannot read the tenant's schema by introspection: {error}; if the tenant has introspection turned off, ask Pluvo for its schema"
                ),
            },
        });
    }

    report(&findings, args)
}

/// Every training and offer event a rule names must exist in Pluvo (and a training be active):
/// a rule pointing at nothing would fail all its people on every run.
async fn rule_targets(client: &PluvoClient, rules: &Rules) -> Finding {
    let mut problems = Vec::new();
    let named_by = |names: Vec<&str>| names.join(", ");
    for training in rules.trainings() {
        let rules_naming: Vec<&str> = rules
            .assign
            .iter()
            .filter(|r| &r.training == training)
            .map(|r| r.name.as_str())
            .collect();
        match client.training(training).await {
            Ok(None) => problems.push(format!(
                "training '{training}' (rule {}) does not exist in Pluvo",
                named_by(rules_naming)
            )),
            Ok(Some(found)) if found.archived || !found.is_active => problems.push(format!(
                "training '{training}' (rule {}) is {} in Pluvo",
                named_by(rules_naming),
                if found.archived {
                    "archived"
                } else {
                    "inactive"
                }
            )),
            Ok(Some(_)) => {}
            Err(error) => problems.push(format!("cannot read training '{training}': {error}")),
        }
    }
    for event in rules.offer_events() {
        let rules_naming: Vec<&str> = rules
            .enrol
            .iter()
            .filter(|r| &r.offer_event == event)
            .map(|r| r.name.as_str())
            .collect();
        match client.offer_event(event).await {
            Ok(None) => problems.push(format!(
                "offer event '{event}' (rule {}) does not exist in Pluvo",
                named_by(rules_naming)
            )),
            Ok(Some(_)) => {}
            Err(error) => problems.push(format!("cannot read offer event '{event}': {error}")),
        }
    }
    Finding {
        check: "training rules",
        ok: problems.is_empty(),
        detail: if problems.is_empty() {
            format!(
                "all {} trainings and {} offer events the {} rules name exist",
                rules.trainings().len(),
                rules.offer_events().len(),
                rules.assign.len() + rules.enrol.len()
            )
        } else {
            problems.join("; ")
        },
    }
}

/// Prints the findings; exit 0 only when every one is ok.
fn report(findings: &[Finding], args: &Args) -> Exit {
    let all_ok = findings.iter().all(|f| f.ok);
    if args.json {
        super::print_json(&serde_json::json!({"ok": all_ok, "findings": findings}));
    } else {
        for finding in findings {
            outln!(
                "{} {:<14} {}",
                if finding.ok { "ok  " } else { "FAIL" },
                finding.check,
                finding.detail
            );
        }
    }
    if all_ok { Exit::Ok } else { Exit::Failed }
}
