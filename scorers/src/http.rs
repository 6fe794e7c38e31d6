//! A scorer that is an HTTP service of the user's: `POST` of `{"problems": [request, ...]}`,
//! answered by `{"scores": [response, ...]}`, one per problem, in order.
//!
//! HTTPS is verified against the system's root certificates. A bearer token, when configured, is
//! read from an environment variable and sent as `Authorization: Bearer`; it is never stored,
//! and credentials in a URL are never shown in an error, a record or a log.

use serde::Deserialize;

use super::{check_responses, BoxFuture, ItemResult, ScoreRequest, ScoreResponse, Scorer};

/// See the module documentation. HTTP or HTTPS (rustls, the system's root certificates); an
/// optional bearer token; redirects are answers, never followed (a scorer's URL is where its
/// problems go, and nowhere else).
pub struct HttpScorer {
    name: String,
    version: String,
    url: reqwest::Url,
    /// The URL without credentials: what every message shows.
    shown: String,
    token: Option<String>,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    scores: Vec<serde_json::Value>,
}

/// `url` without the user name and password it may hold, for messages.
pub fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

impl HttpScorer {
    /// Checks that `url` is one this scorer can POST to. The message never repeats credentials.
    pub fn check_url(url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            // The text cannot be parsed, so it cannot be cleaned: it is not shown.
            format!("url is not a URL ({e})")
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("url {:?} must be http:// or https://", shown_url(&parsed)));
        }
        Ok(())
    }

    /// A scorer POSTing to `url`, with `Authorization: Bearer TOKEN` when a token is given.
    pub fn new(name: &str, version: &str, url: &str, token: Option<String>) -> Result<Self, String> {
        Self::check_url(url).map_err(|e| format!("scorer {name}: {e}"))?;
        let url = reqwest::Url::parse(url).map_err(|e| format!("scorer {name}: {e}"))?;
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("scorer {name}: {}", e.without_url()))?;
        let shown = shown_url(&url);
        Ok(HttpScorer { name: name.into(), version: version.into(), url, shown, token, client })
    }

    async fn ask(&self, batch: &[ScoreRequest]) -> Result<Vec<ItemResult>, String> {
        let body =
            serde_json::to_vec(&serde_json::json!({ "problems": batch })).map_err(|e| e.to_string())?;
        let at = &self.shown;
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        // reqwest's errors carry the URL, credentials and all: they are shown without it.
        let mut resp = request.send().await.map_err(|e| format!("POST {at}: {}", describe(e)))?;
        let status = resp.status();
        let limit = max_body(batch.len());
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(format!(
                "{at} answered {} bytes, more than the {limit} allowed",
                resp.content_length().unwrap_or(0)
            ));
        }
        // Read chunk by chunk, so a service that floods its answer is cut off at the limit.
        let mut bytes = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| format!("reading the answer of {at}: {}", describe(e)))?
        {
            if bytes.len() + chunk.len() > limit {
                return Err(format!("{at} answered more than the {limit} bytes allowed"));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_redirection() {
            return Err(format!(
                "{at} answered {status} (redirects are not followed: give the scorer's own URL)"
            ));
        }
        if !status.is_success() {
            let shown: String = String::from_utf8_lossy(&bytes).chars().take(120).collect();
            return Err(format!("{at} answered {status}: {shown}"));
        }
        answer_body(batch, &bytes)
    }
}

/// A reqwest error without its URL, with its causes (a TLS failure says why).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// rustls needs one process-wide cryptography provider; ring is the one built in. (rustls marks
/// it deprecated for lacking post-quantum key exchange; aws-lc-rs, which has it, needs a C and
/// assembler toolchain to build, which this project does not require.)
#[allow(deprecated)]
fn install_crypto_provider() {
    // An error means one is installed already, which serves as well.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Most bytes read of an answer to `n` problems: 64 KiB a problem (reasons included), and 1 MiB
/// at least.
pub fn max_body(n: usize) -> usize {
    (n.saturating_mul(64 << 10)).max(1 << 20)
}

/// A service's answer body, `{"scores": [response, ...]}`, checked against the requests: the
/// whole answer fails when it cannot be read or has the wrong count; one unreadable or
/// out-of-order score fails that problem only.
pub fn answer_body(batch: &[ScoreRequest], body: &[u8]) -> Result<Vec<ItemResult>, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        let shown: String = String::from_utf8_lossy(body).chars().take(80).collect();
        format!("unreadable answer {shown:?}: {e}")
    })?;
    let items = answer
        .scores
        .into_iter()
        .map(|v| serde_json::from_value::<ScoreResponse>(v).map_err(|e| format!("unreadable score: {e}")))
        .collect();
    check_responses(batch, items)
}

impl Scorer for HttpScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> String {
        self.version.clone()
    }

    fn score<'a>(&'a mut self, batch: &'a [ScoreRequest]) -> BoxFuture<'a, Result<Vec<ItemResult>, String>> {
        Box::pin(self.ask(batch))
    }
}
