//! `selfplay judge`: the judge's first pass, one problem per input line.
//!
//! Contract (`--json`): one JSON object per input line, in order, with the keys `problem`, `valid`,
//! `error` (null when valid), `answer` (string, null when invalid), `canonical`, `hash` (16 hex
//! digits), `surface_ops`, `essential_ops`, `depth`, `padding` (0–1), `padded`; also `reason` (the
//! short error kind) and `distinct_ops`. Fields that need a valid problem are null for invalid
//! ones. A malformed line never stops the command: it gets `valid: false` and its error.

use std::path::PathBuf;

use std::io::Write;

use anyhow::Context;
use clap::Args;
use problem::{Analysis, Domain, Limits};
use serde::Serialize;

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// File with one problem per line; `-` or nothing reads standard input.
    pub input: Option<PathBuf>,
    /// One JSON object per input line, in order.
    #[arg(long)]
    pub json: bool,
    /// Token budget: longer problems are invalid.
    #[arg(long, default_value_t = problem::Limits::default().max_tokens)]
    pub max_tokens: usize,
    /// Deepest nesting of parentheses allowed.
    #[arg(long, default_value_t = problem::Limits::default().max_nesting)]
    pub max_nesting: usize,
    /// The problems' domain: `arith` (`(3+4)*2`) or `program` (`x=4;a=x*3;a-1`).
    #[arg(long, default_value = "arith", value_parser = super::domain_name)]
    pub domain: String,
}

/// One output line of `judge --json`. Field order is part of the contract's readability.
#[derive(Debug, Serialize)]
pub struct JudgeLine {
    pub problem: String,
    pub valid: bool,
    pub error: Option<String>,
    pub reason: Option<&'static str>,
    pub answer: Option<String>,
    pub canonical: Option<String>,
    pub hash: Option<String>,
    pub surface_ops: Option<u32>,
    pub essential_ops: Option<u32>,
    pub distinct_ops: Option<u32>,
    pub depth: Option<u32>,
    pub padding: Option<f64>,
    pub padded: Option<bool>,
}

impl JudgeLine {
    /// Judges one raw input line (without its line ending).
    pub fn judge(domain: &dyn Domain, limits: &Limits, raw: &[u8]) -> JudgeLine {
        let problem = String::from_utf8_lossy(raw).into_owned();
        let analysis = match std::str::from_utf8(raw) {
            Ok(text) => domain.analyze(text, limits).map_err(|e| (e.to_string(), e.kind.as_str())),
            Err(e) => Err((format!("line is not UTF-8 at byte {}", e.valid_up_to()), "bad_char")),
        };
        match analysis {
            Ok(a) => Self::valid(problem, a),
            Err((error, reason)) => Self::invalid(problem, error, reason),
        }
    }

    /// A line longer than any problem within `limits` can be, of which only `kept` was read.
    pub fn too_long(kept: &[u8], len: usize, limits: &Limits) -> JudgeLine {
        let mut problem = String::from_utf8_lossy(kept).into_owned();
        problem.push('…');
        let error = format!("a line of {len} bytes exceeds the budget of {} tokens", limits.max_tokens);
        Self::invalid(problem, error, problem::ErrorKind::TooLong.as_str())
    }

    fn invalid(problem: String, error: String, reason: &'static str) -> JudgeLine {
        JudgeLine {
            problem,
            valid: false,
            error: Some(error),
            reason: Some(reason),
            answer: None,
            canonical: None,
            hash: None,
            surface_ops: None,
            essential_ops: None,
            distinct_ops: None,
            depth: None,
            padding: None,
            padded: None,
        }
    }

    fn valid(problem: String, a: Analysis) -> JudgeLine {
        JudgeLine {
            problem,
            valid: true,
            error: None,
            reason: None,
            padded: Some(a.padded()),
            hash: Some(store::hex_u64::format(a.hash)),
            answer: Some(a.answer),
            canonical: Some(a.canonical),
            surface_ops: Some(a.surface_ops),
            essential_ops: Some(a.essential_ops),
            distinct_ops: Some(a.distinct_ops),
            depth: Some(a.depth),
            padding: Some(a.padding),
        }
    }

    /// The line for people: status, answer, canonical form, sizes, then the problem.
    fn human(&self) -> String {
        if self.valid {
            format!(
                "ok   {:>11}  {}  ops {}->{}  padding {:.2}  | {}",
                self.answer.as_deref().unwrap_or(""),
                self.canonical.as_deref().unwrap_or(""),
                self.surface_ops.unwrap_or(0),
                self.essential_ops.unwrap_or(0),
                self.padding.unwrap_or(0.0),
                self.problem
            )
        } else {
            format!(
                "bad  {}: {}  | {}",
                self.reason.unwrap_or(""),
                self.error.as_deref().unwrap_or(""),
                self.problem
            )
        }
    }
}

pub fn run(args: &JudgeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let limits = Limits { max_tokens: args.max_tokens, max_nesting: args.max_nesting };
    limits.validate().map_err(|e| anyhow::anyhow!("--max-tokens/--max-nesting: {e}"))?;
    let mut input = super::open_input(args.input.as_deref())?;
    // A problem within the budget has at most 4 bytes a token (and a `\r`): longer lines are
    // judged too long from their first bytes, never held whole.
    let max = limits.max_tokens.saturating_mul(4).saturating_add(1);
    let mut line = Vec::new();
    loop {
        let read = problem::input::read_line_bounded(&mut input, max, &mut line);
        let Some(len) = read.with_context(|| format!("reading {}", input_name(args)))? else {
            return Ok(());
        };
        let judged = if len > max {
            JudgeLine::too_long(&line, len, &limits)
        } else {
            let raw = line.strip_suffix(b"\r").unwrap_or(&line);
            JudgeLine::judge(super::domain(&args.domain), &limits, raw)
        };
        if args.json {
            serde_json::to_writer(&mut *out, &judged)?;
            out.write_all(b"\n")?;
        } else {
            writeln!(out, "{}", judged.human())?;
        }
    }
}

fn input_name(args: &JudgeArgs) -> String {
    match &args.input {
        Some(p) if p.as_os_str() != "-" => p.display().to_string(),
        _ => "standard input".into(),
    }
}
