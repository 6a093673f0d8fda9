//! How a webhook delivery proves it comes from the upstream, per kind of source
//! ([`Capabilities::webhook`](super::kind::Capabilities)): the server's `POST /hooks/<kind>`
//! asks the kind's [`WebhookAuth`] for the credential of a delivery and checks it against
//! each source's `webhook_secret`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A kind's webhook authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAuth {
    /// An HMAC-SHA256 of the raw body under the secret, `sha256=<hex>` in
    /// `X-Hub-Signature-256` (or `X-Hub-Signature`): GitHub, and Jira's secret webhooks.
    /// `ping`: a header and value marking a delivery that only tests the hook.
    HubSignature {
        ping: Option<(&'static str, &'static str)>,
    },
    /// The secret itself in a header (GitLab's `X-Gitlab-Token`), compared in constant
    /// time. `missing`: the 401's message when the header is absent.
    SecretToken {
        header: &'static str,
        missing: &'static str,
    },
}

impl WebhookAuth {
    /// The credential a delivery carries, or what is missing (the 401's message).
    pub fn credential<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<&'h str, &'static str> {
        match self {
            WebhookAuth::HubSignature { .. } => header("x-hub-signature-256")
                .or_else(|| header("x-hub-signature"))
                .ok_or("missing X-Hub-Signature-256 (sha256=<HMAC of the body>)"),
            WebhookAuth::SecretToken {
                header: name,
                missing,
            } => header(name).ok_or(*missing),
        }
    }

    /// Whether `credential` proves `body` was sent with `secret`.
    pub fn verifies(&self, secret: &[u8], body: &[u8], credential: &str) -> bool {
        match self {
            WebhookAuth::HubSignature { .. } => verify(secret, body, credential),
            WebhookAuth::SecretToken { .. } => same_secret(secret, credential.as_bytes()),
        }
    }

    /// Whether the delivery only tests the hook (answered, nothing queued).
    pub fn is_ping<'h>(&self, header: impl Fn(&str) -> Option<&'h str>) -> bool {
        match self {
            WebhookAuth::HubSignature { ping } => {
                ping.is_some_and(|(name, value)| header(name) == Some(value))
            }
            WebhookAuth::SecretToken { .. } => false,
        }
    }
}

/// Whether `given` is `secret`, in time that depends on their lengths only (an attacker
/// timing the answers learns nothing about how much of a guess was right).
fn same_secret(secret: &[u8], given: &[u8]) -> bool {
    let differing = secret
        .iter()
        .zip(given)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(differing) == 0 && secret.len() == given.len() && !secret.is_empty()
}

/// Whether `signature` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `secret`.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = hex::decode(hex).ok() else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The `X-Hub-Signature-256` value of `body` under `secret`: `sha256=` and the hex HMAC
/// (what a sender computes; [`verify`] checks it).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_documented_signature_verifies() {
        // The example from GitHub's "Validating webhook deliveries" documentation.
        assert!(verify(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ));
        assert!(!verify(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        ));
        assert!(!verify(b"secret", b"body", "sha1=abc"));
        assert!(verify(b"k", b"body", &signature(b"k", b"body")));
        assert!(!verify(b"secret", b"body", "sha256=zz"));
    }

    #[test]
    fn a_ping_is_told_by_its_header() {
        let auth = WebhookAuth::HubSignature {
            ping: Some(("x-github-event", "ping")),
        };
        assert!(auth.is_ping(|h| (h == "x-github-event").then_some("ping")));
        assert!(!auth.is_ping(|h| (h == "x-github-event").then_some("issues")));
        assert!(!WebhookAuth::HubSignature { ping: None }.is_ping(|_| Some("ping")));
        assert_eq!(
            auth.credential(|h| (h == "x-hub-signature").then_some("sha256=00")),
            Ok("sha256=00")
        );
        assert!(auth.credential(|_| None).is_err());
    }

    #[test]
    fn a_secret_token_is_the_secret_itself() {
        let auth = WebhookAuth::SecretToken {
            header: "x-gitlab-token",
            missing: "missing X-Gitlab-Token",
        };
        assert_eq!(
            auth.credential(|h| (h == "x-gitlab-token").then_some("s3cret")),
            Ok("s3cret")
        );
        assert_eq!(auth.credential(|_| None), Err("missing X-Gitlab-Token"));
        assert!(auth.verifies(b"s3cret", b"any body", "s3cret"));
        assert!(!auth.verifies(b"s3cret", b"any body", "s3cre"));
        assert!(!auth.verifies(b"s3cret", b"any body", "s3cret!"));
        assert!(!auth.verifies(b"s3cret", b"any body", "S3cret"));
        assert!(!auth.verifies(b"", b"any body", ""));
        assert!(!auth.is_ping(|_| Some("ping")));
    }
}
