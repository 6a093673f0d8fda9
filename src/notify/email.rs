//! Email notifications over SMTP (`kind = "email"`), with lettre on rustls.
//!
//! `smtp_url` (a secret): `smtp://user:pass@host:587` sends after STARTTLS and refuses a
//! server that does not offer it; `smtps://user:pass@host:465` speaks TLS from the first
//! byte; `?tls=none` sends in the clear, for a relay on the same host. One email carries
//! everything due at once (plain text and HTML, every change a link to its page).

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Message;

/// How the SMTP server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    StartTls,
    Implicit,
    None,
}

/// An `smtp_url`, read.
#[derive(Clone)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: Security,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The credentials are a secret.
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl SmtpTarget {
    /// Reads `smtp://[user:pass@]host[:port][?tls=required|none]` or `smtps://…`; the
    /// error never repeats the URL (it may hold a password).
    pub fn parse(text: &str) -> Result<SmtpTarget, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| {
            format!("the SMTP URL cannot be read ({e}); expected smtp://user:pass@host:587")
        })?;
        let (mut security, default_port) = match url.scheme() {
            "smtp" => (Security::StartTls, 587),
            "smtps" => (Security::Implicit, 465),
            other => {
                return Err(format!(
                    "the SMTP URL's scheme is \"{other}\"; expected smtp:// (STARTTLS) or smtps:// (TLS)"
                ))
            }
        };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "required") => {}
                ("tls", "none") if security == Security::StartTls => security = Security::None,
                _ => {
                    return Err(format!(
                        "the SMTP URL has an unknown parameter {k}={v}; only tls=required or (with smtp://) tls=none"
                    ))
                }
            }
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the SMTP URL names no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let credentials = (!url.username().is_empty()).then(|| {
            (
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        Ok(SmtpTarget {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }

    fn transport(
        &self,
        ca_file: Option<&std::path::Path>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = || {
            let mut builder = TlsParameters::builder(self.host.clone());
            if let Some(path) = ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    format!("ca_file {} holds no PEM certificate: {e}", path.display())
                })?;
                builder = builder.add_root_certificate(cert);
            }
            builder
                .build_rustls()
                .map_err(|e| format!("cannot set up TLS for {}: {e}", self.host))
        };
        let tls = match self.security {
            Security::StartTls => Tls::Required(tls()?),
            Security::Implicit => Tls::Wrapper(tls()?),
            Security::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(20)));
        if let Some((user, pass)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
        }
        Ok(builder.build())
    }
}

/// What a send came to.
pub enum Sent {
    Ok,
    /// Worth trying again later (a 4xx reply, a connection or TLS failure).
    Transient(String),
    /// The server refused it for good (a 5xx reply, a bad address).
    Permanent(String),
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The email for these messages: subject, plain text, HTML.
pub fn compose(messages: &[Message]) -> (String, String, String) {
    let digest = messages.len() == 1 && messages[0].event == "digest";
    let subject = if digest {
        "okrsync: weekly digest".to_string()
    } else if messages.len() == 1 {
        format!(
            "okrsync: {}",
            messages[0].message.lines().next().unwrap_or("")
        )
    } else {
        format!("okrsync: {} changes", messages.len())
    };
    let mut text = String::new();
    let mut html =
        String::from("<!DOCTYPE html><html><body style=\"font-family: sans-serif\"><ul>");
    for m in messages {
        text.push_str(&format!("{}\n{}\n\n", m.message, m.url));
        let body = escape(&m.message).replace('\n', "<br>");
        html.push_str(&format!(
            "<li><p>{body}</p><p><a href=\"{}\">{}</a></p></li>",
            escape(&m.url),
            escape(&m.url)
        ));
    }
    html.push_str("</ul></body></html>");
    (subject, text, html)
}

/// Sends one email to `to` from `from` for these messages.
pub async fn send(
    target: &SmtpTarget,
    ca_file: Option<&std::path::Path>,
    from: &str,
    to: &[String],
    messages: &[Message],
) -> Sent {
    let (subject, text, html) = compose(messages);
    let mut builder = lettre::Message::builder().subject(subject);
    match from.parse::<Mailbox>() {
        Ok(f) => builder = builder.from(f),
        Err(e) => return Sent::Permanent(format!("from: {e}")),
    }
    for t in to {
        match t.parse::<Mailbox>() {
            Ok(m) => builder = builder.to(m),
            Err(e) => return Sent::Permanent(format!("to {t}: {e}")),
        }
    }
    let email = match builder.multipart(MultiPart::alternative_plain_html(text, html)) {
        Ok(e) => e,
        Err(e) => return Sent::Permanent(format!("cannot write the email: {e}")),
    };
    let transport = match target.transport(ca_file) {
        Ok(t) => t,
        Err(e) => return Sent::Transient(e),
    };
    match transport.send(email).await {
        Ok(_) => Sent::Ok,
        Err(e) if e.is_permanent() => {
            Sent::Permanent(format!("the SMTP server refused the email: {e}"))
        }
        Err(e) => Sent::Transient(format!("the email was not sent: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let t = SmtpTarget::parse("smtp://bot%40acme.com:p%2Bss@mail.acme.com:587").expect("url");
        assert_eq!(
            (t.host.as_str(), t.port, t.security),
            ("mail.acme.com", 587, Security::StartTls)
        );
        assert_eq!(
            t.credentials,
            Some(("bot@acme.com".to_string(), "p+ss".to_string()))
        );
        let t = SmtpTarget::parse("smtps://mail.acme.com").expect("url");
        assert_eq!(
            (t.port, t.security, t.credentials),
            (465, Security::Implicit, None)
        );
        let t = SmtpTarget::parse("smtp://127.0.0.1:2525?tls=none").expect("url");
        assert_eq!((t.port, t.security), (2525, Security::None));
        for bad in [
            "http://x",
            "smtp://",
            "smtps://h?tls=none",
            "smtp://h?x=1",
            "not a url",
        ] {
            let e = SmtpTarget::parse(bad).expect_err(bad);
            assert!(!e.contains("p%2Bss"), "{e}");
        }
        let dbg = format!("{:?}", SmtpTarget::parse("smtp://u:secret@h").expect("url"));
        assert!(!dbg.contains("secret"), "{dbg}");
    }

    #[test]
    fn composed_html_is_escaped() {
        let m = Message::new(
            "kr_status",
            "<b>Checkout</b> & more".into(),
            "https://okr.acme.com/kr/a?b=1&c=2".into(),
            chrono::Utc::now(),
        );
        let (subject, text, html) = compose(&[m]);
        assert_eq!(subject, "okrsync: <b>Checkout</b> & more");
        assert!(text.contains("<b>Checkout</b> & more\nhttps://okr.acme.com/kr/a?b=1&c=2"));
        assert!(html.contains("&lt;b&gt;Checkout&lt;/b&gt; &amp; more"));
        assert!(html.contains("href=\"https://okr.acme.com/kr/a?b=1&amp;c=2\""));
    }
}
