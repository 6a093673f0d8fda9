//! Secrets named by the config (`*_env`: an environment variable, `*_file`: a file), read
//! where they are used rather than when the config is loaded.
//!
//! SPEC.md, "Secrets are needed where they are used": the reports (`status`, `explain`,
//! `moves`, `unaligned`, `checkin`, `migrate`) need only the database and the OKR files, so
//! an unset variable or an unreadable credential file must not stop them. Loading records
//! *where* each secret lives ([`SecretRef`]); building a source, the HTTP server or the
//! webhook verifier reads it ([`SecretRef::get`]), once per loaded config. `check`, `sync`,
//! `run` and `demo` load with [`Secrets::Resolve`], which reads every secret up front and
//! reports the missing ones with the rest of the config's problems.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use secrecy::SecretString;

use super::problems::Problem;

/// Whether loading the config reads the secrets it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Read every secret now and report the missing ones as config problems (`check`,
    /// `sync`, `run`, `demo`, a reload of the daemon).
    Resolve,
    /// Read none now; a secret is read when something first uses it (the reports).
    Defer,
}

/// Where one secret lives, and (once read) its value.
#[derive(Clone)]
pub struct SecretRef {
    from: From,
    /// Where the reference is written, for the problem a missing secret becomes.
    file: String,
    key: String,
    line: Option<usize>,
    value: Arc<OnceLock<Result<SecretString, Problem>>>,
}

#[derive(Clone)]
enum From {
    /// The name of an environment variable.
    Env(String),
    /// A path as written (`$CREDENTIALS_DIRECTORY/…` is expanded when read), and the
    /// folder a relative path is relative to.
    File { path: String, base: PathBuf },
    /// A value given directly (tests, benchmarks, built-in demo credentials).
    Value,
}

impl SecretRef {
    pub(crate) fn env(var: String, file: &str, key: String, line: Option<usize>) -> SecretRef {
        SecretRef::new(From::Env(var), file, key, line)
    }

    pub(crate) fn file(
        path: String,
        base: &Path,
        file: &str,
        key: String,
        line: Option<usize>,
    ) -> SecretRef {
        SecretRef::new(
            From::File {
                path,
                base: base.to_path_buf(),
            },
            file,
            key,
            line,
        )
    }

    /// A secret known up front.
    pub fn value(secret: impl Into<SecretString>) -> SecretRef {
        let r = SecretRef::new(From::Value, "", String::new(), None);
        let _ = r.value.set(Ok(secret.into()));
        r
    }

    fn new(from: From, file: &str, key: String, line: Option<usize>) -> SecretRef {
        SecretRef {
            from,
            file: file.to_string(),
            key,
            line,
            value: Arc::new(OnceLock::new()),
        }
    }

    /// The secret, read on first use; the problem says which key names it and why it
    /// cannot be read.
    pub fn get(&self) -> Result<&SecretString, &Problem> {
        self.value.get_or_init(|| self.read()).as_ref()
    }

    /// Like [`SecretRef::get`], but an unset *environment variable* means "none" (used for
    /// optional secrets such as the API token, whose absence disables writes).
    pub fn get_optional(&self) -> Result<Option<&SecretString>, &Problem> {
        if let From::Env(var) = &self.from {
            if std::env::var(var).map_or(true, |v| v.is_empty()) && self.value.get().is_none() {
                return Ok(None);
            }
        }
        self.get().map(Some)
    }

    fn read(&self) -> Result<SecretString, Problem> {
        let problem = |message: String| Problem {
            file: self.file.clone(),
            key: self.key.clone(),
            line: self.line,
            message,
        };
        match &self.from {
            From::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
                _ => Err(problem(format!(
                    "the environment variable {var} is not set or is empty"
                ))),
            },
            From::File { path, base } => {
                if path.starts_with("$CREDENTIALS_DIRECTORY")
                    && std::env::var_os("CREDENTIALS_DIRECTORY").is_none()
                {
                    return Err(problem(format!(
                        "cannot read the secret file {path}: CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with LoadCredential=)"
                    )));
                }
                let resolved = resolve_path(base, path);
                match std::fs::read_to_string(&resolved) {
                    Ok(v) => {
                        let v = v.strip_suffix('\n').unwrap_or(&v);
                        let v = v.strip_suffix('\r').unwrap_or(v);
                        if v.is_empty() {
                            Err(problem(format!(
                                "the secret file {} is empty",
                                resolved.display()
                            )))
                        } else {
                            Ok(SecretString::from(v.to_string()))
                        }
                    }
                    Err(e) => Err(problem(format!(
                        "cannot read the secret file {}: {e}",
                        resolved.display()
                    ))),
                }
            }
            From::Value => Err(problem("no value".into())),
        }
    }

    /// A problem about this reference (e.g. a credential file that is not what it should be).
    pub fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            key: self.key.clone(),
            line: self.line,
            message: message.into(),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            From::Env(var) => write!(f, "SecretRef(env {var})"),
            From::File { path, .. } => write!(f, "SecretRef(file {path})"),
            From::Value => write!(f, "SecretRef(value)"),
        }
    }
}

/// Resolves `path` against `base` unless it is absolute. `$CREDENTIALS_DIRECTORY` at the
/// start of a path is expanded (systemd `LoadCredential=`); when that variable is unset the
/// path is left as written, so the error names it.
pub(crate) fn resolve_path(base: &Path, path: &str) -> PathBuf {
    let expanded = match (
        path.strip_prefix("$CREDENTIALS_DIRECTORY"),
        std::env::var("CREDENTIALS_DIRECTORY"),
    ) {
        (Some(rest), Ok(dir)) => format!("{dir}{rest}"),
        _ => path.to_string(),
    };
    let p = Path::new(&expanded);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_missing_file_is_a_problem_only_when_read_and_names_its_key() {
        let dir = tempfile::tempdir().expect("dir");
        let r = SecretRef::file(
            "token".into(),
            dir.path(),
            "okrsync.toml",
            "sources.jira.token_file".into(),
            Some(7),
        );
        assert!(format!("{r:?}").contains("file token"));
        std::fs::write(dir.path().join("token"), "s3cret\n").expect("write");
        assert_eq!(r.get().expect("read").expose_secret(), "s3cret");
        // Read once: later changes are seen by the next loaded config, not this one.
        std::fs::remove_file(dir.path().join("token")).expect("rm");
        assert!(r.get().is_ok());
        let missing = SecretRef::file(
            "nothing".into(),
            dir.path(),
            "okrsync.toml",
            "sources.jira.token_file".into(),
            Some(7),
        );
        let p = missing.get().expect_err("missing");
        assert!(
            p.to_string().starts_with(
                "okrsync.toml:7: sources.jira.token_file: cannot read the secret file"
            ),
            "{p}"
        );
        assert!(!format!("{:?}", SecretRef::value("hidden")).contains("hidden"));
    }
}
