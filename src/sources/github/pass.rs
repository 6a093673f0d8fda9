//! One pass over a GitHub source: the project boards first (their field values), then each
//! repository's issues page by page, then the issues whose project fields changed although
//! the issue itself did not (a field edit does not touch the issue's `updated_at`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::projects::{self, ProjectItem};
use super::{Cursor, GitHubSource};
use crate::model::Item;
use crate::sources::SourceError;

pub(super) enum Phase {
    Projects { index: usize, after: Option<String> },
    Repos(Cursor),
    Extra(Vec<String>),
}

pub(super) struct Pass {
    pub phase: Phase,
    pub projects: HashMap<String, ProjectItem>,
    pub emitted: HashSet<String>,
}

impl Pass {
    pub fn new() -> Pass {
        Pass {
            phase: Phase::Projects {
                index: 0,
                after: None,
            },
            projects: HashMap::new(),
            emitted: HashSet::new(),
        }
    }
}

/// Issues re-read one by one in a batch.
const EXTRA_BATCH: usize = 20;

impl GitHubSource {
    /// One step of a pass: a page of project items (yielding no items yet), a page of a
    /// repository, or a batch of issues re-read because only their project fields changed.
    pub(super) async fn step(
        &self,
        since: Option<DateTime<Utc>>,
        mut pass: Pass,
    ) -> Result<Option<(Vec<Item>, Pass)>, SourceError> {
        match std::mem::replace(&mut pass.phase, Phase::Extra(Vec::new())) {
            Phase::Projects { index, after } => {
                let Some(project) = self.settings.projects.get(index).cloned() else {
                    pass.phase = Phase::Repos(Cursor {
                        repo: 0,
                        next: None,
                        first: true,
                    });
                    return Ok(Some((Vec::new(), pass)));
                };
                let body = serde_json::json!({
                    "query": projects::QUERY,
                    "variables": {
                        "owner": project.owner,
                        "number": project.number,
                        "first": self.settings.per_page,
                        "after": after,
                    }
                });
                let url = self.settings.graphql_url()?;
                let resp = self
                    .http
                    .post(
                        url.clone(),
                        &self
                            .credentials
                            .current(&self.http, &self.settings.api_url)
                            .await?,
                        &body,
                    )
                    .await?;
                let answer: projects::Answer<'_> = resp.json()?;
                let page =
                    answer
                        .to_page(&project.owner)
                        .map_err(|message| SourceError::Parse {
                            url: format!("{url} (project {}/{})", project.owner, project.number),
                            message,
                        })?;
                for item in page.items {
                    let entry =
                        pass.projects
                            .entry(item.key.clone())
                            .or_insert_with(|| ProjectItem {
                                key: item.key.clone(),
                                updated: None,
                                fields: Default::default(),
                            });
                    entry.updated = entry.updated.max(item.updated);
                    entry.fields.extend(item.fields);
                }
                pass.phase = match page.next {
                    Some(after) => Phase::Projects {
                        index,
                        after: Some(after),
                    },
                    None => Phase::Projects {
                        index: index + 1,
                        after: None,
                    },
                };
                Ok(Some((Vec::new(), pass)))
            }
            Phase::Repos(cur) => match self.page(since, cur).await? {
                Some((mut items, next)) => {
                    for item in &mut items {
                        self.enrich(item, &pass.projects);
                        pass.emitted.insert(item.key.clone());
                    }
                    pass.phase = Phase::Repos(next);
                    Ok(Some((items, pass)))
                }
                None => {
                    let mut extra: Vec<String> = pass
                        .projects
                        .values()
                        .filter(|p| !pass.emitted.contains(&p.key))
                        .filter(|p| matches!((since, p.updated), (Some(s), Some(u)) if u >= s))
                        .filter(|p| {
                            p.key
                                .split_once('#')
                                .is_some_and(|(r, _)| self.settings.repos.iter().any(|x| x == r))
                        })
                        .map(|p| p.key.clone())
                        .collect();
                    extra.sort();
                    pass.phase = Phase::Extra(extra);
                    Ok(Some((Vec::new(), pass)))
                }
            },
            Phase::Extra(mut keys) => {
                if keys.is_empty() {
                    return Ok(None);
                }
                let batch: Vec<String> = keys.drain(..keys.len().min(EXTRA_BATCH)).collect();
                let mut items = Vec::new();
                for key in batch {
                    let Some((repo, number)) = key.split_once('#') else {
                        continue;
                    };
                    // An issue deleted while still on the board is simply skipped.
                    if let Some(mut item) = self.fetch_issue(repo, number).await? {
                        self.enrich(&mut item, &pass.projects);
                        pass.emitted.insert(item.key.clone());
                        items.push(item);
                    }
                }
                pass.phase = Phase::Extra(keys);
                Ok(Some((items, pass)))
            }
        }
    }

    /// Adds an item's project fields; its `updated` becomes the later of the issue's and
    /// the project item's, so a field change is a change.
    fn enrich(&self, item: &mut Item, projects: &HashMap<String, ProjectItem>) {
        let Some(p) = projects.get(&item.key) else {
            return;
        };
        for (k, v) in &p.fields {
            item.fields.insert(k.clone(), v.clone());
        }
        if let Some(u) = p.updated {
            item.updated = item.updated.max(u);
        }
        if let Some(f) = &self.settings.estimate_field {
            let n = p.fields.get(f).and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            });
            if n.is_some() {
                item.estimate = n;
            }
        }
    }
}
