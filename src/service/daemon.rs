//! `okrsync run`: the HTTP server and the scheduler over one shared engine, until
//! SIGTERM/SIGINT; SIGHUP reloads the OKRs and rules. Speaks systemd's notify protocol.

use anyhow::Context;
use tokio::sync::watch;

use super::notify;
use crate::server::Application;
use crate::sync::{Engine, Scheduler, SharedEngine};

/// The daemon: scheduler plus HTTP server until SIGTERM/SIGINT; SIGHUP reloads the OKRs
/// and rules. Tells systemd when it is ready, reloading and stopping, and pings its
/// watchdog. On shutdown, steps under way get `server.shutdown_timeout` to finish; then
/// they are abandoned, which rolls their transactions back.
pub async fn run_daemon(
    engine: Engine,
    listen: std::net::SocketAddr,
    ready: Option<tokio::sync::oneshot::Sender<std::net::SocketAddr>>,
) -> anyhow::Result<()> {
    let grace = engine.settings().server.shutdown_timeout;
    let shared = SharedEngine::new(engine);
    let scheduler = std::sync::Arc::new(Scheduler::new());
    let app = Application::build_shared(shared.clone(), scheduler.clone(), listen).await?;
    let addr = app.addr();
    tracing::info!(%addr, sources = shared.current().source_names().len(), replica = crate::sync::replica_id(), "okrsync is running");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(app.run_until_stopped(stop_rx.clone()));
    let notifier = tokio::spawn(crate::notify::run_notifier(shared.clone(), stop_rx.clone()));
    let mut scheduling = tokio::spawn(scheduler.clone().run(shared.clone(), stop_rx));
    // Pings only while the scheduler shows signs of life (it ticks at least every 15 s,
    // also during long steps), so a wedged daemon is restarted by systemd.
    let watchdog = notify::watchdog_interval().map(|every| {
        let scheduler = scheduler.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let quiet = scheduler.since_last_tick();
                if quiet <= (every * 2).max(std::time::Duration::from_secs(45)) {
                    let _ = notify::watchdog_ping();
                } else {
                    tracing::error!(
                        quiet_s = quiet.as_secs(),
                        "the scheduler shows no sign of life; not pinging the watchdog"
                    );
                }
            }
        })
    });
    let _ = notify::ready();
    let mut signals = Signals::new()?;
    loop {
        match signals.next().await {
            Signal::Stop => break,
            Signal::Reload => {
                let _ = notify::reloading();
                match shared.reload().await {
                    crate::sync::Reload::Applied { .. } => {
                        let _ = notify::status("running; OKRs and rules reloaded");
                    }
                    crate::sync::Reload::Refused(_) => {
                        let _ = notify::status(
                            "running; the last reload was refused (see the log), the previous OKRs and rules stay",
                        );
                    }
                }
                let _ = notify::ready();
            }
        }
    }
    let _ = notify::stopping();
    tracing::info!(grace = %humantime::format_duration(grace), "shutting down: no new sync steps; waiting for those under way");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(grace, &mut scheduling).await.is_err() {
        tracing::warn!("sync steps still under way after the shutdown timeout: rolling them back");
        scheduling.abort();
        let _ = scheduling.await;
        let _ = shared
            .current()
            .store()
            .release_leases(crate::sync::replica_id())
            .await;
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    let _ = notifier.await;
    let served = server.await;
    // A step asked for over HTTP (`POST /api/v1/sync`) that was still under way renewed
    // its lease after the scheduler released them; the server has waited for it.
    let _ = shared
        .current()
        .store()
        .release_leases(crate::sync::replica_id())
        .await;
    served??;
    Ok(())
}

enum Signal {
    Stop,
    Reload,
}

/// SIGTERM/SIGINT (stop) and SIGHUP (reload).
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
                hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Stop,
                _ = self.term.recv() => Signal::Stop,
                _ = self.hup.recv() => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}
