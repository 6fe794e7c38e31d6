//! The commands of the `selfplay` binary, each over parsed arguments and an output stream.

pub mod archive;
pub mod bench;
pub mod eval;
pub mod gen;
pub mod judge;
pub mod pretrain;
pub mod run;
pub mod worker;

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;

/// A file, or standard input for `-` (and for no path at all).
pub fn open_input(path: Option<&Path>) -> anyhow::Result<Box<dyn BufRead>> {
    match path {
        None => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) if p == Path::new("-") => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
            Ok(Box::new(BufReader::new(f)))
        }
    }
}

/// The device a `--device` flag names.
pub fn device(spec: &str) -> anyhow::Result<candle_core::Device> {
    policy::device::parse(spec).map_err(|e| anyhow::anyhow!("--device: {e}"))
}

/// A `--timeout` value: a positive, finite number of seconds.
pub fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

/// A flag set on the first SIGINT (Ctrl-C) or SIGTERM, for work that stops at its next step.
pub fn stop_on_signal() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Registered before returning, so that no signal is missed between here and the work.
    let (mut interrupt, mut terminate) = runtime.block_on(async {
        Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
    })?;
    let set = flag.clone();
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        });
        set.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    Ok(flag)
}

/// A `--domain` value: the name of a built-in domain.
pub fn domain_name(name: &str) -> Result<String, String> {
    problem::domain_by_name(name)
        .map(|d| d.name().to_string())
        .ok_or_else(|| format!("{name:?} is not a domain: {}", problem::DOMAINS.join(", ")))
}

/// The domain a `--domain` value (checked by [`domain_name`]) names.
pub fn domain(name: &str) -> &'static dyn problem::Domain {
    problem::domain_by_name(name).expect("--domain is checked when parsed")
}
