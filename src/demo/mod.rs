//! `okrsync demo`: the daemon against the built-in Jira simulator, with example OKRs and a
//! SQLite file, so a newcomer sees real numbers with one command.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{Datelike, Utc};

use crate::report;
use crate::settings::Settings;
use crate::simulator::github::GitHubSim;
use crate::simulator::jira::{demo_issues, JiraSim, JiraSimOptions, SimFlavor};

const CONFIG: &str = include_str!("../../config/demo/okrsync.toml");
const OKRS: &str = include_str!("../../config/demo/okrs/demo.toml");
const TOKEN: &str = "demo-token";
const GITHUB_TOKEN: &str = "ghp_demo";

/// Starts the simulator, writes the demo config into `dir`, syncs, and runs the daemon
/// (or, with `once`, prints the status and exits).
pub async fn run(dir: &Path, listen: SocketAddr, once: bool) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
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
    for issue in demo_issues(now) {
        sim.upsert(issue);
    }
    let github = Arc::new(
        GitHubSim::start(GITHUB_TOKEN, false)
            .await
            .context("cannot start the simulated GitHub")?,
    );
    github.seed_demo(now);
    let period = format!("{}-Q{}", now.year(), (now.month() - 1) / 3 + 1);
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
        .replace("{{GITHUB_URL}}", &github.api_url());
    let config_path = dir.join("okrsync.toml");
    std::fs::write(&config_path, config).context("cannot write the demo config")?;
    std::fs::write(
        dir.join("okrs/demo.toml"),
        OKRS.replace("{{PERIOD}}", &period),
    )
    .context("cannot write the demo OKRs")?;
    std::fs::write(dir.join("jira-token"), TOKEN).context("cannot write the demo token")?;
    std::fs::write(dir.join("github-token"), GITHUB_TOKEN)
        .context("cannot write the demo token")?;
    std::fs::write(
        dir.join("metrics.csv"),
        "Metric,Value,Note\nMRR EMEA,\"1,530,000\",from the finance team\nChurn,4.1%,monthly\n",
    )
    .context("cannot write the demo spreadsheet")?;

    let settings = match Settings::load(&config_path) {
        Ok(s) => Arc::new(s),
        Err(report) => {
            eprint!("{report}");
            return Ok(ExitCode::from(2));
        }
    };
    crate::telemetry::init(&settings.log);
    let engine = crate::cli::open(settings.clone()).await?;
    engine.sync_all(true).await?;
    // A manager's check-in, so the manual KR has a number too.
    engine
        .checkin(
            "company.nps",
            26.0,
            Some("Q4 partner survey, first wave"),
            Some("demo"),
        )
        .await?;
    let doc = report::status(engine.store(), &settings, Utc::now()).await?;
    println!("{}", report::render_status(&doc));
    if once {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "okrsync demo: simulated Jira at {}, GitHub at {}, API on http://{listen}/api/v1/objectives; config in {}. Ctrl-C stops.",
        sim.base_url(),
        github.api_url(),
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
