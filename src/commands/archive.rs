//! `selfplay archive`: list, show, equivalents, lineage, stats, export, import and browse.
//!
//! Each read-only subcommand is one or two [`store::Query`]s, asked of the database this process
//! opens or of the daemon holding it ([`Access`]); the answer is printed here, so the output is the
//! same either way. Only `import` writes (and creates the archive when there is none).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use store::query::{PageOrder, SortKey as StoreSortKey};
use store::{Archive, Filter, ProblemRecord, Query};

use super::positive_seconds;
use crate::access::Access;
use crate::endpoint::{self, Client};
use crate::filter_args::FilterArgs;
use crate::show;

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The archive database directory (instead of a run directory's).
    #[arg(long, value_name = "DIR", global = true, conflicts_with = "run_dir")]
    pub db: Option<PathBuf>,
    /// A run directory: its archive is DIR/archive.
    #[arg(long, value_name = "DIR", default_value = "runs/default", global = true)]
    pub run_dir: PathBuf,
    /// While a daemon holds the archive: seconds to wait for each part of its answer.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = positive_seconds, global = true)]
    pub timeout: f64,
    #[command(subcommand)]
    pub command: ArchiveCommand,
}

impl ArchiveArgs {
    /// The database directory these flags name.
    pub fn db_path(&self) -> PathBuf {
        match &self.db {
            Some(db) => db.clone(),
            None => self.run_dir.join("archive"),
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum ArchiveCommand {
    /// List problems a page at a time: oldest first, newest first, or sorted by a field.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Problems per page.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// In id order: start after this id (the last id of the previous page).
        #[arg(long, value_name = "ID", conflicts_with_all = ["sort", "offset"])]
        after: Option<u64>,
        /// Newest first (id order).
        #[arg(long, conflicts_with = "sort")]
        newest: bool,
        /// Sort by this field, ascending; problems without it come last. Reads every match.
        #[arg(long, value_enum, value_name = "FIELD")]
        sort: Option<SortKey>,
        /// With --sort: descending.
        #[arg(long, requires = "sort")]
        desc: bool,
        /// With --sort: skip this many (the pages before).
        #[arg(long, default_value_t = 0, requires = "sort")]
        offset: usize,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one problem with everything known about it.
    Show {
        /// The problem's id.
        id: u64,
        /// One JSON record instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Problems with the same canonical form as problem ID, or as a problem given as text.
    Equivalents {
        /// The problem's id.
        #[arg(required_unless_present = "problem", conflicts_with = "problem")]
        id: Option<u64>,
        /// A problem's text instead of an id, e.g. `"2*(3+4)"`: its canonical form is searched.
        #[arg(long, value_name = "TEXT")]
        problem: Option<String>,
        /// The domain of --problem: `arith` or `program`.
        #[arg(long, default_value = "arith", value_parser = super::domain_name, requires = "problem")]
        domain: String,
        /// Problems shown, at most.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON record per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The reference problems ID came from, and the problems it was a reference for, as trees.
    Lineage {
        /// The problem's id.
        id: u64,
        /// Generations to follow each way.
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// The lineage as JSON (records and edges) instead of trees.
        #[arg(long)]
        json: bool,
    },
    /// Counts and histograms.
    Stats {
        #[command(flatten)]
        filter: FilterArgs,
        /// Also per window of this many rounds (JSON: a `windows` list).
        #[arg(long, value_name = "ROUNDS")]
        window: Option<u64>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write problems as JSON lines or CSV.
    Export {
        /// jsonl (every field, what `import` reads) or csv (the main fields, for a spreadsheet).
        #[arg(long, value_enum)]
        format: ExportFormat,
        #[command(flatten)]
        filter: FilterArgs,
        /// Output file (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// A terminal UI: scroll the problems, filter, read one whole, follow its lineage.
    Browse,
    /// Read problems from JSON lines as written by `export --format jsonl` (creates the archive).
    Import {
        /// Input file; `-` reads standard input.
        input: PathBuf,
        /// Give the problems fresh ids after the archive's last instead of keeping theirs.
        #[arg(long)]
        renumber: bool,
        /// Say what was imported as one JSON object: `imported`, `skipped`, `dropped_references`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// Fields `archive list --sort` orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    Id,
    Round,
    SolveRate,
    Padding,
    Depth,
    Interestingness,
    /// Proposer reward.
    Reward,
    /// Text length in characters.
    Length,
}

impl From<SortKey> for StoreSortKey {
    fn from(key: SortKey) -> Self {
        match key {
            SortKey::Id => StoreSortKey::Id,
            SortKey::Round => StoreSortKey::Round,
            SortKey::SolveRate => StoreSortKey::SolveRate,
            SortKey::Padding => StoreSortKey::Padding,
            SortKey::Depth => StoreSortKey::Depth,
            SortKey::Interestingness => StoreSortKey::Interestingness,
            SortKey::Reward => StoreSortKey::Reward,
            SortKey::Length => StoreSortKey::Length,
        }
    }
}

pub fn run(args: ArchiveArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let db = args.db_path();
    let timeout = Duration::from_secs_f64(args.timeout);
    match args.command {
        ArchiveCommand::Import { input, renumber, json } => import(&db, &input, renumber, json, out),
        ArchiveCommand::Browse => crate::browse::run(Access::open(&db, timeout)?),
        ArchiveCommand::Export { format, filter, out: Some(path) } => {
            // The file is written by this process, whoever reads the archive.
            let access = Access::open(&db, timeout)?;
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?,
            );
            let n = export(&access, format, &filter.to_filter()?, &mut file)?;
            file.flush().with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("exported {n} problems to {}", path.display());
            Ok(())
        }
        command => print(&Access::open(&db, timeout)?, &command, out),
    }
}

fn import(db: &Path, input: &Path, renumber: bool, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
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
    if json {
        let said = serde_json::json!({
            "imported": report.imported,
            "skipped": report.skipped,
            "dropped_references": report.dropped_references,
        });
        writeln!(out, "{said}")?;
        return Ok(());
    }
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

/// The query behind `archive list`'s flags.
pub fn list_query(
    filter: Filter,
    limit: usize,
    after: Option<u64>,
    newest: bool,
    sort: Option<SortKey>,
    desc: bool,
    offset: usize,
) -> Query {
    let order = match sort {
        Some(key) => PageOrder::Field { key: key.into(), descending: desc, offset },
        None => PageOrder::Id { newest, after },
    };
    Query::Page { filter, order, limit: Some(limit) }
}

/// Answers one read-only subcommand and prints the answer: as text, or one JSON value a line.
pub fn print(access: &Access, command: &ArchiveCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        ArchiveCommand::List { filter, limit, after, newest, sort, desc, offset, json } => {
            let query = list_query(filter.to_filter()?, *limit, *after, *newest, *sort, *desc, *offset);
            if !json {
                writeln!(out, "{}", show::list_header())?;
            }
            access.for_each_record(&query, |r| write_page_line(&r, *json, out))?;
        }
        ArchiveCommand::Show { id, json } => {
            let r = access.record(*id)?;
            if *json {
                write_json(&r, out)?;
            } else {
                show::write_record(&r, out)?;
            }
        }
        ArchiveCommand::Equivalents { id, problem, domain, limit, json } => {
            let (canonical, hash) = match (id, problem) {
                (Some(id), _) => {
                    let r = access.record(*id)?;
                    let Some(hash) = r.canonical_hash else {
                        bail!("problem {id} is invalid: it has no canonical form");
                    };
                    (r.canonical.unwrap_or_default(), hash)
                }
                (None, Some(text)) => {
                    let a = super::domain(domain)
                        .analyze(text, &problem::Limits::default())
                        .map_err(|e| anyhow!("--problem {text:?} is not a valid problem: {e}"))?;
                    (a.canonical, a.hash)
                }
                (None, None) => bail!("give a problem id or --problem TEXT"),
            };
            if !json {
                writeln!(out, "canonical form {canonical} ({})", store::hex_u64::format(hash))?;
            }
            let filter = Filter { hash: Some(hash), ..Filter::default() };
            let query = Query::Page {
                filter,
                order: PageOrder::Id { newest: false, after: None },
                limit: Some(*limit),
            };
            access.for_each_record(&query, |r| write_page_line(&r, *json, out))?;
        }
        ArchiveCommand::Lineage { id, depth, json } => {
            let lineage = access.lineage(*id, *depth)?;
            if *json {
                write_json(&lineage.to_json(), out)?;
            } else {
                write!(out, "{}", lineage.render())?;
            }
        }
        ArchiveCommand::Stats { filter, window, json } => {
            if *window == Some(0) {
                bail!("--window must be at least 1 round");
            }
            let (stats, windows) = access.stats(&filter.to_filter()?, *window)?;
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
                write_json(&v, out)?;
            } else {
                show::write_stats(&stats, out)?;
                if let Some(windows) = &windows {
                    show::write_windows(windows, out)?;
                }
            }
        }
        ArchiveCommand::Export { format, filter, out: _ } => {
            export(access, *format, &filter.to_filter()?, out)?;
        }
        ArchiveCommand::Import { .. } | ArchiveCommand::Browse => {
            unreachable!("`archive import` and `archive browse` are run, not printed")
        }
    }
    Ok(())
}

/// Writes the matches as JSON lines or CSV; returns how many.
fn export(
    access: &Access,
    format: ExportFormat,
    filter: &Filter,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let query = Query::Page {
        filter: filter.clone(),
        order: PageOrder::Id { newest: false, after: None },
        limit: None,
    };
    match format {
        ExportFormat::Jsonl => {
            let mut n = 0;
            access.for_each_record(&query, |r| {
                n += 1;
                write_json(&r, out)
            })?;
            out.flush()?;
            Ok(n)
        }
        ExportFormat::Csv => {
            let mut csv = store::CsvWriter::new(&mut *out)?;
            access.for_each_record(&query, |r| Ok(csv.write(&r)?))?;
            Ok(csv.finish()?)
        }
    }
}

/// A record of a page: its JSON, or its row of the list table.
fn write_page_line(r: &ProblemRecord, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    if json {
        write_json(r, out)
    } else {
        writeln!(out, "{}", show::list_line(r))?;
        Ok(())
    }
}

/// One value as one line of JSON.
fn write_json(value: &impl serde::Serialize, out: &mut dyn Write) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
