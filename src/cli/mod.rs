//! The command line of SPEC.md. Every command but `check` refuses to start on an invalid
//! config and prints the same report as `check` (exit 2).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock;
use crate::report;
use crate::settings::{Secrets, Settings};
use crate::startup::{open, open_for_reads};
use crate::store::Store;
use crate::sync::Mode;

#[derive(Debug, Parser)]
#[command(
    name = "okrsync",
    version,
    about = "Keeps OKR progress honest: syncs Jira and GitHub into key results, with evidence."
)]
pub struct Cli {
    /// The service config file [default: $OKRSYNC_CONFIG, else config/okrsync.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: every source on its own schedule plus the HTTP server, until SIGTERM/SIGINT
    Run,
    /// One pass over the sources, then exit; non-zero if any source failed
    Sync {
        /// Only this source
        #[arg(long)]
        source: Option<String>,
        /// A full pass: also removes items deleted upstream or out of scope
        #[arg(long)]
        full: bool,
    },
    /// Validate config, OKRs and rules; exit 2 with every problem listed
    Check,
    /// Apply database migrations
    Migrate,
    /// Objectives and key results with progress, current, target and status
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The items and rules behind one key result's number
    Explain {
        kr: String,
        #[arg(long)]
        json: bool,
        /// As the KR stood then: RFC 3339, or a date (the end of that day, UTC)
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Rules as code: `rules diff` (what a changed rule set would do), `rules test` (case files)
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Every change of a key result's number, with its cause and evidence
    History {
        kr: String,
        #[arg(long)]
        json: bool,
    },
    /// Which key results a project/repo/epic/label/item moves (project=PAY, epic=PAY-1, …)
    Moves {
        selector: String,
        #[arg(long)]
        json: bool,
    },
    /// Work that moves no key result
    Unaligned {
        #[arg(long)]
        json: bool,
        /// Another period than the current one, e.g. 2026-Q3
        #[arg(long)]
        period: Option<String>,
    },
    /// Where the effort of the period goes: per project over the objectives, exempt and unaligned
    Allocation {
        /// Another period than the current one, e.g. 2026-Q3
        #[arg(long)]
        period: Option<String>,
        /// Rows per project (default), or per objective with the projects as columns
        #[arg(long, value_name = "project|objective", default_value = "project")]
        by: String,
        /// Add the weekly series (effort in the week an item reached done, or this week)
        #[arg(long)]
        weeks: bool,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// The same table as CSV, for a spreadsheet
        #[arg(long)]
        csv: bool,
    },
    /// Record a manual key result's value and/or the owner's confidence (0–10) in any key result
    Checkin {
        kr: String,
        /// The new value (manual key results only)
        #[arg(allow_negative_numbers = true)]
        value: Option<f64>,
        /// The owner's confidence that the key result will be met, 0–10
        #[arg(long)]
        confidence: Option<f64>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Double counts, dead and shadowed rules, and key results no rule names
    Lint {
        #[arg(long)]
        json: bool,
    },
    /// The weekly digest of the seven days before now: progress and change per objective,
    /// the key results that moved or need attention, the largest unaligned work
    Digest {
        #[arg(long)]
        json: bool,
    },
    /// Write-back once: label the unaligned work of sources with `writeback = { label }`,
    /// and take the label off items aligned or exempt since
    Writeback {
        /// List what it would do; change nothing upstream or in the store
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
        /// Only this source
        #[arg(long)]
        source: Option<String>,
    },
    /// The daemon against built-in simulated Jira and GitHub with example OKRs (SQLite in data/demo/)
    Demo {
        /// Where the dashboard/API listens
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Sync once, print the status and exit
        #[arg(long)]
        once: bool,
        /// Folder for the demo's config and database
        #[arg(long, default_value = "data/demo")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Evaluate other OKR/rule files against the stored items, writing nothing, and print
    /// each key result whose value or scope would change
    Diff {
        /// The OKR and rule files (or globs) to evaluate instead of the config's `okrs`
        #[arg(long, required = true, num_args = 1.., value_name = "PATH")]
        against: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Evaluate case files ([[case]] item + moves/exempt) with the rules; exit 1 when a
    /// case fails, 2 when a case file is invalid. Needs no database.
    Test {
        /// Case files or folders of them [default: tests/*.toml in the folder of each
        /// `okrs` pattern, e.g. config/okrs/tests/*.toml]
        paths: Vec<PathBuf>,
    },
}

/// Parses the arguments and runs the command; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(execute(cli))
}

/// Runs a parsed command.
pub async fn execute(cli: Cli) -> ExitCode {
    if let Command::Demo { listen, once, dir } = &cli.command {
        return report_error(crate::demo::run(dir, *listen, *once).await);
    }
    let path = Settings::locate(cli.config.as_deref());
    // SPEC.md, "Secrets are needed where they are used": only what builds a source (and
    // `check`, which reports them) reads the secrets; the reports need the database alone.
    let secrets = match cli.command {
        Command::Run
        | Command::Sync { .. }
        | Command::Check
        | Command::Demo { .. }
        | Command::Writeback { dry_run: false, .. } => Secrets::Resolve,
        _ => Secrets::Defer,
    };
    let settings = match Settings::load_with(&path, secrets) {
        Ok(s) => s,
        Err(report) => {
            eprint!("{report}");
            return ExitCode::from(2);
        }
    };
    if let Command::Check = cli.command {
        println!(
            "{}: ok ({} sources, {} objectives, {} key results, {} rules)",
            path.display(),
            settings.sources.len(),
            settings.objectives.len(),
            settings
                .objectives
                .iter()
                .map(|o| o.key_results.len())
                .sum::<usize>(),
            settings.rules.rules().len()
        );
        // Lint findings that need no store: worth a look, not errors (exit 0 stays).
        for f in report::lint::without_store(&settings) {
            println!("warning: {}: {}", f.kind.as_str(), f.message);
        }
        return ExitCode::SUCCESS;
    }
    crate::telemetry::init(&settings.log);
    report_error(dispatch(cli.command, Arc::new(settings)).await)
}

fn report_error(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Prints a document: one JSON document with `--json`, else its table.
fn emit<T: serde::Serialize>(
    doc: &T,
    json: bool,
    table: fn(&T) -> String,
) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(doc)?);
    } else {
        print!("{}", table(doc));
    }
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(command: Command, settings: Arc<Settings>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate => {
            let store = Store::connect(&settings.database).await?;
            let n = store.migrate().await?;
            println!("migrations applied: {n}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let _single =
                crate::store::lock_single_replica(&settings.database, crate::sync::replica_id())?;
            let engine = open(settings.clone()).await?;
            crate::service::run_daemon(engine, settings.server.listen, None).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync { source, full } => {
            let engine = open(settings.clone()).await?;
            let runs = match source {
                Some(name) => {
                    if !engine.source_names().contains(&name) {
                        anyhow::bail!(
                            "unknown source \"{name}\"; configured: {}",
                            engine.source_names().join(", ")
                        );
                    }
                    let mode = if full {
                        Mode::Full
                    } else {
                        engine.next_mode(&name).await?
                    };
                    vec![engine.sync_source(&name, mode).await?]
                }
                None => engine.sync_all(full).await?,
            };
            let mut failed = false;
            for r in &runs {
                match &r.error {
                    None => println!(
                        "{}: ok ({}, {} fetched, {} changed, {} deleted, {} requests, {} key results changed)",
                        r.source, r.mode, r.fetched, r.changed, r.deleted, r.requests, r.krs_changed
                    ),
                    Some(e) => {
                        failed = true;
                        println!("{}: FAILED ({}): {e}", r.source, r.mode);
                    }
                }
            }
            // Notifications for what this pass changed (a sync from cron notifies too).
            match crate::notify::once(engine.store(), &settings).await {
                Ok((queued, d)) if queued + d.sent + d.failed > 0 => println!(
                    "notifications: {queued} queued, {} sent, {} not delivered (kept for a retry)",
                    d.sent, d.failed
                ),
                Ok(_) => {}
                Err(e) => eprintln!("warning: notifications: {e:#}"),
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Writeback {
            dry_run,
            json,
            source,
        } => {
            if let Some(name) = &source {
                match settings.sources.get(name) {
                    None => anyhow::bail!("unknown source \"{name}\""),
                    Some(s) if s.writeback.is_none() => anyhow::bail!(
                        "source \"{name}\" has no write-back (writeback = {{ label = \"no-kr\" }})"
                    ),
                    Some(_) => {}
                }
            }
            let engine = if dry_run {
                open_for_reads(settings.clone()).await?
            } else {
                open(settings.clone()).await?
            };
            let doc =
                crate::notify::writeback::run(&engine, source.as_deref(), dry_run, clock::now())
                    .await?;
            let failed = !doc.failed.is_empty();
            if json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                print!("{}", crate::notify::writeback::render(&doc, dry_run));
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Digest { json } => {
            let engine = open_for_reads(settings.clone()).await?;
            let doc = report::digest::digest(engine.store(), &settings, clock::now()).await?;
            emit(&doc, json, report::digest::render_digest)
        }
        Command::Status { json } => {
            let engine = open_for_reads(settings.clone()).await?;
            let doc = report::status(engine.store(), &settings, clock::now()).await?;
            emit(&doc, json, report::render_status)
        }
        Command::Explain { kr, json, at } => {
            let engine = open_for_reads(settings.clone()).await?;
            let doc = match at {
                Some(at) => {
                    let at = report::parse_at(&at)?;
                    report::explain_at(engine.store(), &settings, &kr, at).await?
                }
                None => report::explain(engine.store(), &settings, &kr, clock::now()).await?,
            };
            emit(&doc, json, report::render_explain)
        }
        Command::Rules {
            command: RulesCommand::Diff { against, json },
        } => {
            let proposed =
                match Settings::load_with_okrs(&settings.config_path, Secrets::Defer, &against) {
                    Ok(s) => s,
                    Err(report) => {
                        eprint!("{report}");
                        return Ok(ExitCode::from(2));
                    }
                };
            // Read only: no migration, no loading of the config's OKRs into the store.
            let store = Store::connect(&settings.database).await?;
            let pending = store.pending_migrations().await?;
            if pending > 0 {
                anyhow::bail!(
                    "the database needs {pending} migration(s) first: run okrsync migrate"
                );
            }
            let doc = report::rules_diff(&store, &settings, &proposed).await?;
            emit(&doc, json, report::render_rules_diff)
        }
        Command::History { kr, json } => {
            let engine = open_for_reads(settings.clone()).await?;
            let doc = report::history(engine.store(), &settings, &kr).await?;
            emit(&doc, json, report::render_history)
        }
        Command::Moves { selector, json } => {
            let engine = open_for_reads(settings.clone()).await?;
            let doc = report::moves(engine.store(), &settings, &selector).await?;
            emit(&doc, json, report::render_moves)
        }
        Command::Unaligned { json, period } => {
            let engine = open_for_reads(settings.clone()).await?;
            let doc = report::unaligned(engine.store(), &settings, period.as_deref(), clock::now())
                .await?;
            emit(&doc, json, report::render_unaligned)
        }
        Command::Allocation {
            period,
            by,
            weeks,
            json,
            csv,
        } => {
            let by = report::allocation::By::parse(&by)?;
            let engine = open_for_reads(settings.clone()).await?;
            let doc = report::allocation::allocation(
                engine.store(),
                &settings,
                period.as_deref(),
                by,
                weeks,
                clock::now(),
            )
            .await?;
            if csv {
                print!("{}", report::allocation::render_csv(&doc));
                return Ok(ExitCode::SUCCESS);
            }
            emit(&doc, json, report::allocation::render_allocation)
        }
        Command::Checkin {
            kr,
            value,
            confidence,
            note,
        } => {
            let engine = open_for_reads(settings).await?;
            engine
                .checkin(
                    &kr,
                    &crate::store::NewCheckin {
                        value,
                        confidence,
                        note: note.as_deref(),
                        author: None,
                    },
                )
                .await?;
            let what: Vec<String> = value
                .map(|v| format!("value {v}"))
                .into_iter()
                .chain(confidence.map(|c| format!("confidence {c}/10")))
                .collect();
            println!("{kr}: checked in {}", what.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules {
            command: RulesCommand::Test { paths },
        } => Ok(rules_test(&settings, &paths)),
        Command::Lint { json } => {
            let engine = open_for_reads(settings.clone()).await?;
            let doc = report::lint::lint(engine.store(), &settings).await?;
            emit(&doc, json, report::lint::render)
        }
        Command::Check | Command::Demo { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// `okrsync rules test`: 0 when every case holds, 1 naming each failing case, 2 with every
/// problem of invalid case files (printed like `check`'s report).
fn rules_test(settings: &Settings, paths: &[PathBuf]) -> ExitCode {
    use crate::rules::cases;
    let cases = cases::case_files(settings, paths).and_then(|files| cases::read(&files, settings));
    let cases = match cases {
        Ok(c) => c,
        Err(report) => {
            eprint!("{report}");
            return ExitCode::from(2);
        }
    };
    let outcomes = cases::run(&cases, &settings.rules);
    print!("{}", cases::render(&outcomes));
    if outcomes.iter().all(|o| o.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
