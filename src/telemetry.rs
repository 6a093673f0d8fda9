//! Logging: `tracing` to stderr (stdout is for documents such as `--json` output), pretty or
//! JSON per `log.format`; `RUST_LOG` wins over `log.level`. Pretty logs are coloured only
//! when stderr is a terminal: files, pipes and the journal get plain text.

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber once; later calls are ignored (tests start many apps).
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            |name| std::env::var_os(name),
        ))
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Whether pretty logs may carry ANSI colour: only on a terminal, never with `NO_COLOR` set
/// (no-color.org: any non-empty value), never into systemd's journal (`JOURNAL_STREAM`).
fn colour(stderr_is_terminal: bool, var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    stderr_is_terminal && !set("NO_COLOR") && !set("JOURNAL_STREAM")
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsString;

    #[test]
    fn colour_only_on_a_terminal_without_no_color_or_the_journal() {
        let none = |_: &str| None::<OsString>;
        assert!(colour(true, none));
        assert!(!colour(false, none));
        let no_color = |n: &str| (n == "NO_COLOR").then(|| OsString::from("1"));
        assert!(!colour(true, no_color));
        let empty = |n: &str| (n == "NO_COLOR").then(OsString::new);
        assert!(colour(true, empty), "an empty NO_COLOR does not count");
        let journal = |n: &str| (n == "JOURNAL_STREAM").then(|| OsString::from("8:1234"));
        assert!(!colour(true, journal));
    }
}
