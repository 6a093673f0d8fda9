//! `okrsync demo`: the daemon against the built-in Jira, GitHub, GitLab and spreadsheet
//! simulators, with example OKRs and a SQLite file, so a newcomer sees real numbers with
//! one command.
//!
//! Before it serves, the demo replays its simulated quarter ([`story`]) into the store
//! through the normal sync path: for every other day from the period's start it sets the
//! simulators to that day's state and runs a sync step with the clock pinned to that day,
//! so every chart has weeks of history and the KRs end with a mix of statuses.

mod story;

pub use story::{Story, SETTLING_DAYS};

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::clock;
use crate::report;
use crate::settings::Settings;
use crate::simulator::github::GitHubSim;
use crate::simulator::gitlab::GitLabSim;
use crate::simulator::jira::{JiraSim, JiraSimOptions, SimFlavor};
use crate::sync::Engine;

const CONFIG: &str = include_str!("../../config/demo/okrsync.toml");
const OKRS: &str = include_str!("../../config/demo/okrs/demo.toml");
const TOKEN: &str = "demo-token";
const GITHUB_TOKEN: &str = "ghp_demo";
const GITLAB_TOKEN: &str = "glpat-demo";

/// The simulated upstreams the demo syncs.
struct Sims {
    jira: Arc<JiraSim>,
    github: Arc<GitHubSim>,
    gitlab: GitLabSim,
}

/// Sets the simulators (and the spreadsheet file) to the story's state as of `at`.
fn set_state(story: &Story, at: DateTime<Utc>, sims: &Sims, dir: &Path) -> anyhow::Result<()> {
    sims.jira.upsert_all(story.jira_issues(at));
    for (repo, issue) in story.github_issues(at) {
        sims.github.upsert(repo, issue);
    }
    for item in story.gitlab_items(at) {
        sims.gitlab.upsert(item);
    }
    std::fs::write(dir.join("metrics.csv"), story.metrics_csv(at))
        .context("cannot write the demo spreadsheet")
}

/// One sync step of every source; a failed one stops the demo (nothing else would say so:
/// logging starts after the replay).
async fn sync_or_fail(engine: &Engine, at: DateTime<Utc>) -> anyhow::Result<()> {
    for run in engine.sync_all(true).await? {
        if run.outcome != crate::model::RunOutcome::Ok {
            anyhow::bail!(
                "the simulated {} failed to sync (as of {at}): {}",
                run.source,
                run.error.unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Replays the story up to its last day, then syncs once more at the real now. Check-ins
/// are recorded at their own times, between the days.
async fn replay(story: &Story, engine: &Engine, sims: &Sims, dir: &Path) -> anyhow::Result<usize> {
    let mut checkins = story.nps_checkins().into_iter().peekable();
    let days = story.replay_days();
    let result: anyhow::Result<()> = async {
        for &day in &days {
            while let Some((at, value, note)) = checkins.next_if(|c| c.0 < day) {
                nps_checkin(engine, at, value, &note).await?;
            }
            clock::pin(Some(day));
            set_state(story, day, sims, dir)?;
            sync_or_fail(engine, day).await?;
        }
        for (at, value, note) in checkins {
            nps_checkin(engine, at, value, &note).await?;
        }
        Ok(())
    }
    .await;
    clock::pin(None);
    result?;
    set_state(story, story.until, sims, dir)?;
    sync_or_fail(engine, clock::now()).await?;
    Ok(days.len())
}

/// A partner survey's result checked in at `at`, with the owner's confidence that the
/// target will be met (it follows the surveys, between 3 and 9 out of 10).
async fn nps_checkin(
    engine: &Engine,
    at: chrono::DateTime<chrono::Utc>,
    value: f64,
    note: &str,
) -> anyhow::Result<()> {
    clock::pin(Some(at));
    let confidence = ((value - 20.0) / 2.0).round().clamp(3.0, 9.0);
    engine
        .checkin(
            "company.nps",
            &crate::store::NewCheckin {
                value: Some(value),
                confidence: Some(confidence),
                note: Some(note),
                author: Some("demo"),
            },
        )
        .await?;
    Ok(())
}

/// Starts the simulators, writes the demo config into `dir`, replays the simulated quarter,
/// and runs the daemon (or, with `once`, prints the status and exits).
pub async fn run(dir: &Path, listen: SocketAddr, once: bool) -> anyhow::Result<ExitCode> {
    let now = clock::now();
    let story = Story::new(now);
    let sim = Arc::new(
        JiraSim::start(JiraSimOptions {
            flavor: SimFlavor::Cloud,
            email: "okr-bot@demo.okrsync.local".into(),
            token: TOKEN.into(),
            ..JiraSimOptions::default()
        })
        .await
        .context("cannot start the simulated Jira")?,
    );
    let github = Arc::new(
        GitHubSim::start(GITHUB_TOKEN, false)
            .await
            .context("cannot start the simulated GitHub")?,
    );
    let gitlab = GitLabSim::start(GITLAB_TOKEN, None)
        .await
        .context("cannot start the simulated GitLab")?;
    std::fs::create_dir_all(dir.join("okrs"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join("okrsync.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let config = CONFIG
        .replace("{{LISTEN}}", &listen.to_string())
        .replace("{{DB}}", &db.display().to_string())
        .replace("{{JIRA_URL}}", &sim.base_url())
        .replace("{{GITHUB_URL}}", &github.api_url())
        .replace("{{GITLAB_URL}}", &gitlab.url());
    let config_path = dir.join("okrsync.toml");
    std::fs::write(&config_path, config).context("cannot write the demo config")?;
    std::fs::write(
        dir.join("okrs/demo.toml"),
        OKRS.replace("{{PERIOD}}", &story.period.label),
    )
    .context("cannot write the demo OKRs")?;
    std::fs::write(dir.join("jira-token"), TOKEN).context("cannot write the demo token")?;
    std::fs::write(dir.join("github-token"), GITHUB_TOKEN)
        .context("cannot write the demo token")?;
    std::fs::write(dir.join("gitlab-token"), GITLAB_TOKEN)
        .context("cannot write the demo token")?;
    for repo in ["acme/web", "acme/api"] {
        github.create_repo(repo);
    }
    for project in story.gitlab_projects() {
        gitlab.create_project(project);
    }
    let sims = Sims {
        jira: sim.clone(),
        github: github.clone(),
        gitlab,
    };
    set_state(&story, story.period.starts_at(), &sims, dir)?;

    let settings = match Settings::load(&config_path) {
        Ok(s) => Arc::new(s),
        Err(report) => {
            eprint!("{report}");
            return Ok(ExitCode::from(2));
        }
    };
    // The store's first snapshots (the OKRs loaded) are dated at the period's start.
    clock::pin(Some(story.period.starts_at()));
    let engine = crate::startup::open(settings.clone()).await;
    clock::pin(None);
    let engine = engine?;
    let days = replay(&story, &engine, &sims, dir).await?;
    crate::telemetry::init(&settings.log);
    tracing::info!(
        period = %story.period.label,
        days,
        until = %story.until,
        "replayed the simulated quarter into the store"
    );
    let doc = report::status(engine.store(), &settings, clock::now()).await?;
    println!("{}", report::render_status(&doc));
    if once {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "okrsync demo: simulated Jira at {}, GitHub at {}, GitLab at {}, API on http://{listen}/api/v1/objectives; config in {}. Ctrl-C stops.",
        sim.base_url(),
        github.api_url(),
        sims.gitlab.url(),
        dir.display()
    );
    // The simulated team keeps working, so the numbers move.
    let advancing = {
        let sim = sim.clone();
        let github = github.clone();
        tokio::spawn(async move {
            let mut step = 0u64;
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                step += 1;
                sim.advance_demo(step);
                if step.is_multiple_of(3) {
                    github.advance_demo(step / 3);
                }
            }
        })
    };
    let result = crate::service::run_daemon(engine, listen, None).await;
    advancing.abort();
    result?;
    Ok(ExitCode::SUCCESS)
}
