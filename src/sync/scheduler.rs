//! Runs every source on its own interval until shutdown. A step that is under way when
//! shutdown arrives finishes (its transaction commits or rolls back); no new step starts.

use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Engine;

/// Polls each source every `every` until `shutdown` turns true.
pub async fn run_scheduler(engine: Engine, shutdown: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    for name in engine.source_names() {
        let engine = engine.clone();
        let mut shutdown = shutdown.clone();
        let every = engine.settings().sources[&name].every;
        tasks.spawn(async move {
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let step = async {
                    let mode = engine.next_mode(&name).await?;
                    engine.sync_source(&name, mode).await
                };
                if let Err(e) = step.await {
                    tracing::error!(source = %name, error = format!("{e:#}"), "sync step could not be recorded");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => {}
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
