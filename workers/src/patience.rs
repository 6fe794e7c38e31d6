//! Waiting out a NATS server that went away: the client reconnects on its own, and what failed
//! meanwhile is tried again, for a bounded time, with a line in the log.

use std::future::Future;
use std::time::{Duration, Instant};

/// Connection options that say, once each, when the server went away and when it came back
/// (the client's own reconnection attempts stay at debug level).
pub fn announced(url: &str) -> async_nats::ConnectOptions {
    let url = url.to_string();
    async_nats::ConnectOptions::new().event_callback(move |event| {
        let url = url.clone();
        async move {
            match event {
                async_nats::Event::Disconnected => {
                    tracing::warn!("lost the NATS server at {url}; reconnecting")
                }
                async_nats::Event::Connected => tracing::info!("connected to the NATS server at {url}"),
                other => tracing::debug!("NATS {url}: {other}"),
            }
        }
    })
}

/// Pause between two tries.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// Runs `op` until it succeeds or `limit` (if any) has passed since its first failure. Returns
/// its value and the seconds spent waiting.
pub async fn retry<T, E, F, Fut>(what: &str, limit: Option<Duration>, mut op: F) -> anyhow::Result<(T, f64)>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failing_since: Option<Instant> = None;
    let mut logged = 0u64;
    loop {
        match op().await {
            Ok(v) => {
                let waited = failing_since.map_or(0.0, |t| t.elapsed().as_secs_f64());
                if waited > 0.0 {
                    tracing::info!("{what}: the server answers again after {waited:.1} s");
                }
                return Ok((v, waited));
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                let waited = since.elapsed();
                if limit.is_some_and(|limit| waited >= limit) {
                    anyhow::bail!(
                        "{what}: no answer from the NATS server for {:.0} s: {e}",
                        waited.as_secs_f64()
                    );
                }
                // One line a few seconds, not one a try.
                if waited.as_secs() >= logged {
                    let of = limit.map_or(String::new(), |l| format!(" of {:.0} s", l.as_secs_f64()));
                    tracing::warn!("{what}: {e}; waiting for the server ({:.0} s{of})", waited.as_secs_f64());
                    logged = waited.as_secs() + 5;
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_until_success_and_gives_up_at_the_limit() {
        let mut tries = 0;
        let (v, waited) = retry("test", Some(Duration::from_secs(5)), || {
            tries += 1;
            let t = tries;
            async move {
                if t < 3 {
                    Err("down")
                } else {
                    Ok(t)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
        assert!(waited >= 0.4, "two pauses: {waited}");
        let err = retry("asking", Some(Duration::from_millis(300)), || async { Err::<(), _>("down") })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("asking") && err.contains("down"), "{err}");
    }
}
