//! Export to JSONL and CSV, and import from JSONL.
//!
//! JSONL is the archive's interchange form: one [`ProblemRecord`] per line, exactly as serde writes
//! it, so `export` then `import` reproduces an archive. CSV is flat, for spreadsheets and
//! dataframes: one row per problem, the columns of [`CSV_HEADER`].

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};

use crate::hex_u64;
use crate::{record, Archive, Filter, Order, ProblemRecord, Result, StoreError};

/// Writes the records matching `filter` as JSON lines; returns how many.
pub fn export_jsonl(archive: &Archive, filter: &Filter, out: &mut dyn Write) -> Result<u64> {
    let mut n = 0;
    for r in archive.scan(filter, Order::Ascending, None) {
        serde_json::to_writer(&mut *out, &r?).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

/// Columns of the CSV export.
pub const CSV_HEADER: [&str; 28] = [
    "id",
    "run",
    "round",
    "domain",
    "text",
    "valid",
    "reason",
    "error",
    "answer",
    "canonical",
    "canonical_hash",
    "surface_ops",
    "essential_ops",
    "depth",
    "padding",
    "difficulty_target",
    "references",
    "repetition",
    "attempts",
    "correct",
    "solve_rate",
    "reward",
    "interestingness",
    "scorer",
    "proposer_version",
    "solver_version",
    "created_ms",
    "literal_target",
];

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

/// Writes the records matching `filter` as CSV with a header row; returns how many.
pub fn export_csv(archive: &Archive, filter: &Filter, out: &mut dyn Write) -> Result<u64> {
    let mut w = CsvWriter::new(out)?;
    for r in archive.scan(filter, Order::Ascending, None) {
        w.write(&r?)?;
    }
    w.finish()
}

/// CSV rows of records, one at a time, under the header row: for records that arrive one by one
/// (from a daemon's answer) as well as from a scan.
pub struct CsvWriter<W: Write> {
    w: csv::Writer<W>,
    rows: u64,
}

fn csv_err(e: csv::Error) -> StoreError {
    StoreError::Io(e.into())
}

impl<W: Write> CsvWriter<W> {
    /// A writer that has written the header row.
    pub fn new(out: W) -> Result<Self> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(CSV_HEADER).map_err(csv_err)?;
        Ok(CsvWriter { w, rows: 0 })
    }

    /// One record's row.
    pub fn write(&mut self, r: &ProblemRecord) -> Result<()> {
        let refs: Vec<String> = r.references.iter().map(u64::to_string).collect();
        let row = [
            r.id.to_string(),
            r.run.clone(),
            r.round.to_string(),
            r.domain.clone(),
            r.text.clone(),
            r.valid.to_string(),
            opt(&r.reason),
            opt(&r.error),
            opt(&r.answer),
            opt(&r.canonical),
            r.canonical_hash.map(hex_u64::format).unwrap_or_default(),
            opt(&r.surface_ops),
            opt(&r.essential_ops),
            opt(&r.depth),
            opt(&r.padding),
            opt(&r.difficulty_target),
            refs.join(";"),
            opt(&r.repetition),
            r.attempts.len().to_string(),
            r.attempts.iter().filter(|a| a.correct).count().to_string(),
            opt(&r.solve_rate),
            opt(&r.rewards.as_ref().map(|w| w.total)),
            opt(&r.interestingness),
            opt(&r.scorer),
            opt(&r.proposer_version),
            opt(&r.solver_version),
            r.created_ms.to_string(),
            opt(&r.literal_target),
        ];
        self.w.write_record(&row).map_err(csv_err)?;
        self.rows += 1;
        Ok(())
    }

    /// Flushes; returns how many rows were written.
    pub fn finish(mut self) -> Result<u64> {
        self.w.flush()?;
        Ok(self.rows)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Records written.
    pub imported: u64,
    /// Records already in the archive, identical: left as they were.
    pub skipped: u64,
    /// With renumbering: references to problems outside the imported set, dropped.
    pub dropped_references: u64,
}

/// The longest line an import reads: a record's texts are bounded (`MAX_TEXT` each), so a longer
/// line is not a record, and is not read whole into memory.
pub const MAX_IMPORT_LINE: usize = 16 << 20;

/// Imports JSON lines as written by [`export_jsonl`].
///
/// All or nothing: every line is read and checked before anything is written, and everything is
/// written in one atomic batch, so a malformed line (reported with its number) or a crash leaves
/// the archive as it was. Lines are bounded ([`MAX_IMPORT_LINE`]); the records are held in memory.
///
/// Without `renumber`, records keep their ids; a record whose id is taken by a different record is
/// an error (nothing already stored is ever altered), an identical one is skipped. With
/// `renumber`, records get fresh ids after the archive's last, in input order, and references
/// among them follow; references to problems outside the input are dropped.
pub fn import_jsonl(archive: &Archive, input: &mut dyn BufRead, renumber: bool) -> Result<ImportReport> {
    let mut records = Vec::new();
    let mut lines = HashMap::new();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        if std::io::Read::take(&mut *input, MAX_IMPORT_LINE as u64 + 1).read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        if buf.len() > MAX_IMPORT_LINE {
            return Err(StoreError::Import {
                line,
                reason: format!("longer than {MAX_IMPORT_LINE} bytes: not a problem record"),
            });
        }
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        let r: ProblemRecord = serde_json::from_slice(text)
            .map_err(|e| StoreError::Import { line, reason: format!("not a problem record: {e}") })?;
        r.validate().map_err(|reason| StoreError::Import { line, reason })?;
        if !renumber {
            if r.id == 0 {
                return Err(StoreError::Import { line, reason: "id 0 is reserved".into() });
            }
            if let Some(first) = lines.insert(r.id, line) {
                return Err(StoreError::Import {
                    line,
                    reason: format!("id {} already on line {first}", r.id),
                });
            }
        }
        records.push((line, r));
    }

    let mut report = ImportReport::default();
    if renumber {
        let first = archive.next_id();
        if first.saturating_add(records.len() as u64) > crate::MAX_ID + 1 {
            return Err(StoreError::Import {
                line,
                reason: format!(
                    "{} records do not fit under the largest id, {}",
                    records.len(),
                    crate::MAX_ID
                ),
            });
        }
        let new_ids: HashMap<u64, u64> =
            records.iter().enumerate().map(|(i, (_, r))| (r.id, first + i as u64)).collect();
        for (i, (_, r)) in records.iter_mut().enumerate() {
            r.id = first + i as u64;
            let before = r.references.len();
            r.references = r.references.iter().filter_map(|old| new_ids.get(old).copied()).collect();
            report.dropped_references += (before - r.references.len()) as u64;
        }
    } else {
        let mut skip = HashSet::new();
        for (line, r) in &records {
            if let Some(existing) = archive.get(r.id)? {
                if record::encode(&existing) != record::encode(r) {
                    return Err(StoreError::Import {
                        line: *line,
                        reason: format!(
                            "id {} is already taken by a different problem; use --renumber",
                            r.id
                        ),
                    });
                }
                skip.insert(r.id);
            }
        }
        report.skipped = skip.len() as u64;
        records.retain(|(_, r)| !skip.contains(&r.id));
    }
    let mut all: Vec<ProblemRecord> = records.into_iter().map(|(_, r)| r).collect();
    // In id order, so that an import above the archive's last id is indexed as an append.
    all.sort_by_key(|r| r.id);
    if !all.is_empty() {
        archive.put(&all)?;
    }
    report.imported = all.len() as u64;
    Ok(report)
}
