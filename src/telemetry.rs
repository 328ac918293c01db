//! Logging: human-readable on a terminal, one JSON object per line otherwise (containers, files).
//! Logs go to stderr; stdout carries command output (`plan --json`, `journal … --json`).
//! People are logged by employee ref, never by name or e-mail address.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides `level`.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new(crate::settings::DEFAULT_LOG_LEVEL))
        // The cron library narrates its internals at info.
        .add_directive(
            "tokio_cron_scheduler=warn"
                .parse()
                .unwrap_or_else(|_| unreachable_directive()),
        );
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them, not in files or a container's log.
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests) is not an error worth reporting.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
}

fn unreachable_directive() -> tracing_subscriber::filter::Directive {
    tracing_subscriber::filter::LevelFilter::WARN.into()
}

/// Replaces anything shaped like an e-mail address with `<e-mail>`, for messages that come from
/// elsewhere (Pluvo's error texts) and go to logs, which must not carry personal data.
pub fn redact_emails(text: &str) -> String {
    text.split_inclusive(|c: char| {
        c.is_whitespace() || matches!(c, '\'' | '"' | ',' | ';' | '<' | '>' | '(' | ')')
    })
    .map(|word| {
        let end = word.trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, '\'' | '"' | ',' | ';' | '<' | '>' | '(' | ')')
        });
        let (local, domain) = end.split_once('@').unwrap_or_default();
        if !local.is_empty() && domain.contains('.') {
            format!("<e-mail>{}", &word[end.len()..])
        } else {
            word.to_owned()
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::redact_emails;

    #[test]
    fn e_mail_addresses_are_redacted_and_the_rest_kept() {
        let cases = [
            (
                "quoted",
                "email 'ann@example.com' is taken",
                "email '<e-mail>' is taken",
            ),
            ("bare", "ann@example.com taken", "<e-mail> taken"),
            ("angle", "Ann <ann.smit@example.co.uk>", "Ann <<e-mail>>"),
            (
                "no address",
                "token expired @ 10:00",
                "token expired @ 10:00",
            ),
            ("empty", "", ""),
        ];
        for (name, input, expected) in cases {
            assert_eq!(redact_emails(input), expected, "case {name}");
        }
    }
}
