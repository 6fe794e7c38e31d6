//! Secondary indexes as posting lists, written once per batch.
//!
//! sled pays a roughly fixed cost per key written (a few microseconds), so one index key per
//! record per index would make each insert cost about four record inserts. Instead, each batch
//! writes one *posting* per index value it touches, listing the ids of its records that have that
//! value:
//!
//! | key | value |
//! |---|---|
//! | `g` run `\0` `R` round first-id | ids of the batch in that run and round |
//! | `s` bucket `R` first-id | ids of the batch in that solve-rate bucket |
//! | `h` hash-bucket `R` first-id | (hash, id) pairs of the batch whose hash falls in that bucket |
//!
//! where `R` marks a *range* posting. Batches of new records take ids above every id already
//! stored, so range postings of one index value never overlap and, read in key order, list ids in
//! increasing order. A round of 256 problems writes about 40 postings instead of 768 index keys.
//!
//! The references index is one key per reference, `f` parent child (empty value): how a
//! lineage finds the problems a problem was a reference for without a scan.
//!
//! Records rewritten under an existing id ([`crate::Archive::put`]) get *point* postings (`P`, one
//! key per record and changed value, the id in the key: `g` run `\0` `P` id holds the round,
//! `s` bucket `P` id nothing, `h` hash-bucket `P` id the hash). Old postings are never rewritten: a
//! posting can be stale, so every reader re-checks each record against its filter, and merges
//! range and point streams by id, dropping repeats.

use std::collections::{BTreeMap, VecDeque};

use crate::{ProblemRecord, HASH, REFS, ROUND, SOLVE};

/// Kind byte of a range posting.
pub(crate) const RANGE: u8 = 0;
/// Kind byte of a point posting.
pub(crate) const POINT: u8 = 1;
/// Canonical hashes are spread over this many postings per batch (top 4 bits of the hash).
pub(crate) const HASH_BUCKETS: u8 = 16;

pub(crate) fn hash_bucket(hash: u64) -> u8 {
    (hash >> 60) as u8
}

pub(crate) fn run_prefix(run: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(run.len() + 19);
    k.push(ROUND);
    k.extend_from_slice(run.as_bytes());
    k.push(0);
    k
}

fn round_range_key(run: &str, round: u64, first: u64) -> Vec<u8> {
    let mut k = run_prefix(run);
    k.push(RANGE);
    k.extend_from_slice(&round.to_be_bytes());
    k.extend_from_slice(&first.to_be_bytes());
    k
}

fn round_point_key(run: &str, id: u64) -> Vec<u8> {
    let mut k = run_prefix(run);
    k.push(POINT);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn bucket_key(index: u8, bucket: u8, kind: u8, id: u64) -> Vec<u8> {
    let mut k = vec![index, bucket, kind];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Ids as deltas from the previous (the first from 0), postcard varints: a few bytes per id.
fn encode_ids(ids: &[u64]) -> Vec<u8> {
    let deltas: Vec<u64> = ids.iter().scan(0, |prev, &id| Some(id - std::mem::replace(prev, id))).collect();
    postcard::to_allocvec(&deltas).expect("integers always serialize")
}

pub(crate) fn decode_ids(bytes: &[u8]) -> Result<Vec<u64>, String> {
    let deltas: Vec<u64> = postcard::from_bytes(bytes).map_err(|e| format!("corrupt posting: {e}"))?;
    let mut prev = 0u64;
    deltas
        .into_iter()
        .map(|d| {
            prev = prev.checked_add(d).ok_or("corrupt posting: id overflow")?;
            Ok(prev)
        })
        .collect()
}

/// (hash, id) pairs in id order.
fn encode_pairs(pairs: &[(u64, u64)]) -> Vec<u8> {
    postcard::to_allocvec(pairs).expect("integers always serialize")
}

pub(crate) fn decode_pairs(bytes: &[u8]) -> Result<Vec<(u64, u64)>, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("corrupt posting: {e}"))
}

/// The postings of one batch, built up record by record.
#[derive(Default)]
pub(crate) struct Postings {
    round: BTreeMap<(String, u64), Vec<u64>>,
    solve: BTreeMap<u8, Vec<u64>>,
    hash: BTreeMap<u8, Vec<(u64, u64)>>,
    refs: Vec<(u64, u64)>,
}

impl Postings {
    /// Adds a record; records must come in increasing id order.
    pub(crate) fn add(&mut self, r: &ProblemRecord) {
        self.round.entry((r.run.clone(), r.round)).or_default().push(r.id);
        if let Some(p) = r.solve_rate {
            self.solve.entry(ProblemRecord::solve_rate_bucket(p)).or_default().push(r.id);
        }
        if let Some(h) = r.canonical_hash {
            self.hash.entry(hash_bucket(h)).or_default().push((h, r.id));
        }
        self.refs.extend(r.references.iter().map(|&parent| (parent, r.id)));
    }

    /// Writes one range posting per index value into `batch`.
    pub(crate) fn write(self, batch: &mut sled::Batch) {
        for ((run, round), ids) in self.round {
            batch.insert(round_range_key(&run, round, ids[0]), encode_ids(&ids));
        }
        for (bucket, ids) in self.solve {
            batch.insert(bucket_key(SOLVE, bucket, RANGE, ids[0]), encode_ids(&ids));
        }
        for (bucket, pairs) in self.hash {
            batch.insert(bucket_key(HASH, bucket, RANGE, pairs[0].1), encode_pairs(&pairs));
        }
        for (parent, child) in self.refs {
            batch.insert(&refs_key(parent, child)[..], &[][..]);
        }
    }
}

/// Point postings for a record rewritten under its id, for each indexed value that differs from
/// the record it replaces (all of them when it replaces none).
pub(crate) fn write_points(batch: &mut sled::Batch, new: &ProblemRecord, old: Option<&ProblemRecord>) {
    if old.is_none_or(|o| (o.run.as_str(), o.round) != (new.run.as_str(), new.round)) {
        batch.insert(round_point_key(&new.run, new.id), &new.round.to_be_bytes()[..]);
    }
    let bucket = |r: &ProblemRecord| r.solve_rate.map(ProblemRecord::solve_rate_bucket);
    if let Some(b) = bucket(new).filter(|&b| old.is_none_or(|o| bucket(o) != Some(b))) {
        batch.insert(bucket_key(SOLVE, b, POINT, new.id), &[][..]);
    }
    if let Some(h) = new.canonical_hash.filter(|&h| old.is_none_or(|o| o.canonical_hash != Some(h))) {
        batch.insert(bucket_key(HASH, hash_bucket(h), POINT, new.id), &h.to_be_bytes()[..]);
    }
    for &parent in new.references.iter().filter(|p| old.is_none_or(|o| !o.references.contains(p))) {
        batch.insert(&refs_key(parent, new.id)[..], &[][..]);
    }
}

/// The references index's key of `child` referencing `parent`.
pub(crate) fn refs_key(parent: u64, child: u64) -> [u8; 17] {
    let mut k = [REFS; 17];
    k[1..9].copy_from_slice(&parent.to_be_bytes());
    k[9..].copy_from_slice(&child.to_be_bytes());
    k
}

/// Key prefix of the records referencing `parent`.
pub(crate) fn refs_prefix(parent: u64) -> [u8; 9] {
    let mut k = [REFS; 9];
    k[1..].copy_from_slice(&parent.to_be_bytes());
    k
}

/// Key range of one kind of posting for a solve-rate or hash bucket.
pub(crate) fn bucket_prefix(index: u8, bucket: u8, kind: u8) -> [u8; 3] {
    [index, bucket, kind]
}

/// Key range of a run's range postings over a round range.
pub(crate) fn round_range(run: &str, lo: u64, hi: u64) -> (Vec<u8>, Vec<u8>) {
    (round_range_key(run, lo, 0), round_range_key(run, hi, u64::MAX))
}

/// Key prefix of a run's point postings.
pub(crate) fn round_points(run: &str) -> Vec<u8> {
    let mut k = run_prefix(run);
    k.push(POINT);
    k
}

/// The highest round of `run`'s records, exact, without reading the run's records: the highest
/// range posting that still holds a record of that run and round (a rewritten record leaves its
/// old posting stale), against the rounds of the run's rewritten records (its point postings).
pub(crate) fn last_round(archive: &crate::Archive, run: &str) -> crate::Result<Option<u64>> {
    let tree = archive.tree();
    let holds = |id: u64, round: u64| -> crate::Result<bool> {
        Ok(archive.get(id)?.is_some_and(|r| r.run == run && r.round == round))
    };
    let mut last = None;
    for kv in tree.scan_prefix(round_points(run)) {
        let (k, _) = kv.map_err(|e| archive.sled_err(e))?;
        if let Some(r) = archive.get(crate::id_from_suffix(&k))?.filter(|r| r.run == run) {
            last = last.max(Some(r.round));
        }
    }
    let (start, end) = round_range(run, 0, u64::MAX);
    for kv in tree.range(start..=end).rev() {
        let (k, v) = kv.map_err(|e| archive.sled_err(e))?;
        // The key ends in the round and the posting's first id, 8 bytes each.
        let round = u64::from_be_bytes(k[k.len() - 16..k.len() - 8].try_into().expect("8 bytes"));
        if last.is_some_and(|l| l >= round) {
            break;
        }
        let corrupt = |reason| crate::StoreError::CorruptIndex {
            path: archive.path().to_path_buf(),
            key: String::from_utf8_lossy(&k).into_owned(),
            reason,
        };
        for id in decode_ids(&v).map_err(corrupt)? {
            if holds(id, round)? {
                return Ok(Some(round));
            }
        }
    }
    Ok(last)
}

/// Which ids of a posting stream to keep.
#[derive(Clone, Copy)]
pub(crate) enum Want {
    All,
    /// Hash postings: only ids with this canonical hash.
    Hash(u64),
    /// Run point postings: only ids whose round is in this range.
    Rounds(u64, u64),
}

/// Ids from the postings of one key range, all of one kind, in id order (either direction).
pub(crate) struct IdStream {
    entries: sled::Iter,
    kind: u8,
    want: Want,
    descending: bool,
    pending: VecDeque<u64>,
}

impl IdStream {
    pub(crate) fn new(entries: sled::Iter, kind: u8, want: Want, descending: bool) -> Self {
        IdStream { entries, kind, want, descending, pending: VecDeque::new() }
    }

    /// The next id, or an error naming what could not be read.
    pub(crate) fn next_id(&mut self) -> Option<Result<u64, PostingError>> {
        loop {
            let next = if self.descending { self.pending.pop_back() } else { self.pending.pop_front() };
            if let Some(id) = next {
                return Some(Ok(id));
            }
            let entry = if self.descending { self.entries.next_back() } else { self.entries.next() };
            let (key, value) = match entry? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(PostingError::Sled(e))),
            };
            let corrupt = |reason: String| PostingError::Corrupt { key: key.to_vec(), reason };
            let value_u64 = || <[u8; 8]>::try_from(value.as_ref()).ok().map(u64::from_be_bytes);
            match (self.kind, self.want) {
                (RANGE, Want::Hash(h)) => match decode_pairs(&value) {
                    Ok(pairs) => self.pending.extend(pairs.into_iter().filter(|p| p.0 == h).map(|p| p.1)),
                    Err(e) => return Some(Err(corrupt(e))),
                },
                (RANGE, _) => match decode_ids(&value) {
                    Ok(ids) => self.pending.extend(ids),
                    Err(e) => return Some(Err(corrupt(e))),
                },
                (_, want) => {
                    let keep = match want {
                        Want::All => true,
                        Want::Hash(h) => value_u64() == Some(h),
                        Want::Rounds(lo, hi) => value_u64().is_some_and(|r| lo <= r && r <= hi),
                    };
                    if keep {
                        self.pending.push_back(crate::id_from_suffix(&key));
                    }
                }
            }
        }
    }
}

/// A posting that could not be read.
pub(crate) enum PostingError {
    Sled(sled::Error),
    Corrupt { key: Vec<u8>, reason: String },
}

/// Several id streams merged into one, in id order, each id once.
pub(crate) struct Merged {
    streams: Vec<IdStream>,
    heads: Vec<Option<u64>>,
    started: bool,
    descending: bool,
    last: Option<u64>,
}

impl Merged {
    pub(crate) fn new(streams: Vec<IdStream>, descending: bool) -> Self {
        let heads = vec![None; streams.len()];
        Merged { streams, heads, started: false, descending, last: None }
    }

    pub(crate) fn next_id(&mut self) -> Option<Result<u64, PostingError>> {
        if !self.started {
            self.started = true;
            for i in 0..self.streams.len() {
                if let Err(e) = self.refill(i) {
                    return Some(Err(e));
                }
            }
        }
        loop {
            let best = (0..self.heads.len())
                .filter_map(|i| self.heads[i].map(|id| (i, id)))
                .reduce(|a, b| if (b.1 < a.1) != self.descending && b.1 != a.1 { b } else { a })?;
            if let Err(e) = self.refill(best.0) {
                return Some(Err(e));
            }
            if self.last != Some(best.1) {
                self.last = Some(best.1);
                return Some(Ok(best.1));
            }
        }
    }

    fn refill(&mut self, i: usize) -> Result<(), PostingError> {
        self.heads[i] = self.streams[i].next_id().transpose()?;
        Ok(())
    }
}
