//! Application start-up shared by every entry point that needs an engine (`okrsync run`,
//! `sync`, the reports, `okrsync demo`): open the store, migrate it, build the sources and
//! bring the store in line with the config. Interfaces call in here rather than into one
//! another.

use std::sync::Arc;

use anyhow::Context;

use crate::settings::Settings;
use crate::store::Store;
use crate::sync::Engine;

/// Opens the store, migrates it, builds the sources and brings the store in line with the
/// config.
pub async fn open(settings: Arc<Settings>) -> anyhow::Result<Engine> {
    open_engine(settings, true).await
}

/// Like [`open`], for commands that only read and record (reports, check-ins): no source is
/// built, so no source's secret is needed.
pub async fn open_for_reads(settings: Arc<Settings>) -> anyhow::Result<Engine> {
    open_engine(settings, false).await
}

async fn open_engine(settings: Arc<Settings>, sources: bool) -> anyhow::Result<Engine> {
    let store = Store::connect(&settings.database).await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    let engine = if sources {
        Engine::new(settings, store)?
    } else {
        Engine::with_sources(settings, store, Default::default())
    };
    engine
        .prepare()
        .await
        .context("cannot load the OKRs into the store")?;
    Ok(engine)
}
