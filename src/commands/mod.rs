//! The commands of the `selfplay` binary, each over parsed arguments and an output stream.

pub mod archive;
pub mod bench;
pub mod eval;
pub mod gen;
pub mod judge;
pub mod pretrain;
pub mod run;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::Context;

use crate::cli::Command;

/// Runs one command, writing its results to `out`.
pub fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Judge(args) => judge::run(&args, out),
        Command::Gen(args) => gen::run(&args, out),
        Command::Archive(args) => archive::run(*args, out),
        Command::Pretrain(args) => pretrain::run(&args, out),
        Command::Report(args) => {
            let path = args.out.clone().unwrap_or_else(|| args.run_dir.join("report.html"));
            let timeout = std::time::Duration::from_secs_f64(args.timeout);
            let summary = crate::report::write(&args.run_dir, &path, timeout)?;
            writeln!(out, "{summary}")?;
            Ok(())
        }
        Command::Rate(args) => crate::rate::run(args, out),
        Command::Run(args) => run::run(&args, out),
        Command::Config(args) => run::config(&args, out),
        Command::Eval(args) => eval::run(&args, out),
        Command::Bench(args) => bench::run(&args, out),
    }
}

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
