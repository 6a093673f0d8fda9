//! `[[notify]]` (SPEC.md "Notifications and write-back"): where okrsync sends what changed,
//! read and validated with the rest of the config.

use std::collections::BTreeSet;
use std::path::Path;

use secrecy::ExposeSecret;

use super::reader::{secret, Section, Sink};
use super::SecretRef;

/// The events a notifier may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// A KR's status changed (from, to).
    KrStatus,
    /// A KR gained a flag.
    Flag,
    /// A source failed three steps in a row; again when it recovers.
    SourceFailing,
    /// A project's unaligned share crossed the notifier's `unaligned_share` upwards.
    Unaligned,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::KrStatus,
        EventKind::Flag,
        EventKind::SourceFailing,
        EventKind::Unaligned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::KrStatus => "kr_status",
            EventKind::Flag => "flag",
            EventKind::SourceFailing => "source_failing",
            EventKind::Unaligned => "unaligned",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// How a notifier delivers.
#[derive(Debug, Clone)]
pub enum NotifierKind {
    /// The SPEC's JSON document, POSTed to a URL; signed with `X-Okrsync-Signature-256`
    /// when a secret is set.
    Webhook {
        url: SecretRef,
        secret: Option<SecretRef>,
    },
    /// A Slack incoming webhook: a Block Kit message with a plain `text` fallback.
    Slack { url: SecretRef },
    /// A Microsoft Teams incoming webhook or workflow: an Adaptive Card.
    Teams { url: SecretRef },
    /// Email over SMTP: plain text and HTML; `smtp://user:pass@host:587` (STARTTLS
    /// required), `smtps://…:465` (implicit TLS), `?tls=none` for a relay on the same host.
    Email {
        to: Vec<String>,
        from: String,
        smtp_url: SecretRef,
        /// PEM roots trusted besides the system's (an internal CA's relay).
        ca_file: Option<std::path::PathBuf>,
    },
}

impl NotifierKind {
    /// The URL messages are sent to (a secret): the webhook's, or the SMTP server's.
    pub fn url(&self) -> &SecretRef {
        match self {
            NotifierKind::Webhook { url, .. }
            | NotifierKind::Slack { url }
            | NotifierKind::Teams { url } => url,
            NotifierKind::Email { smtp_url, .. } => smtp_url,
        }
    }
}

/// When a notifier's weekly digest goes out (`digest = "mon 09:00"`, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestAt {
    pub weekday: chrono::Weekday,
    pub hour: u32,
    pub minute: u32,
}

impl DigestAt {
    /// Reads `"mon 09:00"`: a weekday (its first three letters or the whole name, any
    /// case) and a 24-hour time.
    pub fn parse(text: &str) -> Result<DigestAt, String> {
        let bad =
            || format!("expected a weekday and a UTC time like \"mon 09:00\", found \"{text}\"");
        let mut parts = text.split_whitespace();
        let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let weekday: chrono::Weekday = day.parse().map_err(|_| bad())?;
        let (h, m) = time.split_once(':').ok_or_else(bad)?;
        let (hour, minute): (u32, u32) =
            (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if hour > 23 || minute > 59 || m.len() != 2 {
            return Err(bad());
        }
        Ok(DigestAt {
            weekday,
            hour,
            minute,
        })
    }

    /// The latest scheduled time at or before `now`.
    pub fn last_before(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        use chrono::{Datelike, TimeZone};
        let days_back =
            (7 + now.weekday().num_days_from_monday() - self.weekday.num_days_from_monday()) % 7;
        let day = now.date_naive() - chrono::Duration::days(i64::from(days_back));
        let at = chrono::Utc.from_utc_datetime(
            &day.and_hms_opt(self.hour, self.minute, 0)
                .unwrap_or_default(),
        );
        if at > now {
            at - chrono::Duration::days(7)
        } else {
            at
        }
    }
}

impl std::fmt::Display for DigestAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:02}:{:02}",
            self.weekday.to_string().to_lowercase(),
            self.hour,
            self.minute
        )
    }
}

/// One `[[notify]]` entry, validated.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    pub id: String,
    /// Where it is written (`notify[0]`), for messages.
    pub key: String,
    pub kind: NotifierKind,
    /// These objectives and their children; empty: all.
    pub objectives: Vec<String>,
    pub events: BTreeSet<EventKind>,
    /// `unaligned`: the share a project crosses upwards (0.3).
    pub unaligned_share: f64,
    /// The weekly digest's time, when it has one.
    pub digest: Option<DigestAt>,
}

/// The kinds SPEC.md names; those not delivered yet are refused by `check` in words.
const KINDS: &[&str] = &["slack", "teams", "webhook", "email"];

/// Reads every `[[notify]]` table. Objective ids are checked once the OKRs are loaded
/// ([`check_objectives`]).
pub(crate) fn read(top: &mut Section, sink: &mut Sink, base: &Path) -> Vec<NotifierSettings> {
    let mut out: Vec<NotifierSettings> = Vec::new();
    for (key, table) in top.tables(sink, "notify") {
        let mut s = Section::new(key.clone(), table);
        let key = s.key("objectives");
        let id = s.required_string(sink, "id");
        if let Some(id) = &id {
            if out.iter().any(|n| &n.id == id) {
                sink.report(&s.key("id"), format!("notifier \"{id}\" is defined twice"));
            }
        }
        let kind = match s.raw("kind") {
            None => {
                sink.report(
                    &s.key("kind"),
                    format!("is required: one of {}", KINDS.join(", ")),
                );
                None
            }
            Some(_) => s.choice(sink, "kind", KINDS),
        };
        let objectives = s.string_list(sink, "objectives").unwrap_or_default();
        let events = match s.string_list(sink, "events") {
            None => EventKind::ALL.into_iter().collect(),
            Some(list) => {
                let mut set = BTreeSet::new();
                for e in list {
                    match EventKind::parse(&e) {
                        Some(k) => {
                            set.insert(k);
                        }
                        None => sink.report(
                            &s.key("events"),
                            format!(
                                "unknown event \"{e}\"; expected {}",
                                EventKind::ALL.map(EventKind::as_str).join(", ")
                            ),
                        ),
                    }
                }
                set
            }
        };
        let unaligned_share = s.number(sink, "unaligned_share").unwrap_or(0.3);
        if !(0.0..=1.0).contains(&unaligned_share) {
            sink.report(
                &s.key("unaligned_share"),
                format!("must lie in [0, 1], found {unaligned_share}"),
            );
        }
        let digest = s.string(sink, "digest").and_then(|d| {
            DigestAt::parse(&d)
                .map_err(|e| sink.report(&s.key("digest"), e))
                .ok()
        });
        let kind = match kind.as_deref() {
            Some("webhook") => {
                let url = secret(&mut s, sink, "url_env", "url_file", base, true);
                let signing = secret(&mut s, sink, "secret_env", "secret_file", base, false);
                url.map(|url| NotifierKind::Webhook {
                    url,
                    secret: signing,
                })
            }
            Some("slack") => secret(&mut s, sink, "url_env", "url_file", base, true)
                .map(|url| NotifierKind::Slack { url }),
            Some("teams") => secret(&mut s, sink, "url_env", "url_file", base, true)
                .map(|url| NotifierKind::Teams { url }),
            Some("email") => {
                let to = s.string_list(sink, "to").unwrap_or_default();
                if to.is_empty() {
                    sink.report(&s.key("to"), "is required: the addresses to write to");
                }
                for (i, a) in to.iter().enumerate() {
                    if let Err(e) = a.parse::<lettre::message::Mailbox>() {
                        sink.report(
                            &format!("{}[{i}]", s.key("to")),
                            format!("\"{a}\" is not an email address ({e})"),
                        );
                    }
                }
                let from = s.required_string(sink, "from");
                if let Some(f) = &from {
                    if let Err(e) = f.parse::<lettre::message::Mailbox>() {
                        sink.report(
                            &s.key("from"),
                            format!("\"{f}\" is not an email address ({e})"),
                        );
                    }
                }
                let smtp_url = secret(&mut s, sink, "smtp_url_env", "smtp_url_file", base, true);
                if let Some(Ok(url)) = smtp_url.as_ref().map(|u| u.get()) {
                    if let Err(e) = crate::notify::email::SmtpTarget::parse(url.expose_secret()) {
                        sink.report(&s.key("smtp_url_env"), e);
                    }
                }
                let ca_file = s.string(sink, "ca_file").map(|ca| {
                    let path = crate::configfile::secrets::resolve_path(base, &ca);
                    if sink.secrets == super::Secrets::Resolve {
                        if let Err(e) = crate::sources::http::read_ca_file(&path) {
                            sink.report(&s.key("ca_file"), e);
                        }
                    }
                    path
                });
                match (from, smtp_url, to.is_empty()) {
                    (Some(from), Some(smtp_url), false) => Some(NotifierKind::Email {
                        to,
                        from,
                        smtp_url,
                        ca_file,
                    }),
                    _ => None,
                }
            }
            Some(_) => None,
            None => None,
        };
        s.finish(sink);
        if let (Some(id), Some(kind)) = (id, kind) {
            out.push(NotifierSettings {
                id,
                key,
                kind,
                objectives,
                events,
                unaligned_share,
                digest,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn digest_times() {
        let d = DigestAt::parse("mon 09:00").expect("parse");
        assert_eq!(d.to_string(), "mon 09:00");
        assert_eq!(
            DigestAt::parse("Friday 17:30").expect("parse").to_string(),
            "fri 17:30"
        );
        for bad in [
            "mon",
            "mon 9",
            "mon 24:00",
            "mon 09:60",
            "someday 09:00",
            "mon 09:00 x",
            "mon 9:0",
        ] {
            assert!(DigestAt::parse(bad).is_err(), "{bad}");
        }
        // Wednesday 2026-12-02 21:00: the last Monday 09:00 is 2026-11-30.
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 2, 21, 0, 0).unwrap();
        assert_eq!(
            d.last_before(now),
            chrono::Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
        );
        // Monday 08:59: the Monday before.
        let early = chrono::Utc
            .with_ymd_and_hms(2026, 11, 30, 8, 59, 0)
            .unwrap();
        assert_eq!(
            d.last_before(early),
            chrono::Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
        );
        // Exactly then: now.
        let exact = chrono::Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
        assert_eq!(d.last_before(exact), exact);
    }
}
