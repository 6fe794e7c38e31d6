//! `selfplay archive`: list, show, equivalents, lineage, stats, export, import and browse.
//!
//! Readers never write to the archive; only `import` does (and creates the archive when there is
//! none). sled lets one process hold a database: while a daemon holds it, queries go to the
//! daemon's endpoint ([`crate::endpoint`]), which runs the same [`query`] and streams back the same
//! output.

use std::collections::BinaryHeap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use store::{parse_range, Archive, Filter, Order, ProblemRecord, Stats, StoreError};

use crate::cli::{ArchiveArgs, ArchiveCommand, ExportFormat, FilterArgs, SortKey};
use crate::endpoint::{self, Client};

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
            interestingness: range("interestingness", &self.interestingness, 0.0, 1.0)?,
            scorer: self.scorer.clone(),
            contains: self.contains.clone(),
            hash: self
                .hash
                .as_deref()
                .map(|h| store::hex_u64::parse(h).map_err(|e| anyhow!("--hash: {e}")))
                .transpose()?,
        })
    }
}

/// How this process reaches an archive: it opened the database, or a daemon holding it answers.
pub enum Access {
    Local(Archive),
    Daemon(Client),
}

impl Access {
    /// The daemon's endpoint when one answers, else the database itself. An archive locked by a
    /// process that does not answer is an error naming both.
    pub fn open(db: &Path, timeout: Duration) -> anyhow::Result<Access> {
        let socket = endpoint::socket_path(db);
        if let Some(client) = Client::find(&socket, timeout)? {
            return Ok(Access::Daemon(client));
        }
        match Archive::open_existing(db) {
            Ok(a) => Ok(Access::Local(a)),
            Err(StoreError::Locked(p)) => Err(anyhow!(
                "archive at {} is in use by another process, and no daemon answers at {}",
                p.display(),
                socket.display()
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs one query, writing what `selfplay archive` prints to `out`; returns the line meant
    /// for standard error, if any.
    pub fn query(&self, command: &ArchiveCommand, out: &mut dyn Write) -> anyhow::Result<Option<String>> {
        match self {
            Access::Local(archive) => query(archive, command, out),
            Access::Daemon(client) => client.query(command, out),
        }
    }
}

pub fn run(args: ArchiveArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let db = args.db_path();
    let timeout = Duration::from_secs_f64(args.timeout);
    match args.command {
        ArchiveCommand::Import { input, renumber } => import(&db, &input, renumber, out),
        ArchiveCommand::Browse => crate::browse::run(Access::open(&db, timeout)?),
        ArchiveCommand::Export { format, filter, out: Some(path) } => {
            // The file is written by this process, whoever reads the archive.
            let access = Access::open(&db, timeout)?;
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
            );
            let note = access.query(&ArchiveCommand::Export { format, filter, out: None }, &mut file)?;
            file.flush().with_context(|| format!("cannot write {}", path.display()))?;
            if let Some(note) = note {
                eprintln!("{note} to {}", path.display());
            }
            Ok(())
        }
        command => {
            Access::open(&db, timeout)?.query(&command, out)?;
            Ok(())
        }
    }
}

fn import(db: &Path, input: &Path, renumber: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let socket = endpoint::socket_path(db);
    if Client::find(&socket, Duration::from_secs(1))?.is_some() {
        bail!(
            "a daemon holds the archive at {} (it answers at {}): stop it to import",
            db.display(),
            socket.display()
        );
    }
    // The input first: a typo in its name must not leave an empty archive behind.
    let mut reader = super::open_input(Some(input))?;
    let archive = Archive::open(db)?;
    let report = store::import_jsonl(&archive, &mut reader, renumber)
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
    Ok(())
}

/// Answers one read-only command from an open archive: what the CLI prints, and the line meant for
/// standard error, if any. The daemon's endpoint runs this same function.
pub fn query(
    archive: &Archive,
    command: &ArchiveCommand,
    out: &mut dyn Write,
) -> anyhow::Result<Option<String>> {
    match command {
        ArchiveCommand::List { filter, limit, after, newest, sort, desc, offset, json } => {
            let filter = filter.to_filter()?;
            if !json {
                writeln!(
                    out,
                    "{:>8}  {:<12} {:>6}  {:<10} {:>5} {:>5} {:>5} {:>5}  text",
                    "id", "run", "round", "status", "p", "pad", "depth", "int"
                )?;
            }
            match sort {
                Some(key) => {
                    let ids = sorted_ids(archive, &filter, *key, *desc, *offset, *limit)?;
                    let records = ids.into_iter().map(|id| {
                        archive.get(id).and_then(|r| {
                            r.ok_or_else(|| StoreError::Corrupt {
                                path: archive.path().to_path_buf(),
                                id,
                                reason: "removed while listing".into(),
                            })
                        })
                    });
                    write_page(records, *json, out)?;
                }
                None => {
                    let order = if *newest { Order::Descending } else { Order::Ascending };
                    write_page(archive.scan(&filter, order, *after).take(*limit), *json, out)?;
                }
            }
        }
        ArchiveCommand::Show { id, json } => {
            let r = get(archive, *id)?;
            if *json {
                serde_json::to_writer(&mut *out, &r)?;
                writeln!(out)?;
            } else {
                write_record(&r, out)?;
            }
        }
        ArchiveCommand::Equivalents { id, problem, limit, json } => {
            let (canonical, hash) = match (id, problem) {
                (Some(id), _) => {
                    let r = get(archive, *id)?;
                    let Some(hash) = r.canonical_hash else {
                        bail!("problem {id} is invalid: it has no canonical form");
                    };
                    (r.canonical.unwrap_or_default(), hash)
                }
                (None, Some(text)) => {
                    let a = problem::default_domain()
                        .analyze(text, &problem::Limits::default())
                        .map_err(|e| anyhow!("--problem {text:?} is not a valid problem: {e}"))?;
                    (a.canonical, a.hash)
                }
                (None, None) => bail!("give a problem id or --problem TEXT"),
            };
            let filter = Filter { hash: Some(hash), ..Filter::default() };
            if !json {
                writeln!(out, "canonical form {canonical} ({})", store::hex_u64::format(hash))?;
            }
            write_page(archive.scan(&filter, Order::Ascending, None).take(*limit), *json, out)?;
        }
        ArchiveCommand::Lineage { id, depth, json } => {
            let lineage = crate::lineage::Lineage::of(archive, *id, *depth)?;
            if *json {
                serde_json::to_writer(&mut *out, &lineage.to_json())?;
                writeln!(out)?;
            } else {
                write!(out, "{}", lineage.render())?;
            }
        }
        ArchiveCommand::Stats { filter, window, json } => {
            if *window == Some(0) {
                bail!("--window must be at least 1 round");
            }
            let filter = filter.to_filter()?;
            let (stats, windows) = archive.stats_with_windows(&filter, *window)?;
            let windows = window.map(|_| windows);
            if *json {
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
        ArchiveCommand::Export { format, filter, out: _ } => {
            let filter = filter.to_filter()?;
            let n = match format {
                ExportFormat::Jsonl => store::export_jsonl(archive, &filter, out)?,
                ExportFormat::Csv => store::export_csv(archive, &filter, out)?,
            };
            return Ok(Some(format!("exported {n} problems")));
        }
        ArchiveCommand::Import { .. } | ArchiveCommand::Browse => {
            bail!("`archive {}` is not a query", command.name())
        }
    }
    Ok(None)
}

impl ArchiveCommand {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            ArchiveCommand::List { .. } => "list",
            ArchiveCommand::Show { .. } => "show",
            ArchiveCommand::Equivalents { .. } => "equivalents",
            ArchiveCommand::Lineage { .. } => "lineage",
            ArchiveCommand::Stats { .. } => "stats",
            ArchiveCommand::Export { .. } => "export",
            ArchiveCommand::Import { .. } => "import",
            ArchiveCommand::Browse => "browse",
        }
    }
}

/// The value a record is sorted by; `None` sorts last.
fn sort_value(r: &ProblemRecord, key: SortKey) -> Option<f64> {
    match key {
        SortKey::Id => Some(r.id as f64),
        SortKey::Round => Some(r.round as f64),
        SortKey::SolveRate => r.solve_rate,
        SortKey::Padding => r.padding,
        SortKey::Depth => r.depth.map(f64::from),
        SortKey::Interestingness => r.interestingness,
        SortKey::Reward => r.rewards.as_ref().map(|w| w.total),
        SortKey::Length => Some(r.text.chars().count() as f64),
    }
}

/// Ids of the page `offset..offset + limit` of the matches sorted by `key` (ties by id), in one
/// streamed pass that keeps only the best `offset + limit` keys.
fn sorted_ids(
    archive: &Archive,
    filter: &Filter,
    key: SortKey,
    desc: bool,
    offset: usize,
    limit: usize,
) -> anyhow::Result<Vec<u64>> {
    /// Position in the wanted order: smaller comes first. Missing values come last either way.
    #[derive(PartialEq)]
    struct Rank(bool, f64, u64);
    impl Eq for Rank {}
    impl Ord for Rank {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            self.0.cmp(&o.0).then(self.1.total_cmp(&o.1)).then(self.2.cmp(&o.2))
        }
    }
    impl PartialOrd for Rank {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    let keep = offset.saturating_add(limit);
    if keep == 0 {
        return Ok(Vec::new());
    }
    // A max-heap of the best `keep` ranks: its top is the worst kept.
    let mut heap = BinaryHeap::with_capacity(keep.min(1 << 20) + 1);
    for r in archive.scan(filter, Order::Ascending, None) {
        let r = r?;
        let value = sort_value(&r, key).filter(|v| v.is_finite());
        let rank = Rank(value.is_none(), value.map_or(0.0, |v| if desc { -v } else { v }), r.id);
        if heap.len() < keep {
            heap.push(rank);
        } else if heap.peek().is_some_and(|worst| rank < *worst) {
            heap.pop();
            heap.push(rank);
        }
    }
    Ok(heap.into_sorted_vec().into_iter().skip(offset).map(|Rank(_, _, id)| id).collect())
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

/// `valid`, or why not (`syntax`, `range`, ...).
pub(crate) fn status(r: &ProblemRecord) -> &str {
    if r.valid {
        "valid"
    } else {
        r.reason.as_deref().unwrap_or("invalid")
    }
}

fn list_line(r: &ProblemRecord) -> String {
    let mut text: String = r.text.chars().take(60).collect();
    if text.len() < r.text.len() {
        text.push('…');
    }
    let run: String = r.run.chars().take(12).collect();
    format!(
        "{:>8}  {:<12} {:>6}  {:<10} {:>5} {:>5} {:>5} {:>5}  {}",
        r.id,
        run,
        r.round,
        status(r),
        fmt_opt(r.solve_rate, 2),
        fmt_opt(r.padding, 2),
        fmt_opt(r.depth, 0),
        fmt_opt(r.interestingness, 2),
        text.escape_debug()
    )
}

pub(crate) fn write_record(r: &ProblemRecord, out: &mut dyn Write) -> std::io::Result<()> {
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
    let literals = r.literal_target.map_or(String::new(), |b| format!(", literals up to {b}"));
    writeln!(out, "  difficulty      {}{literals}", fmt_opt(r.difficulty_target, 0))?;
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
            writeln!(
                out,
                "    length factor   {} (length curve {})",
                fmt_opt(w.length_factor, 4),
                fmt_opt(w.length_baseline, 3)
            )?;
            writeln!(out, "    repetition      {:.4}", w.repetition)?;
            writeln!(
                out,
                "    interestingness {} × weight {}",
                fmt_opt(w.interestingness, 4),
                w.interestingness_weight
            )?;
            writeln!(
                out,
                "    target miss     {} (target {})",
                fmt_opt(w.target_miss, 0),
                r.difficulty_target.map_or("-".into(), |t| t.to_string())
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
    writeln!(
        out,
        "scored     {} (mean interestingness {}), {} scorer errors",
        s.scored,
        fmt_opt(s.mean_interestingness, 3),
        s.scorer_errors
    )?;
    let w = &s.rewards;
    writeln!(
        out,
        "reward     mean {} over {}: frontier {}, padding factor {}, repetition {}, interestingness {}, off target {}, invalid {}",
        fmt_opt(w.total, 3),
        w.rewarded,
        fmt_opt(w.frontier, 3),
        fmt_opt(w.padding_factor, 3),
        fmt_opt(w.repetition, 3),
        fmt_opt(w.interestingness, 3),
        fmt_opt(w.target_miss, 3),
        fmt_opt(w.invalid, 3)
    )?;
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
