//! How okrsync authenticates to GitHub: a token, or a GitHub App (its private key signs a
//! short-lived RS256 JWT, exchanged for an installation token that is cached and renewed
//! five minutes before it expires).

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::settings::SecretRef;
use crate::sources::http::{Auth, HttpClient};
use crate::sources::SourceError;

#[derive(Debug, Clone)]
pub enum GitHubAuth {
    /// A personal access token (classic or fine-grained) or any other bearer token.
    Token(SecretRef),
    /// A GitHub App installation.
    App {
        app_id: u64,
        installation_id: u64,
        /// The app's private key, PEM.
        private_key: SecretRef,
    },
}

#[derive(Serialize, Deserialize)]
pub struct AppClaims {
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

#[derive(Deserialize)]
struct InstallationToken {
    token: String,
    expires_at: DateTime<Utc>,
}

/// Hands out the `Auth` for the next request.
pub(super) struct Credentials {
    auth: GitHubAuth,
    cached: tokio::sync::Mutex<Option<(SecretString, DateTime<Utc>)>>,
}

/// Renew an installation token this long before it expires.
const RENEW_BEFORE: i64 = 5 * 60;

impl Credentials {
    pub fn new(auth: GitHubAuth) -> Credentials {
        Credentials {
            auth,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn current(&self, http: &HttpClient, api_url: &Url) -> Result<Auth, SourceError> {
        let (app_id, installation_id, key) = match &self.auth {
            GitHubAuth::Token(t) => {
                return t
                    .get()
                    .map(|t| Auth::Bearer(t.clone()))
                    .map_err(|p| SourceError::Other(p.to_string()))
            }
            GitHubAuth::App {
                app_id,
                installation_id,
                private_key,
            } => (*app_id, *installation_id, private_key),
        };
        let mut cached = self.cached.lock().await;
        let now = Utc::now();
        if let Some((token, expires)) = cached.as_ref() {
            if *expires - Duration::seconds(RENEW_BEFORE) > now {
                return Ok(Auth::Bearer(token.clone()));
            }
        }
        let key = key.get().map_err(|p| SourceError::Other(p.to_string()))?;
        let jwt = app_jwt(app_id, key, now)?;
        let base = api_url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!(
            "{base}/app/installations/{installation_id}/access_tokens"
        ))
        .map_err(|e| SourceError::Other(format!("bad GitHub URL: {e}")))?;
        let resp = http
            .send(
                Method::POST,
                url.clone(),
                &Auth::Bearer(SecretString::from(jwt)),
                &[("accept", "application/vnd.github+json".to_string())],
            )
            .await?;
        let answer: InstallationToken =
            serde_json::from_slice(&resp.body).map_err(|e| SourceError::Parse {
                url: url.to_string(),
                message: format!("not an installation token: {e}"),
            })?;
        tracing::info!(app_id, installation_id, expires_at = %answer.expires_at, "GitHub App installation token obtained");
        let token = SecretString::from(answer.token);
        *cached = Some((token.clone(), answer.expires_at));
        Ok(Auth::Bearer(token))
    }
}

/// The app's JWT: issued a minute ago (clock drift), valid nine minutes (GitHub allows ten).
pub fn app_jwt(
    app_id: u64,
    private_key: &SecretString,
    now: DateTime<Utc>,
) -> Result<String, SourceError> {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose_secret().as_bytes())
        .map_err(|e| {
            SourceError::Other(format!(
                "the GitHub App private key is not an RSA PEM key: {e}"
            ))
        })?;
    let claims = AppClaims {
        iat: (now - Duration::seconds(60)).timestamp(),
        exp: (now + Duration::seconds(9 * 60)).timestamp(),
        iss: app_id.to_string(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|e| SourceError::Other(format!("cannot sign the GitHub App JWT: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_jwts_verify_with_the_public_key() {
        let dir = format!("{}/tests/fixtures/github-app", env!("CARGO_MANIFEST_DIR"));
        let private = std::fs::read_to_string(format!("{dir}/test-app-key.pem")).expect("key");
        let public = std::fs::read_to_string(format!("{dir}/test-app-key.pub.pem")).expect("key");
        let now = Utc::now();
        let jwt = app_jwt(4242, &SecretString::from(private), now).expect("jwt");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_issuer(&["4242"]);
        let data = jsonwebtoken::decode::<AppClaims>(
            &jwt,
            &jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).expect("pub"),
            &v,
        )
        .expect("valid");
        assert_eq!(data.claims.exp - data.claims.iat, 600);
        assert!(app_jwt(1, &SecretString::from("not a key".to_string()), now).is_err());
    }
}
