//! Service configuration: `config/okrsync.toml` (layered with `OKRSYNC__SECTION__KEY`
//! environment overrides through the `config` crate) plus the OKR and rule files it names.
//!
//! Loading validates everything and collects every problem into one [`ConfigReport`]:
//! `okrsync check` prints it and exits 2, every other command refuses to start with it.
//! Secrets are read from `*_env`/`*_file` into `secrecy` types and never printed.

mod notify;
mod okrs;

pub(crate) use crate::configfile::reader;
pub use crate::configfile::{ConfigReport, Locator, Problem, SecretRef, Secrets};
pub use notify::{EventKind, NotifierKind, NotifierSettings};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use crate::model::{ObjectiveDef, SourceId, StatusMargins};
use crate::rules::RuleSet;
use crate::sources::http::HttpSettings;
use crate::sources::kind::listed;
use crate::sources::{capabilities_of, SourceConfig};
use reader::{resolve_path, secret, Section, Sink};

/// The default location of the service config.
pub const DEFAULT_CONFIG: &str = "config/okrsync.toml";

/// Validated settings for the whole service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file these settings came from.
    pub config_path: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub margins: StatusMargins,
    /// `[progress]`: the judgement beside the numbers (success lines and flags).
    pub judgement: Judgement,
    /// `[[notify]]`: where changes are sent.
    pub notifiers: Vec<NotifierSettings>,
    pub sources: BTreeMap<String, SourceSettings>,
    pub objectives: Vec<ObjectiveDef>,
    pub rules: RuleSet,
    /// The OKR files read, relative to the config file's folder.
    pub okr_files: Vec<String>,
    /// The `okrs` patterns as written (relative to the config file's folder).
    pub okr_globs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Bearer token required by write endpoints; `None` (or an unset `api_token_env`
    /// variable) disables them. Read with [`ServerSettings::api_token`].
    pub api_token: Option<SecretRef>,
    /// Reads (API, dashboard, metrics) need the token too; refused outright without one.
    pub require_token_for_reads: bool,
    /// How long shutdown waits for sync steps under way before rolling them back.
    pub shutdown_timeout: std::time::Duration,
    /// `public_url`: the dashboard's address as people reach it, the base of every link
    /// in a notification (`http://<listen>` when unset).
    pub public_url: Option<url::Url>,
}

impl ServerSettings {
    /// The API token, read on first use. `Ok(None)`: writes are disabled (no token
    /// configured, or `api_token_env` names a variable that is not set).
    pub fn api_token(&self) -> Result<Option<&SecretString>, &Problem> {
        match &self.api_token {
            None => Ok(None),
            Some(r) => r.get_optional(),
        }
    }
}

#[derive(Clone)]
pub struct DatabaseSettings {
    /// `sqlite://path` (relative paths are relative to the working directory) or `postgres://…`.
    pub url: SecretString,
    pub max_connections: u32,
    /// SQLite: how long a statement waits for another process's lock on the file before it
    /// fails with "database is locked" (`busy_timeout`, 30 s).
    pub busy_timeout: Duration,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field(
                "url",
                &redact_url(secrecy::ExposeSecret::expose_secret(&self.url)),
            )
            .field("max_connections", &self.max_connections)
            .field("busy_timeout", &self.busy_timeout)
            .finish()
    }
}

/// Hides the password of a database URL.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter (`info`, `okrsync=debug`); `RUST_LOG` wins when set.
    pub level: String,
}

/// One `[sources.NAME]` section.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub name: SourceId,
    /// Poll interval.
    pub every: Duration,
    /// Data older than this makes the source's KRs stale (default: three intervals).
    pub freshness: Duration,
    /// How often a full pass runs to drop items deleted upstream or out of scope.
    pub reconcile_every: Duration,
    /// How far before the cursor an incremental pass starts again.
    pub overlap: Duration,
    pub webhook_secret: Option<SecretRef>,
    pub http: HttpSettings,
    /// The kind (`kind = "…"`) with its own settings.
    pub kind: SourceConfig,
    /// `writeback = { label = "no-kr" }` (Jira and GitHub): the label put on unaligned
    /// work and taken off once it is aligned or exempt. Off when absent.
    pub writeback: Option<Writeback>,
}

/// Write-back of a source (SPEC.md "Notifications and write-back").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writeback {
    pub label: String,
}

impl Settings {
    /// Where the config file is: `--config`, else `OKRSYNC_CONFIG`, else the default.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        match std::env::var_os("OKRSYNC_CONFIG") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_CONFIG),
        }
    }

    /// Loads and validates the config file, the environment overrides and the OKR files,
    /// and reads every secret (for `check`, `sync`, `run`, `demo`).
    pub fn load(path: &Path) -> Result<Settings, ConfigReport> {
        Settings::load_with(path, Secrets::Resolve)
    }

    /// Like [`Settings::load`]; with [`Secrets::Defer`] no secret is read until it is used,
    /// so the reports run without the sources' credentials.
    pub fn load_with(path: &Path, secrets: Secrets) -> Result<Settings, ConfigReport> {
        Settings::load_inner(path, secrets, None)
    }

    /// The config at `path` with other OKR and rule files than its `okrs` (for `rules
    /// diff --against`): `okr_files` are paths or globs, relative to the working directory.
    pub fn load_with_okrs(
        path: &Path,
        secrets: Secrets,
        okr_files: &[String],
    ) -> Result<Settings, ConfigReport> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let absolute = okr_files
            .iter()
            .map(|f| cwd.join(f).to_string_lossy().into_owned())
            .collect();
        Settings::load_inner(path, secrets, Some(absolute))
    }

    fn load_inner(
        path: &Path,
        secrets: Secrets,
        okr_override: Option<Vec<String>>,
    ) -> Result<Settings, ConfigReport> {
        let file = path.display().to_string();
        let mut problems = Vec::new();
        let text = match reader::read_text(path) {
            Ok(t) => t,
            Err(e) => {
                return Err(ConfigReport {
                    problems: vec![Problem {
                        file,
                        key: String::new(),
                        line: None,
                        message: match e.strip_prefix("cannot read") {
                            Some(rest) => format!("cannot read the config file{rest}"),
                            None => format!("the config file {e}"),
                        },
                    }],
                })
            }
        };
        let locator = Locator::new(&text);
        let root = match layered(&text) {
            Ok(root) => root,
            Err(p) => {
                return Err(ConfigReport {
                    problems: vec![Problem {
                        file,
                        key: String::new(),
                        line: p.1,
                        message: p.0,
                    }],
                })
            }
        };
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut sink = Sink {
            file: file.clone(),
            locator: &locator,
            problems: &mut problems,
            secrets,
            subject: None,
        };
        let mut top = Section::new("", &root);
        let okr_globs = top
            .string_list(&mut sink, "okrs")
            .unwrap_or_else(|| vec!["okrs/*.toml".to_string()]);
        let server = read_server(&mut top, &mut sink, &base_dir);
        let database = read_database(&mut top, &mut sink);
        let log = read_log(&mut top, &mut sink);
        let margins = read_margins(&mut top, &mut sink);
        let judgement = read_judgement(&mut top, &mut sink);
        let notifiers = notify::read(&mut top, &mut sink, &base_dir);
        let mut sources = BTreeMap::new();
        // Every source written, with its kind when known: a broken source is still not an
        // unknown one to the rules that name it.
        let mut source_kinds = BTreeMap::new();
        if let Some(table) = top.table(&mut sink, "sources") {
            for (name, value) in table {
                let key = format!("sources.{name}");
                source_kinds.insert(name.clone(), None);
                let toml::Value::Table(t) = value else {
                    sink.report(&key, "expected a table ([sources.NAME])");
                    continue;
                };
                if !valid_name(name) {
                    sink.report(
                        &key,
                        "a source name may only use letters, digits, '-' and '_'",
                    );
                }
                if let Some((kind, source)) = read_source(name, &key, t, &mut sink, &base_dir) {
                    source_kinds.insert(name.clone(), Some(kind));
                    if let Some(s) = source {
                        sources.insert(name.clone(), s);
                    }
                }
            }
        }
        top.finish(&mut sink);

        let okr_globs = okr_override.unwrap_or(okr_globs);
        let okr = okrs::load(&base_dir, &okr_globs, &source_kinds, &mut problems);
        // A notifier's objectives must be defined.
        for n in &notifiers {
            for o in &n.objectives {
                if !okr.objectives.iter().any(|d| &d.id == o) {
                    problems.push(Problem {
                        file: file.clone(),
                        key: n.key.clone(),
                        line: locator.line(&n.key),
                        message: format!("notifier \"{}\": unknown objective \"{o}\"", n.id),
                    });
                }
            }
        }
        // The `okrs` key is this file's.
        for p in problems.iter_mut().filter(|p| p.file == "okrs") {
            p.file = file.clone();
        }
        // The Jira client must ask for every custom field a rule reads.
        for (name, s) in sources.iter_mut() {
            s.kind
                .use_rule_fields(okr.rules.custom_fields_for_source(name));
        }
        if !problems.is_empty() {
            return Err(ConfigReport { problems });
        }
        let (Some(server), Some(database), Some(log)) = (server, database, log) else {
            return Err(ConfigReport {
                problems: vec![Problem {
                    file,
                    key: String::new(),
                    line: None,
                    message: "the configuration is incomplete".into(),
                }],
            });
        };
        Ok(Settings {
            config_path: path.to_path_buf(),
            server,
            database,
            log,
            margins,
            judgement,
            notifiers,
            sources,
            objectives: okr
                .objectives
                .into_iter()
                .map(|mut o| {
                    for kr in &mut o.key_results {
                        if kr.kind == crate::model::KrKind::Aspirational && kr.success.is_none() {
                            kr.success = Some(judgement.aspirational_success);
                        }
                    }
                    o
                })
                .collect(),
            rules: okr.rules,
            okr_files: okr.files,
            okr_globs,
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The config file with `OKRSYNC__…` environment overrides applied (via the `config` crate),
/// as a TOML table. On a syntax error: the message and line.
fn layered(text: &str) -> Result<toml::Table, (String, Option<usize>)> {
    // Parse once ourselves first: the toml crate's errors carry the position.
    let parsed = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) => {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            return Err((format!("not valid TOML: {}", e.message()), line));
        }
    };
    let mut environment = config::Environment::with_prefix("OKRSYNC")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("okrs")
        .with_list_parse_key("sources.github.repos");
    // Each source's list keys, as its kind declares them (`repos` of a GitHub source).
    let sources = parsed.get("sources").and_then(toml::Value::as_table);
    for (name, source) in sources.into_iter().flatten() {
        let kind = source.get("kind").and_then(toml::Value::as_str);
        let Some(capabilities) = kind.and_then(capabilities_of) else {
            continue;
        };
        for key in capabilities.list_keys {
            environment =
                environment.with_list_parse_key(&format!("sources.{}.{key}", name.to_lowercase()));
        }
    }
    let built = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .add_source(environment)
        .build()
        .map_err(|e| (format!("cannot apply environment overrides: {e}"), None))?;
    let json: serde_json::Value = built
        .try_deserialize()
        .map_err(|e| (format!("cannot read the configuration: {e}"), None))?;
    match json_to_toml(json) {
        Some(toml::Value::Table(t)) => Ok(t),
        _ => Ok(toml::Table::new()),
    }
}

fn json_to_toml(v: serde_json::Value) -> Option<toml::Value> {
    Some(match v {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => toml::Value::Boolean(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        serde_json::Value::String(s) => toml::Value::String(s),
        serde_json::Value::Array(a) => {
            toml::Value::Array(a.into_iter().filter_map(json_to_toml).collect())
        }
        serde_json::Value::Object(o) => toml::Value::Table(
            o.into_iter()
                .filter_map(|(k, v)| Some((k, json_to_toml(v)?)))
                .collect(),
        ),
    })
}

fn read_server(top: &mut Section, sink: &mut Sink, base: &Path) -> Option<ServerSettings> {
    let empty = toml::Table::new();
    let table = top.table(sink, "server").unwrap_or(&empty);
    let mut s = Section::new("server", table);
    let listen = match s.string(sink, "listen") {
        None => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        Some(l) => match l.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                sink.report(
                    &s.key("listen"),
                    format!("expected an address like \"127.0.0.1:8080\", found \"{l}\""),
                );
                None
            }
        },
    };
    // An unset api_token_env variable is not an error: write endpoints are then disabled
    // (SPEC's sample config names one that a first try will not have set).
    let api_token = {
        let resolve = std::mem::replace(&mut sink.secrets, Secrets::Defer);
        let token = secret(&mut s, sink, "api_token_env", "api_token_file", base, false);
        sink.secrets = resolve;
        token
    };
    let require_token_for_reads = s.boolean(sink, "require_token_for_reads").unwrap_or(false);
    if sink.secrets == Secrets::Resolve {
        let resolved = match &api_token {
            None => Ok(false),
            Some(t) => t.get_optional().map(|t| t.is_some()),
        };
        match resolved {
            Err(p) => sink.problems.push(p.clone()),
            Ok(false) if require_token_for_reads => sink.report(
                &s.key("require_token_for_reads"),
                "needs a token: set api_token_env (to a variable that is set) or api_token_file"
                    .to_string(),
            ),
            Ok(_) => {}
        }
    }
    let shutdown_timeout = s
        .duration(sink, "shutdown_timeout")
        .unwrap_or(std::time::Duration::from_secs(30));
    let public_url = match s.string(sink, "public_url") {
        None => None,
        Some(text) => match url::Url::parse(&text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Some(u),
            _ => {
                sink.report(
                    &s.key("public_url"),
                    format!("expected an http(s) address like \"https://okr.acme.com\", found \"{text}\""),
                );
                None
            }
        },
    };
    s.finish(sink);
    Some(ServerSettings {
        listen: listen?,
        api_token,
        require_token_for_reads,
        shutdown_timeout,
        public_url,
    })
}

fn read_database(top: &mut Section, sink: &mut Sink) -> Option<DatabaseSettings> {
    let empty = toml::Table::new();
    let table = top.table(sink, "database").unwrap_or(&empty);
    let mut s = Section::new("database", table);
    let url = s
        .string(sink, "url")
        .unwrap_or_else(|| "sqlite://data/okrsync.db".to_string());
    let max_connections = s.integer(sink, "max_connections", 1, 1000).unwrap_or(10) as u32;
    let busy_timeout = s
        .duration(sink, "busy_timeout")
        .unwrap_or(Duration::from_secs(30));
    s.finish(sink);
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        sink.report(
            "database.url",
            format!(
                "expected sqlite://PATH or postgres://USER@HOST/DB, found \"{}\"",
                redact_url(&url)
            ),
        );
        return None;
    }
    Some(DatabaseSettings {
        url: SecretString::from(url),
        max_connections,
        busy_timeout,
    })
}

fn read_log(top: &mut Section, sink: &mut Sink) -> Option<LogSettings> {
    let empty = toml::Table::new();
    let table = top.table(sink, "log").unwrap_or(&empty);
    let mut s = Section::new("log", table);
    let format = match s.choice(sink, "format", &["pretty", "json"]).as_deref() {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Pretty,
    };
    let level = s
        .string(sink, "level")
        .unwrap_or_else(|| "info".to_string());
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        sink.report("log.level", format!("expected a level (error, warn, info, debug, trace) or a filter like \"okrsync=debug\", found \"{level}\""));
    }
    s.finish(sink);
    Some(LogSettings { format, level })
}

fn read_margins(top: &mut Section, sink: &mut Sink) -> StatusMargins {
    let empty = toml::Table::new();
    let table = top.table(sink, "status").unwrap_or(&empty);
    let mut s = Section::new("status", table);
    let mut m = StatusMargins::default();
    if let Some(v) = s.number(sink, "on_track_margin") {
        m.on_track = v;
    }
    if let Some(v) = s.number(sink, "at_risk_margin") {
        m.at_risk = v;
    }
    if !(0.0..=1.0).contains(&m.on_track)
        || !(0.0..=1.0).contains(&m.at_risk)
        || m.at_risk < m.on_track
    {
        sink.report(
            "status",
            "margins must lie in [0, 1] with on_track_margin ≤ at_risk_margin",
        );
    }
    s.finish(sink);
    m
}

/// `[progress]` (SPEC.md "Judgement beside the numbers"): the default success line of
/// aspirational KRs and the thresholds of the flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    /// `aspirational_success` (0.7).
    pub aspirational_success: f64,
    /// `dead_after` (21 days): no change of value or evidence for this long raises `dead`.
    pub dead_after: Duration,
    /// `checkin_every`: when set, every KR's check-ins are due this often; otherwise only
    /// manual KRs', every [`Judgement::MANUAL_CHECKIN_EVERY`].
    pub checkin_every: Option<Duration>,
    /// `scope_creep` (0.25): growth of a completion KR's total weight that raises the flag.
    pub scope_creep: f64,
    /// `divergence` (0.5): the gap between work and outcome progress that raises a flag.
    pub divergence: f64,
}

impl Judgement {
    /// How often a manual KR's check-ins are due when `checkin_every` is not set.
    pub const MANUAL_CHECKIN_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);
}

impl Default for Judgement {
    fn default() -> Self {
        Judgement {
            aspirational_success: 0.7,
            dead_after: Duration::from_secs(21 * 24 * 3600),
            checkin_every: None,
            scope_creep: 0.25,
            divergence: 0.5,
        }
    }
}

fn read_judgement(top: &mut Section, sink: &mut Sink) -> Judgement {
    let empty = toml::Table::new();
    let table = top.table(sink, "progress").unwrap_or(&empty);
    let mut s = Section::new("progress", table);
    let mut j = Judgement::default();
    fn share(s: &mut Section, sink: &mut Sink, key: &'static str) -> Option<f64> {
        let v = s.number(sink, key)?;
        if !(v > 0.0 && v <= 1.0) {
            sink.report(&s.key(key), format!("must lie in (0, 1], found {v}"));
            return None;
        }
        Some(v)
    }
    if let Some(v) = share(&mut s, sink, "aspirational_success") {
        j.aspirational_success = v;
    }
    if let Some(v) = s.number(sink, "scope_creep") {
        if v > 0.0 && v.is_finite() {
            j.scope_creep = v;
        } else {
            sink.report(
                &s.key("scope_creep"),
                format!("must be a share of growth above 0 (0.25 = 25%), found {v}"),
            );
        }
    }
    if let Some(v) = share(&mut s, sink, "divergence") {
        j.divergence = v;
    }
    if let Some(d) = s.duration(sink, "dead_after") {
        if d.is_zero() {
            sink.report(&s.key("dead_after"), "must be longer than 0");
        } else {
            j.dead_after = d;
        }
    }
    if let Some(d) = s.duration(sink, "checkin_every") {
        if d.is_zero() {
            sink.report(&s.key("checkin_every"), "must be longer than 0");
        } else {
            j.checkin_every = Some(d);
        }
    }
    s.finish(sink);
    j
}

/// Reads one source section. Returns its kind (for rule validation) and, when it is valid
/// and supported, its settings.
fn read_source(
    name: &str,
    key: &str,
    table: &toml::Table,
    sink: &mut Sink,
    base: &Path,
) -> Option<(String, Option<SourceSettings>)> {
    let mut s = Section::new(key, table);
    let kind = s.required_string(sink, "kind");
    // Keys every source accepts.
    let every = s
        .duration(sink, "every")
        .unwrap_or(Duration::from_secs(300));
    let freshness = s.duration(sink, "freshness");
    let reconcile_every = s
        .duration(sink, "reconcile_every")
        .unwrap_or(Duration::from_secs(24 * 3600));
    let overlap = s
        .duration(sink, "overlap")
        .unwrap_or(Duration::from_secs(120));
    let webhook_secret = secret(
        &mut s,
        sink,
        "webhook_secret_env",
        "webhook_secret_file",
        base,
        false,
    );
    let mut http = HttpSettings::default();
    if let Some(rps) = s.number(sink, "requests_per_second") {
        if rps > 0.0 {
            http.requests_per_second = rps;
        } else {
            sink.report(&s.key("requests_per_second"), "must be greater than zero");
        }
    }
    if let Some(t) = s.duration(sink, "timeout") {
        http.timeout = t;
    }
    if let Some(r) = s.integer(sink, "max_retries", 0, 20) {
        http.max_retries = r as u32;
    }
    if let Some(b) = s.duration(sink, "retry_backoff") {
        http.backoff_base = b;
    }
    if let Some(r) = s.duration(sink, "max_retry_after") {
        http.max_retry_after = r;
    }
    if let Some(n) = s.size(sink, "max_response_size") {
        http.max_response_bytes = n;
    }
    if let Some(ca) = s.string(sink, "ca_file") {
        // Like a secret, read only by the commands that build sources.
        let path = resolve_path(base, &ca);
        if sink.secrets == Secrets::Resolve {
            if let Err(e) = crate::sources::http::read_ca_file(&path) {
                sink.report(&s.key("ca_file"), e);
            }
        }
        http.ca_file = Some(path);
    }
    let capabilities = kind.as_deref().and_then(capabilities_of);
    let writeback = s.table(sink, "writeback").and_then(|t| {
        let mut w = Section::new(s.key("writeback"), t);
        let label = w.required_string(sink, "label");
        let label_key = w.key("label");
        w.finish(sink);
        let label = label?;
        let trimmed = label.trim();
        if trimmed.is_empty() {
            sink.report(&label_key, "must not be empty");
            return None;
        }
        let check = capabilities.and_then(|c| c.writeback);
        if let Some(Err(e)) = check.map(|allowed| allowed(&label)) {
            sink.report(&label_key, e);
            return None;
        }
        if check.is_none() {
            let writers: Vec<&str> = SourceConfig::KINDS
                .iter()
                .filter(|(_, c)| c.writeback.is_some())
                .map(|(_, c)| c.title)
                .collect();
            sink.report(
                &s.key("writeback"),
                format!("write-back labels {} items only", listed(&writers, "and")),
            );
            return None;
        }
        Some(Writeback {
            label: trimmed.to_string(),
        })
    });
    let kind = kind?;
    let source_kind = match SourceConfig::read(&kind, &mut s, sink, base) {
        Some(config) => config,
        None => {
            let kinds: Vec<&str> = SourceConfig::KINDS.iter().map(|(k, _)| *k).collect();
            sink.report(
                &s.key("kind"),
                format!("expected one of {}, found \"{kind}\"", kinds.join(", ")),
            );
            None
        }
    };
    s.finish(sink);
    let settings = source_kind.map(|kind| SourceSettings {
        name: SourceId::from(name),
        every,
        freshness: freshness.unwrap_or(every * 3),
        reconcile_every,
        overlap,
        webhook_secret,
        http,
        kind,
        writeback,
    });
    Some((kind, settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(p, text).expect("write");
    }

    /// Loading reads process-wide environment variables, which one test sets.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn loads_the_example_applies_overrides_and_never_shows_secrets() {
        let _env = ENV
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::env::set_var("JIRA_TOKEN", "example-secret-token");
        std::env::set_var("OKRSYNC__LOG__LEVEL", "debug");
        std::env::set_var("OKRSYNC__SOURCES__JIRA__JQL", "project = OPS");
        let loaded = Settings::load(&repo.join("config/okrsync.toml"));
        std::env::remove_var("OKRSYNC__LOG__LEVEL");
        std::env::remove_var("OKRSYNC__SOURCES__JIRA__JQL");
        let s = loaded.unwrap_or_else(|r| panic!("the example config is invalid:\n{r}"));
        assert_eq!(s.log.level, "debug");
        let crate::sources::SourceConfig::Jira(j) = &s.sources["jira"].kind else {
            panic!("jira is a Jira source");
        };
        assert_eq!(j.jql, "project = OPS");
        assert_eq!(j.flavor, crate::sources::jira::JiraFlavor::Cloud);
        assert_eq!(s.sources["jira"].every, Duration::from_secs(300));
        assert_eq!(s.objectives.len(), 2);
        assert_eq!(s.rules.rules().len(), 3);
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("example-secret-token"),
            "a secret leaked into Debug output"
        );

        // An environment override with a typo is reported like a typo in the file.
        std::env::set_var("OKRSYNC__SERVER__LISTN", "127.0.0.1:1");
        let err = Settings::load(&repo.join("config/okrsync.toml")).expect_err("typo");
        std::env::remove_var("OKRSYNC__SERVER__LISTN");
        assert!(
            err.to_string().contains("server.listn: unknown key"),
            "{err}"
        );
        std::env::remove_var("JIRA_TOKEN");
    }

    #[test]
    fn the_demo_config_is_valid_once_filled_in() {
        let _env = ENV
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().expect("dir");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = std::fs::read_to_string(repo.join("config/demo/okrsync.toml"))
            .expect("demo config")
            .replace("{{LISTEN}}", "127.0.0.1:0")
            .replace("{{DB}}", "x.db")
            .replace("{{JIRA_URL}}", "http://127.0.0.1:9")
            .replace("{{GITHUB_URL}}", "http://127.0.0.1:9")
            .replace("{{GITLAB_URL}}", "http://127.0.0.1:9");
        write(dir.path(), "okrsync.toml", &config);
        let okrs =
            std::fs::read_to_string(repo.join("config/demo/okrs/demo.toml")).expect("demo okrs");
        write(
            dir.path(),
            "okrs/demo.toml",
            &okrs.replace("{{PERIOD}}", "2026-Q4"),
        );
        write(dir.path(), "jira-token", "t\n");
        write(dir.path(), "github-token", "g\n");
        write(dir.path(), "gitlab-token", "l\n");
        write(
            dir.path(),
            "metrics.csv",
            "Metric,Value\nMRR EMEA,1\nChurn,4\n",
        );
        let s = Settings::load(&dir.path().join("okrsync.toml")).unwrap_or_else(|r| panic!("{r}"));
        let crate::sources::SourceConfig::Jira(j) = &s.sources["jira"].kind else {
            panic!("jira is a Jira source");
        };
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(j.token.get().expect("token")),
            "t",
            "one trailing newline is dropped"
        );
    }

    #[test]
    fn reports_every_problem_with_file_key_and_line() {
        let _env = ENV
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().expect("dir");
        write(
            dir.path(),
            "okrsync.toml",
            "okrs = [\"okrs/*.toml\"]\n[log]\nformat = \"xml\"\n[sources.s1]\nkind = \"gitea\"\n[sources.s2]\nkind = \"jira\"\nurl = \"ftp://x\"\nflavor = \"datacenter\"\ntoken_file = \"missing\"\nevery = \"often\"\n",
        );
        write(
            dir.path(),
            "okrs/a.toml",
            "[[objective]]\nid = \"o\"\ntitle = \"O\"\nperiod = \"2026-Q4\"\nparent = \"ghost\"\n\n[[objective.kr]]\nid = \"o.m\"\ntitle = \"M\"\nmeasure = \"metric\"\ntarget = 3\nmetric = { source = \"s2\", cell = \"B7\" }\n\n[[objective.kr]]\nid = \"o.m\"\ntitle = \"dup\"\nmeasure = \"completion\"\nweight_by = \"points\"\n\n[[rule]]\nkr = \"o.m\"\nsource = \"nowhere\"\n[rule.match]\n\"fields.\" = \"x\"\n",
        );
        let report = Settings::load(&dir.path().join("okrsync.toml")).expect_err("invalid");
        let text = report.to_string();
        for expected in [
            "okrsync.toml:3: log.format: expected one of pretty, json, found \"xml\"",
            "okrsync.toml:5: sources.s1.kind: expected one of jira, github, sheet",
            "okrsync.toml:8: sources.s2.url: expected an http(s) URL",
            "okrsync.toml:10: sources.s2.token_file: cannot read the secret file",
            "okrsync.toml:11: sources.s2.every: expected a duration",
            "a.toml:5: objective[0].parent: objective \"o\": unknown objective \"ghost\"",
            "a.toml:12: objective[0].kr[0].metric.source: key result \"o.m\": source \"s2\" is a jira source",
            "a.toml:15: objective[0].kr[1].id: key result \"o.m\": id is used twice",
            "a.toml:18: objective[0].kr[1].weight_by: key result \"o.m\": expected one of count, estimate",
            "a.toml:24: rule[0].match.fields.: rule \"okrs/a.toml#1\": unknown field",
            "a.toml:22: rule[0].source: rule \"okrs/a.toml#1\": unknown source \"nowhere\"",
        ] {
            assert!(text.contains(expected), "missing «{expected}» in:\n{text}");
        }
    }

    #[test]
    fn an_unreadable_okr_file_makes_no_reference_unknown() {
        let _env = ENV
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().expect("dir");
        write(
            dir.path(),
            "okrsync.toml",
            "okrs = [\"okrs/*.toml\"]\n[database]\nurl = \"sqlite://x.db\"\n",
        );
        // a.toml would define the KR and the parent objective, but is not valid TOML.
        write(dir.path(), "okrs/a.toml", "[[objective]\nid = \"o\"\n");
        write(
            dir.path(),
            "okrs/b.toml",
            "[[objective]]\nid = \"p\"\ntitle = \"P\"\nperiod = \"2026-Q4\"\nparent = \"o\"\n\n[[rule]]\nkr = \"o.m\"\n[rule.match]\n",
        );
        let report = Settings::load(&dir.path().join("okrsync.toml")).expect_err("invalid");
        assert_eq!(report.problems.len(), 1, "{report}");
        assert!(
            report.problems[0].message.starts_with("not valid TOML"),
            "{report}"
        );
    }
}
