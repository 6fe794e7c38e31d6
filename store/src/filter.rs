//! Filters over the archive, and the streaming scan that answers them from the best index.
//!
//! A scan reads one record at a time: memory does not depend on the size of the archive. It picks
//! its source by what the filter pins down, most selective first: a canonical hash (`h` index), a
//! run (`g` index, narrowed to the round range), a solve-rate range (`s` index, the buckets it
//! covers merged back into id order); otherwise all records in id order. Every record from the
//! source is then checked against the whole filter.

use std::str::FromStr;

use sled::IVec;

use crate::{hash_prefix, id_from_suffix, record_key, run_prefix, Archive, ProblemRecord, Result};
use crate::{RECORD, SOLVE};

/// Which records to read. Every field that is set must match; ranges are inclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub run: Option<String>,
    pub rounds: Option<(u64, u64)>,
    pub valid: Option<bool>,
    /// Reason of invalid problems (`syntax`, `range`, ...).
    pub reason: Option<String>,
    pub solve_rate: Option<(f64, f64)>,
    pub padding: Option<(f64, f64)>,
    pub depth: Option<(u32, u32)>,
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
            && self.contains.as_ref().is_none_or(|s| r.text.contains(s.as_str()))
            && self.hash.is_none_or(|h| r.canonical_hash == Some(h))
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
    Records(sled::Iter),
    /// Keys of one index range ending in ids.
    Index(sled::Iter),
    /// Several index ranges, each in id order, merged by their head ids.
    Merge { ranges: Vec<sled::Iter>, heads: Vec<Head> },
}

/// The next id of one merged range.
#[derive(Clone, Copy)]
enum Head {
    Unread,
    Id(u64),
    Done,
}

/// A streaming scan over the records matching a filter. Yields records in id order (for the run
/// index: in round order, then id order, which is id order for everything the lab writes).
pub struct Scan<'a> {
    archive: &'a Archive,
    filter: Filter,
    order: Order,
    after: Option<u64>,
    source: Source,
    failed: bool,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(archive: &'a Archive, filter: Filter, order: Order, after: Option<u64>) -> Self {
        let tree = archive.tree();
        let source = if let Some(h) = filter.hash {
            Source::Index(tree.scan_prefix(hash_prefix(h)))
        } else if let Some(run) = &filter.run {
            let prefix = run_prefix(run);
            let (lo, hi) = filter.rounds.unwrap_or((0, u64::MAX));
            let start = [&prefix[..], &lo.to_be_bytes(), &[0; 8]].concat();
            let end = [&prefix[..], &hi.to_be_bytes(), &[0xff; 8]].concat();
            Source::Index(tree.range(start..=end))
        } else if let Some((lo, hi)) = filter.solve_rate {
            let (b0, b1) = (ProblemRecord::solve_rate_bucket(lo), ProblemRecord::solve_rate_bucket(hi));
            let ranges: Vec<_> = (b0..=b1).map(|b| tree.scan_prefix([SOLVE, b])).collect();
            Source::Merge { heads: vec![Head::Unread; ranges.len()], ranges }
        } else {
            // Paging through all records seeks straight to the page.
            let range = match (order, after) {
                (Order::Ascending, Some(a)) => {
                    tree.range(record_key(a.saturating_add(1))..record_key(u64::MAX))
                }
                (Order::Descending, Some(a)) => tree.range(record_key(0)..record_key(a)),
                _ => tree.scan_prefix([RECORD]),
            };
            Source::Records(range)
        };
        Scan { archive, filter, order, after, source, failed: false }
    }

    /// The next candidate: its id and, when the source holds it, the record bytes.
    fn next_candidate(&mut self) -> Option<Result<(u64, Option<IVec>)>> {
        let desc = self.order == Order::Descending;
        let step = |it: &mut sled::Iter| if desc { it.next_back() } else { it.next() };
        let sled_err = |e| self.archive.sled_err(e);
        match &mut self.source {
            Source::Records(it) => {
                step(it).map(|kv| kv.map(|(k, v)| (id_from_suffix(&k), Some(v))).map_err(sled_err))
            }
            Source::Index(it) => {
                step(it).map(|kv| kv.map(|(k, _)| (id_from_suffix(&k), None)).map_err(sled_err))
            }
            Source::Merge { ranges, heads } => {
                let mut best: Option<(usize, u64)> = None;
                for (i, (range, head)) in ranges.iter_mut().zip(heads.iter_mut()).enumerate() {
                    if let Head::Unread = head {
                        *head = match step(range) {
                            None => Head::Done,
                            Some(Ok((k, _))) => Head::Id(id_from_suffix(&k)),
                            Some(Err(e)) => return Some(Err(sled_err(e))),
                        };
                    }
                    if let Head::Id(id) = *head {
                        let better = best.is_none_or(|(_, b)| if desc { id > b } else { id < b });
                        if better {
                            best = Some((i, id));
                        }
                    }
                }
                let (i, id) = best?;
                heads[i] = Head::Unread;
                Some(Ok((id, None)))
            }
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
                // An index entry whose record is gone (never written by the archive itself, but
                // cheap to tolerate) is skipped.
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
