//! A scorer that is an HTTP service of the user's: `POST` of `{"problems": [request, ...]}`,
//! answered by `{"scores": [response, ...]}`, one per problem, in order.

use serde::Deserialize;

use super::{check_responses, BoxFuture, ItemResult, ScoreRequest, ScoreResponse, Scorer};

/// See the module documentation. Plain HTTP (a service on this machine or a trusted network).
pub struct HttpScorer {
    name: String,
    version: String,
    url: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    scores: Vec<serde_json::Value>,
}

impl HttpScorer {
    /// Checks that `url` is one this scorer can POST to.
    pub fn check_url(url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?}: {e}"))?;
        if parsed.scheme() != "http" {
            return Err(format!("url {url:?} must be http://"));
        }
        Ok(())
    }

    pub fn new(name: &str, version: &str, url: &str) -> Result<Self, String> {
        Self::check_url(url).map_err(|e| format!("scorer {name}: {e}"))?;
        let client =
            reqwest::Client::builder().no_proxy().build().map_err(|e| format!("scorer {name}: {e}"))?;
        Ok(HttpScorer { name: name.into(), version: version.into(), url: url.into(), client })
    }

    async fn ask(&self, batch: &[ScoreRequest]) -> Result<Vec<ItemResult>, String> {
        let body =
            serde_json::to_vec(&serde_json::json!({ "problems": batch })).map_err(|e| e.to_string())?;
        let mut resp = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", self.url))?;
        let status = resp.status();
        let limit = max_body(batch.len());
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(format!(
                "{} answered {} bytes, more than the {limit} allowed",
                self.url,
                resp.content_length().unwrap_or(0)
            ));
        }
        // Read chunk by chunk, so a service that floods its answer is cut off at the limit.
        let mut bytes = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|e| format!("reading the answer of {}: {e}", self.url))?
        {
            if bytes.len() + chunk.len() > limit {
                return Err(format!("{} answered more than the {limit} bytes allowed", self.url));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let shown: String = String::from_utf8_lossy(&bytes).chars().take(120).collect();
            return Err(format!("{} answered {status}: {shown}", self.url));
        }
        answer_body(batch, &bytes)
    }
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
