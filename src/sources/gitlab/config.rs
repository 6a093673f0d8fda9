//! A GitLab source's settings: the keys of `[sources.NAME]` with `kind = "gitlab"`, read
//! and validated, and what a GitLab source can do.

use std::path::Path;
use std::sync::Arc;

use url::Url;

use crate::configfile::reader::{secret, Section, Sink};
use crate::model::CellRef;
use crate::settings::SecretRef;
use crate::sources::http::HttpSettings;
use crate::sources::kind::{Capabilities, SourceKind};
use crate::sources::webhook::WebhookAuth;
use crate::sources::{ItemSource, SourceError};

/// A GitLab source's settings, validated.
#[derive(Debug, Clone)]
pub struct GitLabSettings {
    /// `https://gitlab.com`, or a self-managed instance, possibly under a sub-path
    /// (`https://git.acme.com/gitlab`); the API is at `{url}/api/v4`.
    pub url: Url,
    /// A personal, project or group access token (`read_api`; `api` for write-back), sent
    /// as `Authorization: Bearer`.
    pub token: SecretRef,
    /// Full project paths (`group/sub/project`).
    pub projects: Vec<String>,
    /// Full group paths: every project of the group.
    pub groups: Vec<String>,
    /// Whether a group's subgroups' projects count too (GitLab's group listings include
    /// them; without it, only the group's own projects are kept).
    pub include_subgroups: bool,
    /// Items per page (GitLab allows up to 100).
    pub per_page: u32,
    /// When `RateLimit-Remaining` falls to this, wait for `RateLimit-Reset`.
    pub rate_limit_floor: u64,
}

impl GitLabSettings {
    /// `{url}/api/v4` with these path segments appended (each escaped, so a project path
    /// becomes one `group%2Fproject` segment).
    pub fn api(&self, segments: &[&str]) -> Result<Url, SourceError> {
        let mut u = self.url.clone();
        {
            let mut path = u
                .path_segments_mut()
                .map_err(|_| SourceError::Other(format!("bad GitLab URL {}", self.url)))?;
            path.pop_if_empty().extend(["api", "v4"]).extend(segments);
        }
        Ok(u)
    }

    /// Whether items of the project at `path` are in scope: a configured project, or a
    /// project of a configured group (directly, or in a subgroup with `include_subgroups`).
    pub fn in_scope(&self, path: &str) -> bool {
        self.projects.iter().any(|p| p == path)
            || self.groups.iter().any(|g| self.in_group(g, path))
    }

    /// Whether the project at `path` belongs to `group` as configured.
    pub fn in_group(&self, group: &str, path: &str) -> bool {
        path.strip_prefix(group)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| !rest.is_empty() && (self.include_subgroups || !rest.contains('/')))
    }
}

/// GitLab's `add_labels`/`remove_labels` are comma-separated lists.
fn writable_label(label: &str) -> Result<(), String> {
    if label.contains(',') {
        Err("GitLab labels cannot contain commas".into())
    } else {
        Ok(())
    }
}

impl SourceKind for GitLabSettings {
    const KIND: &'static str = "gitlab";
    const CAPABILITIES: Capabilities = Capabilities {
        title: "GitLab",
        always_full: false,
        webhook: Some(WebhookAuth::SecretToken {
            header: "x-gitlab-token",
            missing: "missing X-Gitlab-Token (the webhook's secret token)",
        }),
        writeback: Some(writable_label),
        metrics: false,
        project_selector: "project",
        list_keys: &["projects", "groups"],
    };

    fn read(s: &mut Section, sink: &mut Sink, base: &Path) -> Option<Self> {
        read_gitlab(s, sink, base)
    }

    fn build(
        &self,
        name: &str,
        http: HttpSettings,
        _cells: Vec<CellRef>,
    ) -> Result<Arc<dyn ItemSource>, SourceError> {
        Ok(Arc::new(super::GitLabSource::new(name, self.clone(), http)?))
    }
}

/// A full path: segments of letters, digits, `_`, `-` and `.`, separated by `/`.
fn is_path(p: &str, min_segments: usize) -> bool {
    let segments: Vec<&str> = p.split('/').collect();
    segments.len() >= min_segments
        && segments.iter().all(|s| {
            !s.is_empty()
                && s
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
}

fn paths(
    s: &mut Section,
    sink: &mut Sink,
    key: &'static str,
    min_segments: usize,
    expected: &str,
) -> Option<Vec<String>> {
    let list = s.string_list(sink, key)?;
    let bad: Vec<&String> = list.iter().filter(|p| !is_path(p, min_segments)).collect();
    if bad.is_empty() {
        Some(list)
    } else {
        sink.report(&s.key(key), format!("expected {expected}, found {bad:?}"));
        None
    }
}

fn read_gitlab(s: &mut Section, sink: &mut Sink, base: &Path) -> Option<GitLabSettings> {
    let raw = s
        .string(sink, "url")
        .unwrap_or_else(|| "https://gitlab.com".to_string());
    let url = match Url::parse(raw.trim_end_matches('/')) {
        Ok(u)
            if (u.scheme() == "http" || u.scheme() == "https")
                && u.host().is_some()
                && u.query().is_none()
                && !u.path().trim_end_matches('/').ends_with("/api/v4") =>
        {
            Some(u)
        }
        _ => {
            sink.report(&s.key("url"), format!("expected the instance's http(s) URL like \"https://gitlab.com\" or \"https://git.acme.com/gitlab\" (without /api/v4), found \"{raw}\""));
            None
        }
    };
    let token = secret(s, sink, "token_env", "token_file", base, true);
    // Absent is empty; a wrong value is reported by `paths` (and leaves the scope unknown).
    let projects = if s.has("projects") {
        paths(s, sink, "projects", 2, "full project paths like \"group/sub/project\"")
    } else {
        Some(Vec::new())
    };
    let groups = if s.has("groups") {
        paths(s, sink, "groups", 1, "group paths like \"acme\" or \"acme/platform\"")
    } else {
        Some(Vec::new())
    };
    let scope = match (projects, groups) {
        (Some(p), Some(g)) if p.is_empty() && g.is_empty() => {
            sink.report(
                &s.key("projects"),
                "is required unless groups is set: a list of full project paths like \"group/sub/project\"",
            );
            None
        }
        (Some(p), Some(g)) => Some((p, g)),
        _ => None,
    };
    let include_subgroups = s.boolean(sink, "include_subgroups").unwrap_or(true);
    let per_page = s.integer(sink, "per_page", 1, 100).unwrap_or(100) as u32;
    let rate_limit_floor = s
        .integer(sink, "rate_limit_floor", 0, 1_000_000)
        .unwrap_or(10) as u64;
    let (projects, groups) = scope?;
    Some(GitLabSettings {
        url: url?,
        token: token?,
        projects,
        groups,
        include_subgroups,
        per_page,
        rate_limit_floor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> GitLabSettings {
        GitLabSettings {
            url: Url::parse(url).expect("url"),
            token: SecretRef::value("t"),
            projects: vec!["acme/platform/web".into()],
            groups: vec!["acme/data".into()],
            include_subgroups: false,
            per_page: 100,
            rate_limit_floor: 10,
        }
    }

    #[test]
    fn api_urls_escape_the_project_path_and_keep_a_sub_path() {
        let s = settings("https://gitlab.com");
        assert_eq!(
            s.api(&["projects", "acme/platform/web", "issues"])
                .expect("url")
                .as_str(),
            "https://gitlab.com/api/v4/projects/acme%2Fplatform%2Fweb/issues"
        );
        let s = settings("https://git.acme.com/gitlab");
        assert_eq!(
            s.api(&["groups", "acme", "merge_requests"])
                .expect("url")
                .as_str(),
            "https://git.acme.com/gitlab/api/v4/groups/acme/merge_requests"
        );
    }

    #[test]
    fn scope_by_project_and_group() {
        let mut s = settings("https://gitlab.com");
        assert!(s.in_scope("acme/platform/web"));
        assert!(s.in_scope("acme/data/warehouse"));
        assert!(!s.in_scope("acme/data/sub/etl"), "a subgroup's project");
        assert!(!s.in_scope("acme/database/x"), "a group path is a whole segment");
        assert!(!s.in_scope("acme/data"));
        s.include_subgroups = true;
        assert!(s.in_scope("acme/data/sub/etl"));
    }

    #[test]
    fn labels_with_commas_cannot_be_written() {
        assert!(writable_label("no kr").is_ok());
        assert!(writable_label("team::pay").is_ok());
        assert!(writable_label("a,b").is_err());
    }
}
