//! The engine the daemon's server and scheduler share, swapped whole by a reload (SIGHUP):
//! the new OKRs and rules are validated and loaded into the store first; a config that
//! does not validate, or that cannot be loaded, leaves the running set in place.

use std::path::Path;
use std::sync::{Arc, RwLock};

use super::Engine;
use crate::settings::Settings;

#[derive(Clone)]
pub struct SharedEngine {
    inner: Arc<RwLock<Engine>>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    /// The new OKRs and rules are in force.
    Applied { objectives: usize, rules: usize },
    /// The config did not validate or could not be loaded; the running set stays.
    Refused(String),
}

impl SharedEngine {
    pub fn new(engine: Engine) -> SharedEngine {
        SharedEngine {
            inner: Arc::new(RwLock::new(engine)),
        }
    }

    /// The engine in force now (cheap: a handful of `Arc`s).
    pub fn current(&self) -> Engine {
        match self.inner.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, engine: Engine) {
        match self.inner.write() {
            Ok(mut e) => *e = engine,
            Err(poisoned) => *poisoned.into_inner() = engine,
        }
    }

    /// Reads the config at `path` again and puts its OKRs and rules in force. The server,
    /// database and sources keep running as started (changes there need a restart; they
    /// are logged). Changed source settings take effect; adding or removing a source is refused.
    pub async fn reload(&self) -> Reload {
        let old = self.current();
        let path: &Path = &old.settings().config_path.clone();
        let settings = match Settings::load(path) {
            Ok(s) => s,
            Err(report) => {
                let why = report.to_string();
                tracing::error!(config = %path.display(), problems = %why.trim_end(), "reload refused: the config does not validate; the running OKRs and rules stay");
                return Reload::Refused(why);
            }
        };
        let old_settings = old.settings();
        let mut settings = settings;
        if settings.server.listen != old_settings.server.listen {
            tracing::warn!("reload: server.listen changed; that takes a restart");
        }
        let old_names: Vec<&String> = old_settings.sources.keys().collect();
        let new_names: Vec<&String> = settings.sources.keys().collect();
        if old_names != new_names {
            let why = "sources were added or removed; that takes a restart".to_string();
            tracing::error!("reload refused: {why}; the running OKRs and rules stay");
            return Reload::Refused(why);
        }
        // The database and server stay as started.
        settings.database = old_settings.database.clone();
        settings.server = old_settings.server.clone();
        let objectives = settings.objectives.len();
        let rules = settings.rules.rules().len();
        let engine = match Engine::new(Arc::new(settings), old.store().clone()) {
            Ok(e) => e,
            Err(e) => {
                let why = format!("{e:#}");
                tracing::error!(error = %why, "reload refused; the running OKRs and rules stay");
                return Reload::Refused(why);
            }
        };
        if let Err(e) = engine.prepare().await {
            let why = format!("{e:#}");
            tracing::error!(error = %why, "reload refused: cannot load the OKRs into the store; the running set stays");
            return Reload::Refused(why);
        }
        self.replace(engine);
        tracing::info!(objectives, rules, "reloaded OKRs and rules");
        Reload::Applied { objectives, rules }
    }
}
