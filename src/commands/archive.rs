//! `selfplay archive`: list, show, stats, export and import over an archive database.
//!
//! Readers open the archive without creating anything and never write to it; only `import`
//! writes (and creates the archive when there is none).

use std::io::Write;

use anyhow::{anyhow, Context};
use store::{parse_range, Archive, Filter, Order, ProblemRecord, Stats};

use crate::cli::{ArchiveArgs, ArchiveCommand, ExportFormat, FilterArgs};

impl FilterArgs {
    /// The store filter these flags describe; errors name the flag.
    pub fn to_filter(&self) -> anyhow::Result<Filter> {
        fn range<T>(flag: &str, v: &Option<String>, min: T, max: T) -> anyhow::Result<Option<(T, T)>>
        where
            T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display,
        {
            v.as_deref().map(|s| parse_range(s, min, max).map_err(|e| anyhow!("--{flag}: {e}"))).transpose()
        }
        Ok(Filter {
            run: self.run.clone(),
            rounds: range("rounds", &self.rounds, 0, u64::MAX)?,
            valid: if self.valid {
                Some(true)
            } else if self.invalid {
                Some(false)
            } else {
                None
            },
            reason: self.reason.clone(),
            solve_rate: range("solve-rate", &self.solve_rate, 0.0, 1.0)?,
            padding: range("padding", &self.padding, 0.0, 1.0)?,
            depth: range("depth", &self.depth, 0, u32::MAX)?,
            contains: self.contains.clone(),
            hash: self
                .hash
                .as_deref()
                .map(|h| store::hex_u64::parse(h).map_err(|e| anyhow!("--hash: {e}")))
                .transpose()?,
        })
    }
}

pub fn run(args: ArchiveArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let db = args.db_path();
    if let ArchiveCommand::Import { input, renumber } = &args.command {
        // The input first: a typo in its name must not leave an empty archive behind.
        let mut reader = super::open_input(Some(input))?;
        let archive = Archive::open(&db)?;
        let report = store::import_jsonl(&archive, &mut reader, *renumber)
            .with_context(|| format!("importing {}", input.display()))?;
        writeln!(
            out,
            "imported {}, skipped {} already present{}",
            report.imported,
            report.skipped,
            if report.dropped_references > 0 {
                format!(", dropped {} references to problems outside the input", report.dropped_references)
            } else {
                String::new()
            }
        )?;
        return Ok(());
    }
    let archive = Archive::open_existing(&db)?;
    match args.command {
        ArchiveCommand::List { filter, limit, after, newest, json } => {
            let filter = filter.to_filter()?;
            let order = if newest { Order::Descending } else { Order::Ascending };
            if !json {
                writeln!(
                    out,
                    "{:>8}  {:<12} {:>6}  {:<10} {:>5} {:>5} {:>5}  text",
                    "id", "run", "round", "status", "p", "pad", "depth"
                )?;
            }
            write_page(archive.scan(&filter, order, after).take(limit), json, out)?;
        }
        ArchiveCommand::Show { id, json } => {
            let r = get(&archive, id)?;
            if json {
                serde_json::to_writer(&mut *out, &r)?;
                writeln!(out)?;
            } else {
                write_record(&r, out)?;
            }
        }
        ArchiveCommand::Equivalents { id, limit, json } => {
            let r = get(&archive, id)?;
            let Some(hash) = r.canonical_hash else {
                anyhow::bail!("problem {id} is invalid: it has no canonical form");
            };
            let filter = Filter { hash: Some(hash), ..Filter::default() };
            if !json {
                writeln!(
                    out,
                    "canonical form {} ({})",
                    r.canonical.as_deref().unwrap_or(""),
                    store::hex_u64::format(hash)
                )?;
            }
            write_page(archive.scan(&filter, Order::Ascending, None).take(limit), json, out)?;
        }
        ArchiveCommand::Lineage { id, depth, json } => {
            let lineage = crate::lineage::Lineage::of(&archive, id, depth)?;
            if json {
                serde_json::to_writer(&mut *out, &lineage.to_json())?;
                writeln!(out)?;
            } else {
                write!(out, "{}", lineage.render())?;
            }
        }
        ArchiveCommand::Stats { filter, window, json } => {
            if window == Some(0) {
                anyhow::bail!("--window must be at least 1 round");
            }
            let filter = filter.to_filter()?;
            let stats = archive.stats(&filter)?;
            let windows = window.map(|w| archive.stats_by_window(&filter, w)).transpose()?;
            if json {
                let mut v = serde_json::to_value(&stats)?;
                if let Some(windows) = &windows {
                    v["windows"] = windows
                        .iter()
                        .map(|((lo, hi), s)| {
                            let mut w = serde_json::to_value(s)?;
                            w["window"] = serde_json::json!([lo, hi]);
                            Ok(w)
                        })
                        .collect::<serde_json::Result<Vec<_>>>()?
                        .into();
                }
                serde_json::to_writer(&mut *out, &v)?;
                writeln!(out)?;
            } else {
                write_stats(&stats, out)?;
                if let Some(windows) = &windows {
                    write_windows(windows, out)?;
                }
            }
        }
        ArchiveCommand::Export { format, filter, out: path } => {
            let filter = filter.to_filter()?;
            let mut file;
            let sink: &mut dyn Write = match &path {
                Some(p) => {
                    file = std::io::BufWriter::new(
                        std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
                    );
                    &mut file
                }
                None => out,
            };
            let n = match format {
                ExportFormat::Jsonl => store::export_jsonl(&archive, &filter, sink)?,
                ExportFormat::Csv => store::export_csv(&archive, &filter, sink)?,
            };
            if let Some(p) = path {
                eprintln!("exported {n} problems to {}", p.display());
            }
        }
        ArchiveCommand::Import { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// Records one per line: JSON, or the list table's rows.
fn write_page(
    records: impl Iterator<Item = store::Result<ProblemRecord>>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    for r in records {
        let r = r?;
        if json {
            serde_json::to_writer(&mut *out, &r)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", list_line(&r))?;
        }
    }
    Ok(())
}

/// The record with this id, or an error naming the archive.
fn get(archive: &Archive, id: u64) -> anyhow::Result<ProblemRecord> {
    archive.get(id)?.ok_or_else(|| anyhow!("no problem with id {id} in {}", archive.path().display()))
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"))
}

fn list_line(r: &ProblemRecord) -> String {
    let status =
        if r.valid { "valid".to_string() } else { r.reason.clone().unwrap_or_else(|| "invalid".into()) };
    let mut text: String = r.text.chars().take(60).collect();
    if text.len() < r.text.len() {
        text.push('…');
    }
    let run: String = r.run.chars().take(12).collect();
    format!(
        "{:>8}  {:<12} {:>6}  {:<10} {:>5} {:>5} {:>5}  {}",
        r.id,
        run,
        r.round,
        status,
        fmt_opt(r.solve_rate, 2),
        fmt_opt(r.padding, 2),
        fmt_opt(r.depth, 0),
        text.escape_debug()
    )
}

fn write_record(r: &ProblemRecord, out: &mut dyn Write) -> std::io::Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "problem {}  (run {}, round {}, domain {})", r.id, r.run, r.round, r.domain)?;
    writeln!(out, "  text            {}", r.text.escape_debug())?;
    if r.valid {
        writeln!(out, "  valid           yes")?;
    } else {
        writeln!(out, "  valid           no: {} ({})", opt(&r.error), opt(&r.reason))?;
    }
    writeln!(out, "  answer          {}", opt(&r.answer))?;
    writeln!(out, "  canonical       {}", opt(&r.canonical))?;
    writeln!(out, "  canonical hash  {}", r.canonical_hash.map_or("-".into(), store::hex_u64::format))?;
    writeln!(
        out,
        "  operations      {} written, {} essential, depth {}, padding {}",
        fmt_opt(r.surface_ops, 0),
        fmt_opt(r.essential_ops, 0),
        fmt_opt(r.depth, 0),
        fmt_opt(r.padding, 3)
    )?;
    writeln!(out, "  repetition      {}", opt(&r.repetition))?;
    writeln!(out, "  difficulty      {}", fmt_opt(r.difficulty_target, 0))?;
    let refs: Vec<String> = r.references.iter().map(u64::to_string).collect();
    writeln!(out, "  references      {}", if refs.is_empty() { "-".into() } else { refs.join(", ") })?;
    writeln!(out, "  solve rate      {} over {} attempts", fmt_opt(r.solve_rate, 3), r.attempts.len())?;
    for (i, a) in r.attempts.iter().enumerate() {
        let mark = if a.correct { "right" } else { "wrong" };
        writeln!(
            out,
            "    {:>3}. {mark}  answer {}  output {}",
            i + 1,
            a.answer.escape_debug(),
            a.output.escape_debug()
        )?;
    }
    match &r.rewards {
        None => writeln!(out, "  reward          -")?,
        Some(w) => {
            writeln!(out, "  reward          {:.4}", w.total)?;
            writeln!(out, "    frontier        {}", fmt_opt(w.frontier, 4))?;
            writeln!(out, "    padding factor  {:.4}", w.padding_factor)?;
            writeln!(out, "    repetition      {:.4}", w.repetition)?;
            writeln!(
                out,
                "    interestingness {} × weight {}",
                fmt_opt(w.interestingness, 4),
                w.interestingness_weight
            )?;
            writeln!(out, "    invalid         {}", fmt_opt(w.invalid, 4))?;
        }
    }
    writeln!(
        out,
        "  interestingness {} by {}{}",
        fmt_opt(r.interestingness, 4),
        opt(&r.scorer),
        r.scorer_error.as_ref().map(|e| format!(" (scorer error: {e})")).unwrap_or_default()
    )?;
    writeln!(
        out,
        "  models          proposer {}, solver {}",
        opt(&r.proposer_version),
        opt(&r.solver_version)
    )?;
    writeln!(out, "  created         {} ms, updated {} ms (Unix time)", r.created_ms, r.updated_ms)
}

fn write_windows(windows: &[((u64, u64), Stats)], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "by rounds {:>15} {:>8} {:>6} {:>8} {:>7} {:>6}",
        "", "problems", "valid", "mean p", "padded", "depth"
    )?;
    for ((lo, hi), s) in windows {
        let depth_sum: u64 = s.depth.iter().map(|(d, n)| u64::from(*d) * n).sum();
        let depth_n: u64 = s.depth.values().sum();
        let mean_depth = (depth_n > 0).then(|| depth_sum as f64 / depth_n as f64);
        writeln!(
            out,
            "  {:>12}..{:<12} {:>8} {:>6.3} {:>8} {:>7.3} {:>6}",
            lo,
            hi,
            s.total,
            s.valid as f64 / s.total.max(1) as f64,
            fmt_opt(s.mean_solve_rate, 3),
            s.padded as f64 / s.valid.max(1) as f64,
            fmt_opt(mean_depth, 2)
        )?;
    }
    Ok(())
}

fn write_stats(s: &Stats, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "problems   {} ({} valid, {} invalid)", s.total, s.valid, s.invalid)?;
    for (reason, n) in &s.invalid_reasons {
        writeln!(out, "  invalid: {reason:<10} {n}")?;
    }
    if let Some((lo, hi)) = s.rounds {
        writeln!(out, "rounds     {lo}..{hi}")?;
    }
    for (run, n) in &s.runs {
        writeln!(out, "  run {run}: {n}")?;
    }
    if let (Some(d), Some(dup)) = (s.distinct_canonical, s.canonical_duplicates) {
        writeln!(out, "canonical  {d} distinct, {dup} duplicates")?;
    }
    writeln!(out, "padded     {} (mean padding {})", s.padded, fmt_opt(s.mean_padding, 3))?;
    writeln!(out, "attempted  {} (mean solve rate {})", s.attempted, fmt_opt(s.mean_solve_rate, 3))?;
    for (name, h) in [("solve rate", &s.solve_rate), ("padding", &s.padding)] {
        writeln!(out, "{name} histogram")?;
        let max = h.counts.iter().copied().max().unwrap_or(0).max(1);
        for (i, (&edge, &n)) in h.edges.iter().zip(&h.counts).enumerate() {
            let hi = h.edges.get(i + 1).copied().unwrap_or(1.0);
            let bar = "#".repeat((n * 40).div_ceil(max) as usize);
            writeln!(out, "  {edge:.1}-{hi:.1} {n:>9} {bar}")?;
        }
    }
    writeln!(out, "depth")?;
    for (d, n) in &s.depth {
        writeln!(out, "  {d:>3} {n:>9}")?;
    }
    Ok(())
}
