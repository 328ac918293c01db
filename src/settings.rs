//! Configuration: built-in defaults, then the TOML file given by `--config`, then environment
//! variables `PLUVO_SYNC__SECTION__KEY` (double underscores, so snake_case keys survive).
//!
//! [`RawSettings`] is what the file says; [`Settings`] is what the program runs with: secrets read
//! from their files, the time zone parsed, the mapping compiled, the client built. Every problem
//! is reported with the key it concerns, and all of them at once, so an operator fixes a config in
//! one pass. `Debug` never shows a secret: they are `SecretString`s.
//!
//! A TOML file with syntax errors is reported with every error the parser can recover from, each
//! with its line and column, and a problem with a key that an environment variable set names
//! that variable: a value nobody can find in the file is otherwise a long hunt.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::pluvo::{PluvoSettings, ResolvedPluvo};
use crate::service::daemon::DEFAULT_SHUTDOWN_GRACE;
use crate::service::schedule::{Schedule, ScheduleSettings};
use crate::service::server::{Listener, ServerSettings};
use crate::sync::journal::retention::{DEFAULT_RETENTION_DAYS, MIN_DAYS_WITHOUT_CONFIRMATION};
use crate::sync::mapping::{MappingRules, MappingSettings};
use crate::sync::plan::{ArchiveGuard, Leavers, Policy};
use crate::sync::rules::{AssignSettings, EnrolSettings, Rules};
use crate::sync::source::Source;
use crate::sync::source::csv::{CsvSettings, CsvSource};
use crate::sync::source::rest::{RestSettings, RestSource};

/// The prefix of environment overrides, e.g. `PLUVO_SYNC__PLUVO__CLIENT_SECRET`.
pub const ENV_PREFIX: &str = "PLUVO_SYNC";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// Which keys the environment set, to name the variable in a problem about one.
    #[serde(skip)]
    pub environment: EnvironmentKeys,
    pub source: SourceSettings,
    pub mapping: MappingSettings,
    pub pluvo: PluvoSettings,
    #[serde(default)]
    pub sync: SyncSettings,
    #[serde(default)]
    pub journal: JournalSettings,
    #[serde(default)]
    pub log: LogSettings,
    /// Only `pluvo-sync run` needs a schedule.
    pub schedule: Option<ScheduleSettings>,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub service: ServiceSettings,
    /// Training rules (`[[assign]]`), see [`crate::sync::rules`].
    #[serde(default)]
    pub assign: Vec<AssignSettings>,
    /// Offer-event enrolment rules (`[[enrol]]`).
    #[serde(default)]
    pub enrol: Vec<EnrolSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish before the process
    /// exits anyway.
    pub shutdown_grace_secs: u64,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE.as_secs(),
        }
    }
}

/// Exactly one of `[source.csv]` and `[source.rest]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    pub csv: Option<CsvSettings>,
    pub rest: Option<RestSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    /// The SQLite database holding the snapshot, the journal and the lease.
    pub database: PathBuf,
    /// The HR team's time zone: end and start dates are days in this zone.
    pub time_zone: String,
    pub leavers: Leavers,
    pub archive_after_end_days: u32,
    pub preboarding_days: Option<u32>,
    pub archive_guard: ArchiveGuard,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            database: PathBuf::from("pluvo-sync.db"),
            time_zone: "UTC".to_owned(),
            leavers: Leavers::Archive,
            archive_after_end_days: 1,
            preboarding_days: None,
            archive_guard: ArchiveGuard::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalSettings {
    /// Runs and their operations older than this are pruned after each run; at least
    /// [`MIN_DAYS_WITHOUT_CONFIRMATION`].
    pub retention_days: u32,
}

impl Default for JournalSettings {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise.
    #[default]
    Auto,
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,pluvo_sync::pluvo=debug`. `RUST_LOG` wins.
    pub level: String,
}

/// The log filter when none is configured, and the one logging falls back to.
pub const DEFAULT_LOG_LEVEL: &str = "info";

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: DEFAULT_LOG_LEVEL.to_owned(),
        }
    }
}

/// Why the configuration cannot be used. Each problem names its key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot load the configuration: {0}")]
    Load(String),
    #[error("the config file is not valid TOML:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Syntax(Vec<String>),
    #[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<String>),
}

/// The configuration keys set by `PLUVO_SYNC__…` environment variables: `(variable, key)`, the
/// key dotted and lowercased as the config loader reads it (`PLUVO_SYNC__SYNC__TIME_ZONE` sets
/// `sync.time_zone`).
#[derive(Debug, Clone, Default)]
pub struct EnvironmentKeys(Vec<(String, String)>);

impl EnvironmentKeys {
    fn new<'a>(variables: impl Iterator<Item = &'a String>) -> Self {
        let prefix = format!("{ENV_PREFIX}__");
        let mut keys: Vec<(String, String)> = variables
            .filter_map(|name| {
                let key = name.strip_prefix(&prefix)?;
                Some((name.clone(), key.to_lowercase().replace("__", ".")))
            })
            .collect();
        keys.sort();
        Self(keys)
    }

    /// `problem`, followed by the environment variables that set the keys it concerns: the
    /// whole dotted key, or its last part beside its section (as in "unknown field `databse`
    /// for key `sync`").
    pub fn annotate(&self, problem: &str) -> String {
        let from: Vec<&str> = self
            .0
            .iter()
            .filter(|(_, key)| {
                let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
                mentions(problem, key)
                    || (mentions(problem, leaf)
                        && (section.is_empty() || mentions(problem, section)))
            })
            .map(|(variable, _)| variable.as_str())
            .collect();
        if from.is_empty() {
            problem.to_owned()
        } else {
            format!("{problem} (set by the environment: {})", from.join(", "))
        }
    }
}

/// Whether `text` contains `word` as a whole key, not as part of a longer name.
fn mentions(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(is_name)
            && !text[at + word.len()..].chars().next().is_some_and(is_name)
    })
}

/// Every syntax error in a TOML file, each with its line and column. The parser recovers after
/// an error, so a file with three typos gets three lines, not one per attempt.
fn toml_syntax_errors(file: &Path, text: &str) -> Vec<String> {
    let (_, errors) = toml::de::DeTable::parse_recoverable(text);
    errors
        .iter()
        .map(|error| {
            let at = error.span().map_or(0, |span| span.start).min(text.len());
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!(
                "{}:{line}:{column}: {}",
                file.display(),
                error.message().trim_end()
            )
        })
        .collect()
}

/// Reads the layered configuration. `env` replaces the process environment in tests.
pub fn load(
    file: Option<&Path>,
    env: Option<std::collections::HashMap<String, String>>,
) -> Result<RawSettings, SettingsError> {
    let environment_keys = match &env {
        Some(env) => EnvironmentKeys::new(env.keys()),
        None => {
            let names: Vec<String> = std::env::vars_os()
                .filter_map(|(name, _)| name.into_string().ok())
                .collect();
            EnvironmentKeys::new(names.iter())
        }
    };
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        if !file.exists() {
            return Err(SettingsError::Load(format!(
                "the config file {} does not exist (pass --config or set PLUVO_SYNC_CONFIG)",
                file.display()
            )));
        }
        let text = std::fs::read_to_string(file).map_err(|error| {
            SettingsError::Load(format!(
                "cannot read the config file {}: {error}",
                file.display()
            ))
        })?;
        let syntax = toml_syntax_errors(file, &text);
        if !syntax.is_empty() {
            return Err(SettingsError::Syntax(syntax));
        }
        builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
    }
    let environment = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(env);
    builder
        .add_source(environment)
        .build()
        .and_then(config::Config::try_deserialize::<RawSettings>)
        .map(|mut raw| {
            raw.environment = environment_keys.clone();
            raw
        })
        .map_err(|error| SettingsError::Load(environment_keys.annotate(&error.to_string())))
}

/// What runs the sync, resolved once.
#[derive(Debug)]
pub struct Settings {
    pub source: ResolvedSource,
    pub mapping: MappingRules,
    pub pluvo: ResolvedPluvo,
    pub database: PathBuf,
    pub time_zone: Tz,
    pub policy: Policy,
    pub journal: JournalSettings,
    pub log: LogSettings,
    /// The `[schedule]`, if any; only `pluvo-sync run` needs one.
    pub schedule: Option<Schedule>,
    /// The admin listener of `pluvo-sync run`.
    pub server: Listener,
    pub shutdown_grace: std::time::Duration,
    /// Which keys the environment set, for problems `run` finds in what it needs (no schedule,
    /// no trigger token).
    pub environment: EnvironmentKeys,
    /// Training and enrolment rules; empty when the config has none.
    pub rules: Rules,
}

/// The configured source, built: secrets read, URLs parsed.
#[derive(Debug)]
pub enum ResolvedSource {
    Csv(CsvSource),
    Rest(Box<RestSource>),
}

impl ResolvedSource {
    pub fn describe(&self) -> String {
        match self {
            ResolvedSource::Csv(source) => source.describe(),
            ResolvedSource::Rest(source) => source.describe(),
        }
    }

    /// Reads every record; see [`Source::read`].
    pub async fn read(
        &self,
        required: &[String],
    ) -> Result<crate::sync::source::SourceData, crate::sync::source::SourceError> {
        match self {
            ResolvedSource::Csv(source) => source.read(required).await,
            ResolvedSource::Rest(source) => source.read(required).await,
        }
    }
}

/// Parses a time zone name, e.g. `Europe/Amsterdam`, naming `key` when it is not one.
pub fn parse_time_zone(key: &str, name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("{key}: '{name}' is not an IANA time zone (e.g. Europe/Amsterdam, UTC)")
    })
}

impl RawSettings {
    /// [`RawSettings::resolve_at`] the wall clock's now.
    pub fn resolve(self) -> Result<Settings, SettingsError> {
        use crate::clock::Clock;
        self.resolve_at(crate::clock::SystemClock.now())
    }

    /// Resolves everything, collecting every problem before giving up; `now` is when the
    /// schedule must still fire after.
    pub fn resolve_at(self, now: DateTime<Utc>) -> Result<Settings, SettingsError> {
        let mut problems = Vec::new();

        let mapping = MappingRules::from_settings(&self.mapping)
            .map_err(|error| problems.push(error.to_string()))
            .ok();
        let ref_column = mapping.as_ref().map(|m| m.ref_column().to_owned());
        let custom_fields = self
            .mapping
            .categories
            .iter()
            .map(|c| c.category_ref.trim().to_owned())
            .collect();
        let rules = Rules::from_settings(&self.assign, &self.enrol, custom_fields)
            .map_err(|errors| problems.extend(errors))
            .ok();
        let source = match (self.source.csv, self.source.rest) {
            (Some(csv), None) => Some(ResolvedSource::Csv(match &ref_column {
                Some(column) => CsvSource::new(csv).with_ref_column(column.clone()),
                None => CsvSource::new(csv),
            })),
            (None, Some(rest)) => {
                if let Some(column) = &ref_column
                    && !rest.ref_column.eq_ignore_ascii_case(column)
                {
                    problems.push(format!(
                        "source.rest.ref_column: '{}' differs from mapping.ref '{column}'; set both to the employee-number column",
                        rest.ref_column
                    ));
                }
                RestSource::from_settings(&rest)
                    .map(|source| ResolvedSource::Rest(Box::new(source)))
                    .map_err(|error| problems.push(error.to_string()))
                    .ok()
            }
            (Some(_), Some(_)) => {
                problems.push(
                    "source: configure either [source.csv] or [source.rest], not both".to_owned(),
                );
                None
            }
            (None, None) => {
                problems.push("source: configure [source.csv] or [source.rest]".to_owned());
                None
            }
        };
        let pluvo = self
            .pluvo
            .resolve()
            .map_err(|error| problems.push(error.to_string()))
            .ok();
        let time_zone = parse_time_zone("sync.time_zone", &self.sync.time_zone)
            .map_err(|error| problems.push(error))
            .ok();
        let guard = self.sync.archive_guard;
        if !(0.0..=100.0).contains(&guard.max_percent) {
            problems.push(format!(
                "sync.archive_guard.max_percent: {} is not a percentage between 0 and 100",
                guard.max_percent
            ));
        }

        let schedule = self.schedule.as_ref().and_then(|schedule| {
            schedule
                .resolve(now)
                .map_err(|error| problems.push(error.to_string()))
                .ok()
        });
        let server = Listener::from_settings(&self.server)
            .map_err(|error| problems.push(error.to_string()))
            .ok();
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            problems.push(format!(
                "log.level: '{}' is not a log filter ({error}); write e.g. info, or \
                 info,pluvo_sync::pluvo=debug",
                self.log.level
            ));
        }
        let retention_days = self.journal.retention_days;
        if retention_days < MIN_DAYS_WITHOUT_CONFIRMATION {
            // Every run is older than 0 days: the journal would be emptied after every run.
            problems.push(format!(
                "journal.retention_days: {retention_days} would delete every run older than \
                 {retention_days} day(s) after each run, erasing the audit trail; set at least \
                 {MIN_DAYS_WITHOUT_CONFIRMATION} (or leave it out for {DEFAULT_RETENTION_DAYS}), \
                 and prune more by hand with `pluvo-sync journal prune --older-than-days N --yes`"
            ));
        }

        match (source, mapping, pluvo, time_zone, server, rules) {
            (
                Some(source),
                Some(mapping),
                Some(pluvo),
                Some(time_zone),
                Some(server),
                Some(rules),
            ) if problems.is_empty() => Ok(Settings {
                source,
                mapping,
                pluvo,
                database: self.sync.database,
                time_zone,
                policy: Policy {
                    leavers: self.sync.leavers,
                    archive_after_end_days: self.sync.archive_after_end_days,
                    preboarding_days: self.sync.preboarding_days,
                    guard,
                    allow_mass_archive: false,
                },
                journal: self.journal,
                log: self.log,
                schedule,
                server,
                shutdown_grace: std::time::Duration::from_secs(self.service.shutdown_grace_secs),
                environment: self.environment,
                rules,
            }),
            _ => Err(SettingsError::Invalid(
                problems
                    .iter()
                    .map(|problem| self.environment.annotate(problem))
                    .collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// The `PLUVO_SYNC__…` entries of compose.yaml's pluvo-sync service, with `${VAR:-default}`
    /// replaced by its default, as Docker Compose would without a .env file.
    fn compose_environment() -> HashMap<String, String> {
        let compose =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/compose.yaml")).unwrap();
        compose
            .lines()
            .filter_map(|line| line.trim().split_once(": "))
            .filter(|(key, _)| key.starts_with("PLUVO_SYNC__"))
            .map(|(key, value)| {
                let value = match value.split_once(":-") {
                    Some((_, default)) => default.trim_end_matches('}').to_owned(),
                    None => value.to_owned(),
                };
                (key.to_owned(), value)
            })
            .collect()
    }

    #[test]
    fn compose_yaml_environment_configures_the_service() {
        let env = compose_environment();
        assert!(
            env.contains_key("PLUVO_SYNC__PLUVO__CLIENT_SECRET"),
            "{env:?}"
        );
        let file = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/compose.toml"));
        let now = "2026-11-23T00:00:00Z".parse().unwrap();
        let settings = load(Some(file), Some(env))
            .unwrap()
            .resolve_at(now)
            .unwrap();
        let server = settings
            .server
            .for_run()
            .unwrap()
            .expect("the listener is enabled");
        assert_eq!(server.listen.to_string(), "0.0.0.0:8080");
        assert!(settings.schedule.is_some());
        assert_eq!(settings.database, Path::new("/data/pluvo-sync.db"));
    }

    #[test]
    fn every_shipped_config_parses() {
        // The annotated example reads its secrets from files that exist only in a deployment, so
        // it is loaded but not resolved; the others resolve completely.
        let root = env!("CARGO_MANIFEST_DIR");
        let example = load(
            Some(&Path::new(root).join("config/pluvo-sync.example.toml")),
            Some(HashMap::new()),
        );
        let example = example.unwrap();
        assert!(MappingRules::from_settings(&example.mapping).is_ok());
        assert!(parse_time_zone("sync.time_zone", &example.sync.time_zone).is_ok());
        let try_it = load(
            Some(&Path::new(root).join("config/try-it.toml")),
            Some(HashMap::new()),
        );
        assert!(try_it.unwrap().resolve().is_ok());
    }

    #[test]
    fn problems_are_reported_together_and_name_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(
            &file,
            r#"
[source.csv]
path = "x.csv"
[mapping]
ref = "nr"
name = "{first"
email = "email"
[pluvo]
url = "https://acme.pluvo.com"
client_id = "x"
[sync]
time_zone = "Mars/Olympus"
"#,
        )
        .unwrap();
        let error = load(Some(&file), Some(HashMap::new()))
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(error.contains("mapping.name"), "{error}");
        assert!(error.contains("pluvo.client_secret"), "{error}");
        assert!(error.contains("sync.time_zone"), "{error}");
    }

    #[test]
    fn training_rules_resolve_with_the_rest_and_their_problems_are_listed_with_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.toml");
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/try-it.toml"),
        )
        .unwrap();
        let rules = r#"
[[assign]]
name = "safety-basics"
training = "safety-2024"
role = "TRAINER"
when = 'department in ["Operations", "Support"] && has_company_car'
remove = "when_unmatched"

[[enrol]]
name = "intro-day"
offer_event = "intro-day-2026-q1"
when = 'days_since_start <= 30'
"#;
        std::fs::write(&file, format!("{base}\n{rules}")).unwrap();
        let settings = load(Some(&file), Some(HashMap::new()))
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(
            settings.rules.assign[0].role,
            crate::domain::TrainingRole::Trainer
        );
        assert_eq!(
            settings.rules.enrol[0].offer_event.as_str(),
            "intro-day-2026-q1"
        );

        let broken = base.replace("time_zone = ", "time_zone = \"Mars/Olympus\" # ")
            + &rules.replace("department in", "departmnt in");
        std::fs::write(&file, broken).unwrap();
        let error = load(Some(&file), Some(HashMap::new()))
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(error.contains("sync.time_zone"), "{error}");
        assert!(
            error.contains("assign[0].when (safety-basics): unknown field(s) 'departmnt'"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("typo.toml");
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/try-it.toml"),
        )
        .unwrap();
        std::fs::write(&file, base.replace("[sync]", "[sync]\ndatabse = \"x.db\"")).unwrap();
        let error = load(Some(&file), Some(HashMap::new()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("databse"), "{error}");

        std::fs::write(
            &file,
            base.replace("rate_per_second = 20", "rate_per_second = \"fast\""),
        )
        .unwrap();
        let error = load(Some(&file), Some(HashMap::new()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("rate_per_second"), "{error}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/try-it.toml");
        let env = HashMap::from([
            (
                "PLUVO_SYNC__SYNC__TIME_ZONE".to_owned(),
                "Europe/Berlin".to_owned(),
            ),
            (
                "PLUVO_SYNC__PLUVO__RATE_PER_SECOND".to_owned(),
                "3".to_owned(),
            ),
        ]);
        let settings = load(Some(&file), Some(env)).unwrap().resolve().unwrap();
        assert_eq!(settings.time_zone, chrono_tz::Europe::Berlin);
    }
    #[test]
    fn every_toml_syntax_error_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("broken.toml");
        std::fs::write(
            &file,
            "[source.csv\npath = \"x.csv\"\n[mapping]\nref = \nname = \"{name}\"\nemail = \"email\n",
        )
        .unwrap();
        let Err(SettingsError::Syntax(problems)) = load(Some(&file), Some(HashMap::new())) else {
            panic!("a syntax error is a Syntax error");
        };
        let lines: Vec<&str> = problems
            .iter()
            .map(|p| {
                p.strip_prefix(&format!("{}:", file.display()))
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(lines, ["1", "4", "6"], "{problems:?}");
        assert!(problems[0].contains(":1:12: "), "{problems:?}");
    }

    #[test]
    fn problems_with_keys_from_the_environment_name_the_variable() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/try-it.toml");
        let load_error = |name: &str, value: &str| {
            load(
                Some(&file),
                Some(HashMap::from([(name.to_owned(), value.to_owned())])),
            )
            .unwrap_err()
            .to_string()
        };
        // An unknown key: config names only the section.
        let error = load_error("PLUVO_SYNC__SYNC__DATABSE", "x.db");
        assert!(
            error.ends_with("(set by the environment: PLUVO_SYNC__SYNC__DATABSE)"),
            "{error}"
        );
        // A wrong type.
        let error = load_error("PLUVO_SYNC__PLUVO__RATE_PER_SECOND", "fast");
        assert!(
            error.contains("(set by the environment: PLUVO_SYNC__PLUVO__RATE_PER_SECOND)"),
            "{error}"
        );
        // A conflict found while resolving, with one side in the file and one in the
        // environment: the variable is what the operator has to look for.
        let env = HashMap::from([(
            "PLUVO_SYNC__PLUVO__CLIENT_SECRET_FILE".to_owned(),
            "/run/secrets/x".to_owned(),
        )]);
        let error = load(Some(&file), Some(env))
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(
                "not both (set by the environment: PLUVO_SYNC__PLUVO__CLIENT_SECRET_FILE)"
            ),
            "{error}"
        );
        // A problem the file alone causes names no variable, even with others set.
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        let base = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&bad, base.replace("Europe/Amsterdam", "Mars/Olympus")).unwrap();
        let env = HashMap::from([(
            "PLUVO_SYNC__PLUVO__RATE_PER_SECOND".to_owned(),
            "3".to_owned(),
        )]);
        let error = load(Some(&bad), Some(env))
            .unwrap()
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(error.contains("sync.time_zone"), "{error}");
        assert!(!error.contains("environment"), "{error}");
    }

    /// config/try-it.toml with one environment variable set, resolved.
    fn try_it_with(variable: &str, value: &str) -> Result<Settings, SettingsError> {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/try-it.toml");
        let env = HashMap::from([(variable.to_owned(), value.to_owned())]);
        load(Some(&file), Some(env))?.resolve()
    }

    /// `retention_days = 0` made every run "older than 0 days", so the journal was emptied
    /// after every run: the audit trail kept nothing.
    #[test]
    fn a_retention_below_the_prune_minimum_is_refused_naming_the_key() {
        let with_retention =
            |days: u32| try_it_with("PLUVO_SYNC__JOURNAL__RETENTION_DAYS", &days.to_string());
        for days in [0, MIN_DAYS_WITHOUT_CONFIRMATION - 1] {
            let error = with_retention(days).unwrap_err().to_string();
            assert!(
                error.contains(&format!("journal.retention_days: {days} would delete")),
                "{error}"
            );
            assert!(
                error.contains(&format!("set at least {MIN_DAYS_WITHOUT_CONFIRMATION}")),
                "{error}"
            );
        }
        let settings = with_retention(MIN_DAYS_WITHOUT_CONFIRMATION).unwrap();
        assert_eq!(settings.log.level, DEFAULT_LOG_LEVEL);
        assert_eq!(
            settings.journal.retention_days,
            MIN_DAYS_WITHOUT_CONFIRMATION
        );
    }

    #[test]
    fn a_log_level_that_is_no_filter_is_reported_at_load() {
        let error = try_it_with("PLUVO_SYNC__LOG__LEVEL", "pluvo_sync=loud")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("log.level: 'pluvo_sync=loud' is not a log filter"),
            "{error}"
        );
    }

    #[test]
    fn a_key_is_mentioned_only_as_a_whole_name() {
        assert!(mentions(
            "pluvo.client_secret: is empty",
            "pluvo.client_secret"
        ));
        assert!(!mentions(
            "pluvo.client_secret_file: unreadable",
            "pluvo.client_secret"
        ));
        assert!(!mentions("xsync: y", "sync"));
    }
}
