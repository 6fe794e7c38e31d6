//! `selfplay worker`: samples the shards of runs started with `selfplay run --nats`.

use clap::Args;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The NATS server, with JetStream on (`nats-server -js`): `nats://host:port`.
    #[arg(long, value_name = "URL")]
    pub nats: String,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Serves tasks until the process is stopped; a task cut short by the stop goes to another
/// worker after the run's acknowledgement wait.
pub fn run(args: &WorkerArgs) -> anyhow::Result<()> {
    let device = super::device(&args.device)?;
    workers::worker::serve(&args.nats, device)
}
