//! Logging to standard error and to a run's log files.

use std::path::Path;

/// Libraries whose own info lines would drown the lab's: the NATS client logs every reconnection
/// attempt (the workers announce the ones that matter, `workers::patience::announced`).
const QUIET: &str = "async_nats=warn";

/// Logging: to standard error (`RUST_LOG` sets the filter; `info` for long-running commands,
/// `warn` otherwise and under a progress bar) and, with `log_dir`, to daily rolling files there.
/// The guard flushes the files on drop. Installs once per process; later calls do nothing. Fails
/// when the log directory cannot be made or written.
pub fn init_tracing(
    log_dir: Option<&Path>,
    stderr_default: &str,
) -> anyhow::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::EnvFilter;
    let stderr_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{stderr_default},{QUIET}")))
        .add_directive("logfile=off".parse().expect("a valid directive"));
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(stderr_filter);
    let (file_layer, guard) = match log_dir {
        Some(dir) => {
            let appender = tracing_appender::rolling::RollingFileAppender::builder()
                .rotation(tracing_appender::rolling::Rotation::DAILY)
                .filename_prefix("selfplay.log")
                .build(dir)
                .map_err(|e| anyhow::anyhow!("cannot write logs in {}: {e}", dir.display()))?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer)
                .with_filter(EnvFilter::new(format!("info,{QUIET}")));
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    Ok(tracing_subscriber::registry().with(stderr_layer).with(file_layer).try_init().ok().and(guard))
}
