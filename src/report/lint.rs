//! `okrsync lint`, `GET /api/v1/lint` and the dashboard's lint page: findings about the
//! rules that no single KR's number shows (SPEC.md "Evidence and rules as code").
//!
//! - `double_count`: an item counted toward two KRs of one objective;
//! - `dead_rule`: a rule that matches no stored item;
//! - `kr_without_rule`: a KR measured by items (neither metric nor manual) that no rule names;
//! - `shadowed_rule`: every item a rule matches is exempt by another (exempt) rule.
//!
//! The store keeps the rule that decided each item's KR and the first exempt rule that
//! took it (see `store::lint`), so "matches" reads "is the rule recorded for": a rule that
//! only repeats earlier rules is dead too — removing it changes nothing. `check` reports
//! what needs no store ([`without_store`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

use serde::Serialize;
use utoipa::ToSchema;

use super::{natural_key, ReportError};
use crate::settings::Settings;
use crate::store::Store;

/// At most this many item keys per finding.
pub const ITEMS_SHOWN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LintKind {
    DoubleCount,
    DeadRule,
    KrWithoutRule,
    ShadowedRule,
}

impl LintKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LintKind::DoubleCount => "double_count",
            LintKind::DeadRule => "dead_rule",
            LintKind::KrWithoutRule => "kr_without_rule",
            LintKind::ShadowedRule => "shadowed_rule",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct Finding {
    pub kind: LintKind,
    /// The KR concerned (for `double_count`, the first of the two in config order).
    pub kr: Option<String>,
    /// The rule concerned (for `double_count`, the rule when one maps both KRs).
    pub rule: Option<String>,
    /// Keys of the items concerned, at most 20.
    pub items: Vec<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
pub struct LintDoc {
    /// By kind (double_count, dead_rule, kr_without_rule, shadowed_rule), then config order.
    pub findings: Vec<Finding>,
}

fn quoted(ids: &[&str]) -> String {
    let q: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        n => format!("{} and {}", q[..n - 1].join(", "), q[n - 1]),
    }
}

/// What `check` can say from the OKR files alone: KRs no rule names, and rules that map
/// every item they match to two or more KRs of one objective.
pub fn without_store(settings: &Settings) -> Vec<Finding> {
    let mut out = kr_without_rule(settings);
    let objective_of = objective_of(settings);
    for rule in settings.rules.rules() {
        let mut by_objective: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for kr in &rule.krs {
            if let Some(o) = objective_of.get(kr.as_str()) {
                let krs = by_objective.entry(o).or_default();
                if !krs.contains(&kr.as_str()) {
                    krs.push(kr);
                }
            }
        }
        for (objective, krs) in by_objective {
            if krs.len() < 2 {
                continue;
            }
            out.push(Finding {
                kind: LintKind::DoubleCount,
                kr: Some(krs[0].to_string()),
                rule: Some(rule.id.to_string()),
                items: Vec::new(),
                message: format!(
                    "rule \"{}\" ({}) maps every item it matches to {} of objective \"{objective}\": each counts toward the objective more than once",
                    rule.id,
                    rule.file,
                    quoted(&krs)
                ),
            });
        }
    }
    out.sort_by_key(|f| f.kind);
    out
}

fn objective_of(settings: &Settings) -> HashMap<&str, &str> {
    settings
        .objectives
        .iter()
        .flat_map(|o| {
            o.key_results
                .iter()
                .map(move |k| (k.id.as_str(), o.id.as_str()))
        })
        .collect()
}

fn kr_without_rule(settings: &Settings) -> Vec<Finding> {
    let named: BTreeSet<&str> = settings
        .rules
        .rules()
        .iter()
        .flat_map(|r| r.krs.iter().map(crate::model::KrId::as_str))
        .collect();
    settings
        .objectives
        .iter()
        .flat_map(|o| o.key_results.iter().map(move |k| (o, k)))
        .filter(|(_, k)| k.measure.uses_items() && !named.contains(k.id.as_str()))
        .map(|(o, k)| Finding {
            kind: LintKind::KrWithoutRule,
            kr: Some(k.id.to_string()),
            rule: None,
            items: Vec::new(),
            message: format!(
                "key result \"{}\" ({}) is measured as {} but no rule names it: no item can move it",
                k.id,
                o.file,
                k.measure.as_str()
            ),
        })
        .collect()
}

fn sorted_keys(mut keys: Vec<String>) -> Vec<String> {
    keys.sort_by_key(|k| natural_key(k));
    keys.truncate(ITEMS_SHOWN);
    keys
}

/// `okrsync lint`: every finding, from the stored matches and the OKR files.
pub async fn lint(store: &Store, settings: &Settings) -> Result<LintDoc, ReportError> {
    let limit = ITEMS_SHOWN as i64;
    let mut findings = Vec::new();
    let position: HashMap<&str, usize> = settings
        .objectives
        .iter()
        .flat_map(|o| &o.key_results)
        .enumerate()
        .map(|(i, k)| (k.id.as_str(), i))
        .collect();

    // double_count: pairs of KRs of one objective that share items.
    let mut pairs: BTreeMap<(usize, usize), (String, i64, BTreeSet<String>)> = BTreeMap::new();
    for s in store.shared_items().await? {
        let (Some(&pa), Some(&pb)) = (position.get(s.kr_a.as_str()), position.get(s.kr_b.as_str()))
        else {
            continue;
        };
        let (first, second) = if pa < pb { (pa, pb) } else { (pb, pa) };
        let entry = pairs
            .entry((first, second))
            .or_insert_with(|| (s.objective_id.clone(), 0, BTreeSet::new()));
        entry.1 += s.items;
        entry.2.insert(s.rule_a);
        entry.2.insert(s.rule_b);
    }
    let kr_at: Vec<&str> = {
        let mut v: Vec<(&str, usize)> = position.iter().map(|(k, p)| (*k, *p)).collect();
        v.sort_by_key(|(_, p)| *p);
        v.into_iter().map(|(k, _)| k).collect()
    };
    for ((a, b), (objective, n, rules)) in pairs {
        let (kr_a, kr_b) = (kr_at[a], kr_at[b]);
        let keys = store.shared_item_keys(kr_a, kr_b, limit).await?;
        let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
        let how = if rules.len() == 1 {
            format!("rule {} maps both", quoted(&rules))
        } else {
            format!("through rules {}", quoted(&rules))
        };
        findings.push(Finding {
            kind: LintKind::DoubleCount,
            kr: Some(kr_a.to_string()),
            rule: (rules.len() == 1).then(|| rules[0].to_string()),
            items: sorted_keys(keys),
            message: format!(
                "{n} item{} count{} toward both \"{kr_a}\" and \"{kr_b}\" of objective \"{objective}\" ({how})",
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "" },
            ),
        });
    }

    // dead_rule and shadowed_rule, from what each rule is recorded for.
    let uses: HashMap<String, (i64, i64)> = store
        .rule_uses()
        .await?
        .into_iter()
        .map(|u| (u.rule_id, (u.items, u.exempt_items)))
        .collect();
    let exempts: HashMap<String, i64> = store.exempt_uses().await?.into_iter().collect();
    let mut shadowed = Vec::new();
    for rule in settings.rules.rules() {
        let krs: Vec<&str> = rule.krs.iter().map(crate::model::KrId::as_str).collect();
        let single_kr = (krs.len() == 1).then(|| krs[0].to_string());
        if rule.exempt {
            if exempts.get(rule.id.as_str()).copied().unwrap_or(0) == 0 {
                findings.push(Finding {
                    kind: LintKind::DeadRule,
                    kr: None,
                    rule: Some(rule.id.to_string()),
                    items: Vec::new(),
                    message: format!(
                        "exempt rule \"{}\" ({}) matches no stored item (or only items an earlier exempt rule already exempts)",
                        rule.id, rule.file
                    ),
                });
            }
            continue;
        }
        match uses.get(rule.id.as_str()).copied() {
            None | Some((0, _)) => findings.push(Finding {
                kind: LintKind::DeadRule,
                kr: single_kr,
                rule: Some(rule.id.to_string()),
                items: Vec::new(),
                message: format!(
                    "rule \"{}\" ({}) matches no stored item (or only items earlier rules already map to {})",
                    rule.id,
                    rule.file,
                    quoted(&krs)
                ),
            }),
            Some((n, exempt)) if exempt == n => {
                let by = store.exempt_rules_over(&rule.id).await?;
                let by: Vec<&str> = by.iter().map(String::as_str).collect();
                shadowed.push(Finding {
                    kind: LintKind::ShadowedRule,
                    kr: single_kr,
                    rule: Some(rule.id.to_string()),
                    items: sorted_keys(store.rule_item_keys(&rule.id, limit).await?),
                    message: format!(
                        "every item rule \"{}\" ({}) maps to {} ({n}) is exempt by {}: work marked as moving no key result moves one",
                        rule.id,
                        rule.file,
                        quoted(&krs),
                        if by.len() == 1 {
                            format!("rule {}", quoted(&by))
                        } else {
                            format!("rules {}", quoted(&by))
                        }
                    ),
                });
            }
            Some(_) => {}
        }
    }
    findings.extend(kr_without_rule(settings));
    findings.extend(shadowed);
    findings.sort_by_key(|f| f.kind);
    Ok(LintDoc { findings })
}

/// The findings for a terminal: one line each, the items concerned below.
pub fn render(doc: &LintDoc) -> String {
    let mut out = String::new();
    if doc.findings.is_empty() {
        out.push_str("No findings: every rule moves or exempts stored items, no item counts twice in an objective, every key result has a rule.\n");
        return out;
    }
    for f in &doc.findings {
        let _ = writeln!(out, "{}: {}", f.kind.as_str(), f.message);
        if !f.items.is_empty() {
            let _ = writeln!(out, "    items: {}", f.items.join(", "));
        }
    }
    let n = doc.findings.len();
    let _ = writeln!(out, "{n} finding{}", if n == 1 { "" } else { "s" });
    out
}
