//! Filters over the archive, and the streaming scan that answers them from the best index.
//!
//! A scan reads one record at a time: memory does not depend on the size of the archive. It picks
//! its source by what the filter pins down, most selective first: a canonical hash (`h` index), a
//! run (`g` index, narrowed to the round range), a solve-rate range (`s` index, the buckets it
//! covers merged back into id order); otherwise all records in id order. Every record from the
//! source is then checked against the whole filter, so a stale index posting never shows.

use std::str::FromStr;

use sled::IVec;

use crate::index::{self, IdStream, Merged, PostingError, Want, POINT, RANGE};
use crate::{id_from_suffix, record_key, Archive, ProblemRecord, Result, StoreError};
use crate::{HASH, RECORD, SOLVE};

/// Which records to read. Every field that is set must match; ranges are inclusive.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    pub run: Option<String>,
    pub rounds: Option<(u64, u64)>,
    pub valid: Option<bool>,
    /// Reason of invalid problems (`syntax`, `range`, ...).
    pub reason: Option<String>,
    pub solve_rate: Option<(f64, f64)>,
    pub padding: Option<(f64, f64)>,
    pub depth: Option<(u32, u32)>,
    /// Interestingness range: records without a score never match it.
    pub interestingness: Option<(f64, f64)>,
    /// Scorer that gave the interestingness: `name` matches every version, `name@version` one.
    pub scorer: Option<String>,
    /// Substring of the problem text.
    pub contains: Option<String>,
    pub hash: Option<u64>,
}

impl Filter {
    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether `r` passes every condition.
    pub fn matches(&self, r: &ProblemRecord) -> bool {
        fn within<T: PartialOrd>(v: Option<T>, range: &Option<(T, T)>) -> bool {
            match range {
                None => true,
                Some((lo, hi)) => v.is_some_and(|v| *lo <= v && v <= *hi),
            }
        }
        self.run.as_ref().is_none_or(|run| *run == r.run)
            && within(Some(r.round), &self.rounds)
            && self.valid.is_none_or(|v| v == r.valid)
            && self.reason.as_ref().is_none_or(|reason| r.reason.as_ref() == Some(reason))
            && within(r.solve_rate, &self.solve_rate)
            && within(r.padding, &self.padding)
            && within(r.depth, &self.depth)
            && within(r.interestingness, &self.interestingness)
            && self
                .scorer
                .as_ref()
                .is_none_or(|want| r.scorer.as_deref().is_some_and(|s| scorer_matches(want, s)))
            && self.contains.as_ref().is_none_or(|s| r.text.contains(s.as_str()))
            && self.hash.is_none_or(|h| r.canonical_hash == Some(h))
    }
}

/// Whether the scorer filter `want` (`name` or `name@version`) names `scorer` (`name@version`).
fn scorer_matches(want: &str, scorer: &str) -> bool {
    if want.contains('@') {
        want == scorer
    } else {
        scorer.split_once('@').map_or(scorer, |(name, _)| name) == want
    }
}

/// Parses an inclusive range: `LO..HI`, `LO..`, `..HI`, or a single value `V` (= `V..V`). Open
/// ends take `min` and `max`.
pub fn parse_range<T>(s: &str, min: T, max: T) -> Result<(T, T), String>
where
    T: FromStr + PartialOrd + Copy + std::fmt::Display,
{
    let value =
        |part: &str| part.trim().parse::<T>().map_err(|_| format!("{part:?} in range {s:?} is not a number"));
    let (lo, hi) = match s.split_once("..") {
        Some((lo, hi)) => (
            if lo.trim().is_empty() { min } else { value(lo)? },
            if hi.trim().is_empty() { max } else { value(hi)? },
        ),
        None => {
            let v = value(s)?;
            (v, v)
        }
    };
    if !(min <= lo && lo <= hi && hi <= max) {
        return Err(format!("range {s:?} must satisfy {min} <= low <= high <= {max}"));
    }
    Ok((lo, hi))
}

/// Scan direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// Where a scan gets candidate records from.
enum Source {
    /// Record entries themselves.
    Records(Box<sled::Iter>),
    /// Ids from index postings.
    Postings(Merged),
}

/// A streaming scan over the records matching a filter. Yields records in id order (through the
/// run index: in round order, then id order, which is id order for everything the lab writes).
/// A record that cannot be read is yielded as an error and the scan goes on; an error of the
/// database itself ends it.
pub struct Scan<'a> {
    archive: &'a Archive,
    filter: Filter,
    order: Order,
    after: Option<u64>,
    source: Source,
    failed: bool,
    stop: Option<crate::Stop>,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(archive: &'a Archive, filter: Filter, order: Order, after: Option<u64>) -> Self {
        let tree = archive.tree();
        let desc = order == Order::Descending;
        let streams = if let Some(h) = filter.hash {
            let bucket = index::hash_bucket(h);
            let open = |kind| {
                let entries = tree.scan_prefix(index::bucket_prefix(HASH, bucket, kind));
                IdStream::new(entries, kind, Want::Hash(h), desc)
            };
            Some(vec![open(RANGE), open(POINT)])
        } else if let Some(run) = &filter.run {
            let (lo, hi) = filter.rounds.unwrap_or((0, u64::MAX));
            let (start, end) = index::round_range(run, lo, hi);
            Some(vec![
                IdStream::new(tree.range(start..=end), RANGE, Want::All, desc),
                IdStream::new(tree.scan_prefix(index::round_points(run)), POINT, Want::Rounds(lo, hi), desc),
            ])
        } else if let Some((lo, hi)) = filter.solve_rate {
            let (b0, b1) = (ProblemRecord::solve_rate_bucket(lo), ProblemRecord::solve_rate_bucket(hi));
            let open = |b, kind| {
                let entries = tree.scan_prefix(index::bucket_prefix(SOLVE, b, kind));
                IdStream::new(entries, kind, Want::All, desc)
            };
            Some((b0..=b1).flat_map(|b| [open(b, RANGE), open(b, POINT)]).collect())
        } else {
            None
        };
        let source = match streams {
            Some(streams) => Source::Postings(Merged::new(streams, desc)),
            None => Source::Records(Box::new(match (order, after) {
                // Paging through all records seeks straight to the page.
                (Order::Ascending, Some(a)) => {
                    tree.range(record_key(a.saturating_add(1))..=record_key(u64::MAX))
                }
                (Order::Descending, Some(a)) => tree.range(record_key(0)..record_key(a)),
                _ => tree.scan_prefix([RECORD]),
            })),
        };
        Scan { archive, filter, order, after, source, failed: false, stop: None }
    }

    /// This scan, ending with [`StoreError::Cancelled`] at the first record after `stop` is set.
    pub fn until(mut self, stop: &crate::Stop) -> Self {
        self.stop = Some(stop.clone());
        self
    }

    /// The next candidate: its id and, when the source holds it, the record bytes.
    fn next_candidate(&mut self) -> Option<Result<(u64, Option<IVec>)>> {
        let desc = self.order == Order::Descending;
        match &mut self.source {
            Source::Records(it) => {
                let kv = if desc { it.next_back() } else { it.next() }?;
                Some(kv.map(|(k, v)| (id_from_suffix(&k), Some(v))).map_err(|e| self.archive.sled_err(e)))
            }
            Source::Postings(merged) => Some(match merged.next_id()? {
                Ok(id) => Ok((id, None)),
                Err(PostingError::Sled(e)) => Err(self.archive.sled_err(e)),
                Err(PostingError::Corrupt { key, reason }) => Err(StoreError::CorruptIndex {
                    path: self.archive.path().to_path_buf(),
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason,
                }),
            }),
        }
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<ProblemRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(Err(e)) = self.stop.as_ref().map(|s| s.check(self.archive)) {
                self.failed = true;
                return Some(Err(e));
            }
            let (id, bytes) = match self.next_candidate()? {
                Ok(c) => c,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            if let Some(after) = self.after {
                let passed = match self.order {
                    Order::Ascending => id <= after,
                    Order::Descending => id >= after,
                };
                if passed {
                    continue;
                }
            }
            let record = match bytes {
                Some(b) => self.archive.decode(id, &b),
                // A posting whose record is gone (never written by the archive itself, but cheap
                // to tolerate) is skipped.
                None => match self.archive.get(id) {
                    Ok(Some(r)) => Ok(r),
                    Ok(None) => continue,
                    Err(e) => Err(e),
                },
            };
            match record {
                Ok(r) if self.filter.matches(&r) => return Some(Ok(r)),
                Ok(_) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
