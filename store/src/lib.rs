//! The selfplay archive: every generated problem, valid or not, with everything known about it.
//!
//! One sled database per archive. All data lives in one tree, `archive`, under one-byte key
//! prefixes, so that a batch of records and their index entries are written by one atomic sled
//! batch:
//!
//! | key | value | what |
//! |---|---|---|
//! | `r` id | record | the problem record ([`record`]), ids big-endian so scans are in id order |
//! | `h` … | postings | canonical-hash index: equivalent problems |
//! | `g` run `\0` round … | postings | run and round index |
//! | `s` bucket … | postings | solve-rate index, 21 buckets of width 0.05 ([`record::SOLVE_RATE_BUCKETS`]) |
//!
//! Indexes hold one posting list per batch and value rather than one key per record: see
//! [`index`] for the layout and why.
//!
//! A tree `ratings` holds a person's pairwise judgements of interestingness ([`Rating`]).
//!
//! A tree `meta` holds the schema version, checked on every open. sled holds an exclusive
//! lock on its database: a second process (or a second open in this one) gets [`StoreError::Locked`].
//!
//! Writes come in batches, one per self-play round, and are flushed to disk before
//! [`Archive::append`] returns: a round the caller has seen written survives a crash.

mod create;
mod export;
pub mod failpoint;
mod filter;
pub mod hex_u64;
mod index;
pub mod lineage;
pub mod query;
mod ratings;
pub mod record;
pub mod safe_text;
mod stats;
mod stop;
mod unfinished;

pub use export::{export_csv, export_jsonl, import_jsonl, CsvWriter, ImportReport, CSV_HEADER};
pub use filter::{parse_range, Filter, Order, Scan};
pub use lineage::Lineage;
pub use query::{Query, Reply, QUERY_VERSION};
pub use ratings::{Rated, Rating, Winner};
pub use record::{Attempt, ProblemRecord, Rewards, ScorerScore, MAX_ID, MAX_ROUND, MAX_TEXT};
pub use stats::{Histogram, RewardMeans, Stats, Windows};
pub use stop::Stop;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Version of the archive layout (trees, key prefixes, record format) this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

const SCHEMA_KEY: &[u8] = b"schema_version";
/// How long to keep trying to open an archive that looks locked (sled releases a closed
/// database's lock from a background thread, late on a loaded machine).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// sled's page cache: bounds the memory a scan of a large archive can take.
const CACHE_BYTES: u64 = 64 << 20;

pub(crate) const RECORD: u8 = b'r';
pub(crate) const HASH: u8 = b'h';
pub(crate) const ROUND: u8 = b'g';
pub(crate) const SOLVE: u8 = b's';
pub(crate) const REFS: u8 = b'f';
/// The id below which every record's references are in the references index (see
/// [`index`]): written with each batch, so that a build that did not keep that index (an
/// older one) leaves it lower than the next id, and the next writer to open the archive catches up.
pub(crate) const REFS_INDEXED: [u8; 2] = *b"mf";

/// What can go wrong with an archive. Every message names the archive or the record concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no archive at {0}")]
    Missing(PathBuf),
    #[error("{0} is not a selfplay archive")]
    NotArchive(PathBuf),
    #[error("archive at {0} is in use by another process (a running daemon?)")]
    Locked(PathBuf),
    #[error("archive at {path} has schema version {found}; this build reads version {SCHEMA_VERSION}")]
    Schema { path: PathBuf, found: String },
    #[error("archive at {path}: record {id} is unreadable: {reason}")]
    Corrupt { path: PathBuf, id: u64, reason: String },
    #[error("archive at {path}: {cause}")]
    Sled { path: PathBuf, cause: sled::Error },
    #[error("archive at {path}: index entry {key:?} is unreadable: {reason}")]
    CorruptIndex { path: PathBuf, key: String, reason: String },
    #[error("no problem with id {id} in {}", path.display())]
    NoSuchProblem { path: PathBuf, id: u64 },
    #[error("{0}")]
    BadQuery(String),
    #[error("archive at {0}: the read was called off before it finished")]
    Cancelled(PathBuf),
    #[error("record {id}: {reason}")]
    InvalidRecord { id: u64, reason: String },
    #[error("line {line}: {reason}")]
    Import { line: usize, reason: String },
    #[error(
        "archive at {path} holds problems up to id {held}, but problems up to id {written} were \
         written to it: its files were truncated or damaged. Restore it from a backup, or delete \
         {path}/{WATERMARK} to go on with what is left"
    )]
    Truncated { path: PathBuf, held: u64, written: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A file beside sled's own in the archive directory: the highest id known to be flushed. sled
/// recovers a damaged or truncated log silently, to its last good write; comparing the ids it
/// recovered with this mark turns that silent loss into an error.
pub const WATERMARK: &str = "selfplay-written";

fn read_watermark(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join(WATERMARK)).ok()?.trim().parse().ok()
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An open archive. Cheap to share across threads (`&Archive` is all the API needs).
pub struct Archive {
    db: sled::Db,
    tree: sled::Tree,
    path: PathBuf,
    next_id: AtomicU64,
    /// The highest id recorded in the [`WATERMARK`] file.
    watermark: std::sync::Mutex<u64>,
    /// Whether the references index covers every record (see [`REFS_INDEXED`]).
    refs_complete: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Archive {
    /// Opens the archive at `path`, creating it when there is none (in a new or empty directory:
    /// a directory holding anything else is refused).
    pub fn open(path: impl AsRef<Path>) -> Result<Archive> {
        Self::open_with(path.as_ref(), true)
    }

    /// Opens an archive that must already exist (for readers: never creates anything).
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Archive> {
        Self::open_with(path.as_ref(), false)
    }

    fn open_with(path: &Path, create: bool) -> Result<Archive> {
        let path = path.to_path_buf();
        let is_sled = path.join("conf").is_file() && path.join("db").is_file();
        if !create && !path.exists() {
            return Err(StoreError::Missing(path));
        }
        // Never scatter a database into a directory that holds something else.
        let empty_dir = || std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none());
        if path.exists() && !is_sled && (!create || !empty_dir()) {
            return Err(StoreError::NotArchive(path));
        }
        // A new archive is made whole; only one that was already there can hold an unfinished
        // snapshot (below).
        if create && !is_sled {
            create::create_whole(&path)?;
        }
        // sled releases its file lock from a background thread once the last handle is dropped,
        // so an archive closed a moment ago (by this process) can still look locked: retry
        // briefly before reporting another holder.
        let started = std::time::Instant::now();
        let db = loop {
            if is_sled {
                let removed = unfinished::remove_unfinished_snapshots(&path).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("archive at {}: removing an unfinished snapshot: {e}", path.display()),
                    )
                })?;
                if removed > 0 {
                    tracing::info!(
                        "archive at {}: removed {removed} snapshot(s) sled never finished",
                        path.display()
                    );
                }
            }
            match sled::Config::new().path(&path).cache_capacity(CACHE_BYTES).open() {
                Ok(db) => break db,
                Err(e) => match classify_open_error(&path, e) {
                    StoreError::Locked(_) if started.elapsed() < LOCK_WAIT => {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    other => return Err(other),
                },
            }
        };
        let sled_err = |cause| StoreError::Sled { path: path.clone(), cause };
        let meta = db.open_tree("meta").map_err(sled_err)?;
        let tree = db.open_tree("archive").map_err(sled_err)?;
        match meta.get(SCHEMA_KEY).map_err(sled_err)? {
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref()).ok().map(u32::from_be_bytes);
                if found != Some(SCHEMA_VERSION) {
                    let found =
                        found.map_or_else(|| format!("{:?} (unreadable)", v.as_ref()), |v| v.to_string());
                    return Err(StoreError::Schema { path, found });
                }
            }
            None if create && tree.is_empty() => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes()).map_err(sled_err)?;
                db.flush().map_err(sled_err)?;
            }
            None => return Err(StoreError::NotArchive(path)),
        }
        let next_id = match tree.scan_prefix([RECORD]).next_back() {
            Some(kv) => {
                let (k, _) = kv.map_err(sled_err)?;
                let last = id_from_suffix(&k);
                if last > MAX_ID {
                    // Written by a build that did not bound ids: the counter would overflow.
                    return Err(StoreError::Corrupt {
                        path,
                        id: last,
                        reason: format!("ids go up to {MAX_ID}; this archive cannot take another record"),
                    });
                }
                last + 1
            }
            None => 1,
        };
        let written = read_watermark(&path).unwrap_or(0);
        if written >= next_id {
            return Err(StoreError::Truncated { path, held: next_id - 1, written });
        }
        let indexed = match tree.get(REFS_INDEXED).map_err(sled_err)? {
            Some(v) => <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes).unwrap_or(1),
            None => 1,
        };
        let archive = Archive {
            db,
            tree,
            path,
            next_id: AtomicU64::new(next_id),
            watermark: std::sync::Mutex::new(written),
            refs_complete: std::sync::atomic::AtomicBool::new(indexed >= next_id),
        };
        // A writer brings the references index up to date; a reader never writes, and falls back
        // to scanning where the index is behind.
        if create && indexed < next_id {
            archive.index_references_from(indexed)?;
        }
        Ok(archive)
    }

    /// Adds the references of every record from id `from` on to the references index.
    fn index_references_from(&self, from: u64) -> Result<()> {
        let mut batch = sled::Batch::default();
        for kv in self.tree.range(record_key(from)..=record_key(MAX_ID)) {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let r = self.decode(id_from_suffix(&k), &v)?;
            for &parent in &r.references {
                batch.insert(&index::refs_key(parent, r.id)[..], &[][..]);
            }
        }
        batch.insert(&REFS_INDEXED[..], &self.next_id().to_be_bytes()[..]);
        self.tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.flush()?;
        self.refs_complete.store(true, AtomicOrdering::SeqCst);
        Ok(())
    }

    /// Whether [`Archive::referrers`] knows every record.
    pub(crate) fn references_indexed(&self) -> bool {
        self.refs_complete.load(AtomicOrdering::SeqCst)
    }

    /// Ids of the records that may reference `parent`, in increasing order (a rewritten record
    /// may have dropped the reference: check the record).
    pub(crate) fn referrers(&self, parent: u64) -> Result<Vec<u64>> {
        self.tree
            .scan_prefix(index::refs_prefix(parent))
            .map(|kv| kv.map(|(k, _)| id_from_suffix(&k)).map_err(|e| self.sled_err(e)))
            .collect()
    }

    /// Where the archive lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id the next appended record will get. Ids start at 1.
    pub fn next_id(&self) -> u64 {
        self.next_id.load(AtomicOrdering::SeqCst)
    }

    pub(crate) fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled { path: self.path.clone(), cause: source }
    }

    /// Appends one round's records in one atomic batch and flushes it to disk.
    ///
    /// Assigns each record the next id (written back into `records`) and, where unset, its
    /// creation time. Returns the ids assigned. Nothing is written if any record is invalid; ids
    /// only ever increase, so a failed write may leave a gap.
    pub fn append(&self, records: &mut [ProblemRecord]) -> Result<std::ops::Range<u64>> {
        for r in records.iter() {
            r.validate().map_err(|reason| StoreError::InvalidRecord { id: r.id, reason })?;
        }
        // Ids never pass MAX_ID (imports are bounded too), so the counter never overflows.
        let n = records.len() as u64;
        let first = self
            .next_id
            .fetch_update(AtomicOrdering::SeqCst, AtomicOrdering::SeqCst, |next| {
                next.checked_add(n).filter(|&end| end <= MAX_ID + 1)
            })
            .map_err(|next| StoreError::InvalidRecord {
                id: next,
                reason: format!("the archive is full: ids go up to {MAX_ID}"),
            })?;
        let now = now_ms();
        let mut batch = sled::Batch::default();
        let mut postings = index::Postings::default();
        for (i, r) in records.iter_mut().enumerate() {
            r.id = first + i as u64;
            if r.created_ms == 0 {
                r.created_ms = now;
            }
            if r.updated_ms == 0 {
                r.updated_ms = r.created_ms;
            }
            batch.insert(&record_key(r.id)[..], record::encode(r));
            postings.add(r);
        }
        postings.write(&mut batch);
        self.mark_references_indexed(&mut batch, first + n);
        fail::fail_point!("archive-append", |how| Err(failpoint::injected("archive-append", how).into()));
        self.tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.flush()?;
        self.mark_written(first + records.len() as u64 - 1)?;
        Ok(first..first + records.len() as u64)
    }

    /// Writes records under their own ids, replacing any record with the same id, in one atomic
    /// batch, flushed. For updates and imports.
    ///
    /// Records that are all new and above every stored id, in increasing order (an import into an
    /// archive, say), are indexed like an append; others get point postings for the values they
    /// change.
    pub fn put(&self, records: &[ProblemRecord]) -> Result<()> {
        for r in records {
            r.validate().map_err(|reason| StoreError::InvalidRecord { id: r.id, reason })?;
            if r.id == 0 {
                return Err(StoreError::InvalidRecord { id: 0, reason: "id 0 is reserved".into() });
            }
        }
        let next = self.next_id();
        let appending =
            records.first().is_some_and(|r| r.id >= next) && records.windows(2).all(|w| w[0].id < w[1].id);
        let mut batch = sled::Batch::default();
        let mut postings = index::Postings::default();
        for r in records {
            batch.insert(&record_key(r.id)[..], record::encode(r));
            if appending {
                postings.add(r);
            } else {
                index::write_points(&mut batch, r, self.get(r.id)?.as_ref());
            }
        }
        postings.write(&mut batch);
        if let Some(max) = records.iter().map(|r| r.id).max() {
            self.mark_references_indexed(&mut batch, next.max(max + 1));
        }
        fail::fail_point!("archive-put", |how| Err(failpoint::injected("archive-put", how).into()));
        self.tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.flush()?;
        if let Some(max) = records.iter().map(|r| r.id).max() {
            // Validated: max <= MAX_ID.
            self.next_id.fetch_max(max + 1, AtomicOrdering::SeqCst);
            self.mark_written(max)?;
        }
        Ok(())
    }

    /// With the batch: every record below `end` has its references indexed, when that held
    /// before the batch.
    fn mark_references_indexed(&self, batch: &mut sled::Batch, end: u64) {
        if self.references_indexed() {
            batch.insert(&REFS_INDEXED[..], &end.to_be_bytes()[..]);
        }
    }

    /// Records that ids up to `id` are flushed (see [`WATERMARK`]): a small file replaced
    /// atomically.
    fn mark_written(&self, id: u64) -> Result<()> {
        let mut mark = self.watermark.lock().unwrap_or_else(|e| e.into_inner());
        if *mark >= id {
            return Ok(());
        }
        // Written beside, synced, renamed, and the rename synced: after a power cut the mark is
        // the old one or the new one, never missing or empty.
        fail::fail_point!("watermark", |how| Err(failpoint::injected("watermark", how).into()));
        let tmp = self.path.join(format!("{WATERMARK}.tmp"));
        std::fs::File::create(&tmp)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, id.to_string().as_bytes())?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, self.path.join(WATERMARK)))
            .and_then(|()| std::fs::File::open(&self.path)?.sync_all())
            .map_err(|e| std::io::Error::new(e.kind(), format!("archive at {}: {e}", self.path.display())))?;
        *mark = id;
        Ok(())
    }

    /// Makes every write so far durable, through a power cut: sled's flush writes its log with
    /// `sync_file_range`, which reaches neither the drive's cache nor the file's metadata, so its
    /// files and the directory are then synced with `fsync`.
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map_err(|e| self.sled_err(e))?;
        fail::fail_point!("archive-sync", |how| Err(failpoint::injected("archive-sync", how).into()));
        let in_dir = |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("archive at {}: {e}", self.path.display()))
        };
        for entry in std::fs::read_dir(&self.path).map_err(in_dir)? {
            let entry = entry.map_err(in_dir)?;
            if entry.file_type().map_err(in_dir)?.is_file() {
                // A snapshot sled removes meanwhile is no longer the archive's.
                match std::fs::File::open(entry.path()) {
                    Ok(f) => f.sync_all().map_err(in_dir)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(in_dir(e).into()),
                }
            }
        }
        std::fs::File::open(&self.path).and_then(|d| d.sync_all()).map_err(in_dir)?;
        Ok(())
    }

    /// The record with this id.
    pub fn get(&self, id: u64) -> Result<Option<ProblemRecord>> {
        match self.tree.get(record_key(id)).map_err(|e| self.sled_err(e))? {
            None => Ok(None),
            Some(bytes) => self.decode(id, &bytes).map(Some),
        }
    }

    pub(crate) fn decode(&self, id: u64, bytes: &[u8]) -> Result<ProblemRecord> {
        record::decode(bytes).map_err(|reason| StoreError::Corrupt { path: self.path.clone(), id, reason })
    }

    /// Whether any archived problem has this canonical hash.
    pub fn contains_hash(&self, hash: u64) -> Result<bool> {
        let filter = Filter { hash: Some(hash), ..Filter::default() };
        self.scan(&filter, Order::Ascending, None).next().transpose().map(|r| r.is_some())
    }

    /// Every distinct canonical hash in the archive, read from the hash index (for a judge that
    /// checks repetition against the archive in memory).
    pub fn canonical_hashes(&self) -> Result<std::collections::HashSet<u64>> {
        let mut all = std::collections::HashSet::new();
        stats::for_each_hash_bucket(self, &mut |hashes| all.extend(hashes))?;
        Ok(all)
    }

    /// Records matching `filter`, streamed in id order (see [`Scan`]), after the id `after` in
    /// that order when given.
    pub fn scan(&self, filter: &Filter, order: Order, after: Option<u64>) -> Scan<'_> {
        Scan::new(self, filter.clone(), order, after)
    }

    /// The highest round of `run`'s records, from the run index: a few reads, not a scan.
    pub fn last_round(&self, run: &str) -> Result<Option<u64>> {
        index::last_round(self, run)
    }

    /// Counts and histograms over the records matching `filter`, streamed: memory does not grow
    /// with the archive.
    pub fn stats(&self, filter: &Filter) -> Result<Stats> {
        stats::compute(self, filter)
    }

    /// [`Archive::stats`] and, with `window`, the same for each window of `window` rounds, as
    /// `((first, last round), stats)` in round order, in one pass.
    pub fn stats_with_windows(&self, filter: &Filter, window: Option<u64>) -> Result<(Stats, Windows)> {
        stats::compute_with_windows(self, filter, window, &Stop::new())
    }

    /// Total size of the database on disk, in bytes.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(|e| self.sled_err(e))
    }

    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }
}

fn classify_open_error(path: &Path, e: sled::Error) -> StoreError {
    match &e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked(path.to_path_buf())
        }
        _ => StoreError::Sled { path: path.to_path_buf(), cause: e },
    }
}

pub(crate) fn record_key(id: u64) -> [u8; 9] {
    let mut k = [RECORD; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// The id at the end of a record or index key.
pub(crate) fn id_from_suffix(key: &[u8]) -> u64 {
    let tail: [u8; 8] = key[key.len() - 8..].try_into().expect("keys end in an 8-byte id");
    u64::from_be_bytes(tail)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn rec(run: &str, round: u64, text: &str, valid: bool) -> ProblemRecord {
        ProblemRecord {
            run: run.into(),
            round,
            domain: "arith".into(),
            text: text.into(),
            valid,
            reason: (!valid).then(|| "syntax".into()),
            ..Default::default()
        }
    }

    #[test]
    fn an_archive_without_the_references_index_is_read_by_scanning_and_caught_up_by_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let children = |a: &Archive| -> Vec<u64> {
            let l = Lineage::of(a, 1, 2).unwrap();
            l.records().keys().copied().collect()
        };
        let want = {
            let a = Archive::open(&path).unwrap();
            a.append(&mut [rec("r", 0, "1+2", true), rec("r", 0, "2+3", true)]).unwrap();
            let mut child = rec("r", 1, "(1+2)*3", true);
            child.references = vec![1];
            let mut grandchild = rec("r", 2, "((1+2)*3)-4", true);
            grandchild.references = vec![3, 2];
            a.append(&mut [child]).unwrap();
            a.append(&mut [grandchild]).unwrap();
            assert!(a.references_indexed());
            let found = children(&a);
            // As a build without the index would leave it: no keys, no mark.
            let keys: Vec<_> = a.tree.scan_prefix([REFS]).keys().map(|k| k.unwrap()).collect();
            assert_eq!(keys.len(), 3);
            for k in keys {
                a.tree.remove(k).unwrap();
            }
            a.tree.remove(REFS_INDEXED).unwrap();
            a.flush().unwrap();
            found
        };
        assert_eq!(want, vec![1, 3, 4]);
        let reader = Archive::open_existing(&path).unwrap();
        assert!(!reader.references_indexed(), "a reader does not write the index");
        assert_eq!(children(&reader), want);
        drop(reader);
        let writer = Archive::open(&path).unwrap();
        assert!(writer.references_indexed());
        assert_eq!(writer.referrers(3).unwrap(), vec![4]);
        assert_eq!(children(&writer), want);
    }

    #[test]
    fn append_assigns_ids_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        {
            let a = Archive::open(&path).unwrap();
            let mut batch = vec![rec("r", 0, "1+2", true), rec("r", 0, "1+", false)];
            assert_eq!(a.append(&mut batch).unwrap(), 1..3);
            assert_eq!(batch[1].id, 2);
            assert!(batch[0].created_ms > 0);
        }
        let a = Archive::open_existing(&path).unwrap();
        assert_eq!(a.next_id(), 3);
        assert_eq!(a.get(2).unwrap().unwrap().text, "1+");
        assert_eq!(a.get(3).unwrap(), None);
        let mut more = vec![rec("r", 1, "5*5", true)];
        assert_eq!(a.append(&mut more).unwrap(), 3..4);
    }

    #[test]
    fn a_truncated_database_is_reported_not_silently_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        {
            let a = Archive::open(&path).unwrap();
            for round in 0..20 {
                let mut batch: Vec<_> =
                    (0..10).map(|i| rec("r", round, &format!("{i}+{round}"), true)).collect();
                a.append(&mut batch).unwrap();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100)); // sled lets go of its lock
                                                                   // sled itself recovers a cut log to its last good write, without a word.
        std::fs::OpenOptions::new().write(true).open(path.join("db")).unwrap().set_len(1000).unwrap();
        let Err(err) = Archive::open_existing(&path) else { panic!("the loss goes unreported") };
        match &err {
            StoreError::Truncated { held, written, .. } => assert!(*written == 200 && *held < 200),
            other => panic!("{other}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("up to id 200 were written") && msg.contains(WATERMARK), "{msg}");
        assert!(matches!(Archive::open(&path), Err(StoreError::Truncated { .. })), "writers are refused too");
        // With the mark deleted, what is left opens.
        std::fs::remove_file(path.join(WATERMARK)).unwrap();
        assert!(Archive::open_existing(&path).unwrap().next_id() < 201);
    }

    #[test]
    fn opening_errors_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Archive::open_existing(&missing).unwrap_err();
        assert_eq!(err.to_string(), format!("no archive at {}", missing.display()));
        assert!(!missing.exists(), "readers never create an archive");

        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).unwrap();
        std::fs::write(plain.join("notes.txt"), "hi").unwrap();
        assert!(matches!(Archive::open_existing(&plain), Err(StoreError::NotArchive(_))));
        assert!(matches!(Archive::open(&plain), Err(StoreError::NotArchive(_))));
        assert_eq!(std::fs::read_dir(&plain).unwrap().count(), 1, "nothing was written there");
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        Archive::open(&empty).unwrap();

        let path = dir.path().join("a");
        let a = Archive::open(&path).unwrap();
        let err = Archive::open_existing(&path).unwrap_err();
        assert!(matches!(err, StoreError::Locked(_)), "{err}");
        assert!(err.to_string().contains("in use by another process"));
        drop(a);
        Archive::open_existing(&path).unwrap();
    }

    #[test]
    fn wrong_schema_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        {
            let a = Archive::open(&path).unwrap();
            a.append(&mut [rec("r", 0, "1+2", true)]).unwrap();
            let meta = a.db.open_tree("meta").unwrap();
            meta.insert(SCHEMA_KEY, &7u32.to_be_bytes()).unwrap();
            a.flush().unwrap();
        }
        let err = Archive::open(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("archive at {} has schema version 7; this build reads version 1", path.display())
        );
        // The refused open changed nothing: the record is still there under the old version.
        let db = sled::open(&path).unwrap();
        assert_eq!(db.open_tree("archive").unwrap().scan_prefix([RECORD]).count(), 1);
    }

    #[test]
    fn the_last_round_is_exact_through_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::open(dir.path().join("a")).unwrap();
        assert_eq!(a.last_round("r").unwrap(), None);
        let mut rs: Vec<ProblemRecord> = (1..=3).map(|round| rec("r", round, "1+2", true)).collect();
        a.append(&mut rs).unwrap();
        a.append(&mut [rec("other", 9, "1+1", true)]).unwrap();
        assert_eq!(a.last_round("r").unwrap(), Some(3));
        // The round-3 record moved back to round 1: its posting for round 3 is stale.
        let mut moved = rs[2].clone();
        moved.round = 1;
        a.put(std::slice::from_ref(&moved)).unwrap();
        assert_eq!(a.last_round("r").unwrap(), Some(2));
        // The round-1 record moved forward past every posting.
        let mut ahead = rs[0].clone();
        ahead.round = 7;
        a.put(std::slice::from_ref(&ahead)).unwrap();
        assert_eq!(a.last_round("r").unwrap(), Some(7));
        // And into another run: it no longer counts for this one.
        ahead.run = "other".into();
        a.put(std::slice::from_ref(&ahead)).unwrap();
        assert_eq!(a.last_round("r").unwrap(), Some(2));
        assert_eq!(a.last_round("other").unwrap(), Some(9));
        assert_eq!(a.last_round("none").unwrap(), None);
        let stats = a.stats(&Filter { run: Some("r".into()), ..Default::default() }).unwrap();
        assert_eq!(stats.rounds.map(|(_, max)| max), Some(2), "the same as a scan says");
    }

    #[test]
    fn put_moves_records_between_index_values() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::open(dir.path().join("a")).unwrap();
        let mut rs = vec![rec("r", 0, "1+2", true), rec("r", 0, "2+2", true)];
        rs[0].canonical_hash = Some(5);
        rs[0].solve_rate = Some(0.25);
        a.append(&mut rs).unwrap();
        assert!(a.contains_hash(5).unwrap());
        let mut r = rs[0].clone();
        r.canonical_hash = Some(6);
        r.solve_rate = Some(0.75);
        r.round = 3;
        a.put(std::slice::from_ref(&r)).unwrap();
        assert!(!a.contains_hash(5).unwrap(), "the stale posting is checked against the record");
        assert!(a.contains_hash(6).unwrap());
        let ids =
            |f: Filter| -> Vec<u64> { a.scan(&f, Order::Ascending, None).map(|r| r.unwrap().id).collect() };
        assert_eq!(ids(Filter { solve_rate: Some((0.7, 0.8)), ..Default::default() }), vec![1]);
        assert_eq!(ids(Filter { solve_rate: Some((0.2, 0.3)), ..Default::default() }), Vec::<u64>::new());
        assert_eq!(ids(Filter { solve_rate: Some((0.0, 1.0)), ..Default::default() }), vec![1]);
        assert_eq!(
            ids(Filter { run: Some("r".into()), rounds: Some((3, 3)), ..Default::default() }),
            vec![1]
        );
        assert_eq!(
            ids(Filter { run: Some("r".into()), rounds: Some((0, 0)), ..Default::default() }),
            vec![2]
        );
        assert_eq!(ids(Filter { run: Some("r".into()), ..Default::default() }), vec![1, 2]);
        let err = a.put(&[rec("", 0, "x", false)]).unwrap_err();
        assert!(err.to_string().contains("run name"), "{err}");
    }
}
