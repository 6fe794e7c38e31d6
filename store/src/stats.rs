//! Counts and histograms over the archive, computed in one streaming pass.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{index, Archive, Filter, Order, ProblemRecord, Result, StoreError, HASH};

/// Stats per window of rounds: `((first round, last round), stats)`, in round order.
pub type Windows = Vec<((u64, u64), Stats)>;

/// Counts in equal-width bins over `[0, 1]`; the last bin includes 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Lower edge of each bin.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn unit(bins: usize) -> Self {
        Histogram { edges: (0..bins).map(|i| i as f64 / bins as f64).collect(), counts: vec![0; bins] }
    }

    pub fn add(&mut self, v: f64) {
        let bins = self.counts.len();
        let i = ((v.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        self.counts[i] += 1;
    }
}

/// What the archive holds (of the records matching a filter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub total: u64,
    pub valid: u64,
    pub invalid: u64,
    /// Invalid problems by reason.
    pub invalid_reasons: BTreeMap<String, u64>,
    /// Problems by run.
    pub runs: BTreeMap<String, u64>,
    /// Lowest and highest round seen.
    pub rounds: Option<(u64, u64)>,
    /// Valid problems some solver attempted (those with a solve rate).
    pub attempted: u64,
    pub mean_solve_rate: Option<f64>,
    pub solve_rate: Histogram,
    /// Valid problems whose canonical form removed some operation.
    pub padded: u64,
    pub mean_padding: Option<f64>,
    pub padding: Histogram,
    /// Valid problems by composition depth.
    pub depth: BTreeMap<u32, u64>,
    /// Distinct canonical forms and problems repeating one, over the whole archive (only when no
    /// filter is set: read from the hash index in one ordered pass).
    pub distinct_canonical: Option<u64>,
    pub canonical_duplicates: Option<u64>,
    /// Problems with an interestingness score; its mean and histogram.
    #[serde(default)]
    pub scored: u64,
    #[serde(default)]
    pub mean_interestingness: Option<f64>,
    #[serde(default = "unit10")]
    pub interestingness: Histogram,
    /// Problems a scorer failed on (stored with the scorer's error).
    #[serde(default)]
    pub scorer_errors: u64,
    /// Means of the proposer's reward terms, valid and invalid problems alike.
    #[serde(default)]
    pub rewards: RewardMeans,
}

fn unit10() -> Histogram {
    Histogram::unit(10)
}

/// The mean of each reward term over the problems that have it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RewardMeans {
    /// Problems with rewards.
    pub rewarded: u64,
    pub total: Option<f64>,
    pub frontier: Option<f64>,
    pub padding_factor: Option<f64>,
    pub repetition: Option<f64>,
    pub interestingness: Option<f64>,
    /// Of valid problems rewarded with the target term: the fraction off their target.
    pub target_miss: Option<f64>,
    pub invalid: Option<f64>,
}

/// Sums and counts behind [`RewardMeans`]: total, frontier, padding factor, repetition,
/// interestingness, target miss, invalid.
#[derive(Default)]
struct RewardSums([(f64, u64); 7]);

impl RewardSums {
    fn add(&mut self, w: &crate::Rewards) {
        let terms = [
            Some(w.total),
            w.frontier,
            Some(w.padding_factor),
            Some(w.repetition),
            w.interestingness,
            w.target_miss,
            w.invalid,
        ];
        for (slot, v) in self.0.iter_mut().zip(terms) {
            if let Some(v) = v {
                slot.0 += v;
                slot.1 += 1;
            }
        }
    }

    fn means(&self, rewarded: u64) -> RewardMeans {
        let m = |i: usize| {
            let (sum, n): (f64, u64) = self.0[i];
            (n > 0).then(|| sum / n as f64)
        };
        RewardMeans {
            rewarded,
            total: m(0),
            frontier: m(1),
            padding_factor: m(2),
            repetition: m(3),
            interestingness: m(4),
            target_miss: m(5),
            invalid: m(6),
        }
    }
}

/// Stats built up one record at a time.
struct Builder {
    s: Stats,
    solve_sum: f64,
    padding_sum: f64,
    with_padding: u64,
    interest_sum: f64,
    rewards: RewardSums,
}

impl Builder {
    fn new() -> Self {
        Builder {
            s: Stats {
                total: 0,
                valid: 0,
                invalid: 0,
                invalid_reasons: BTreeMap::new(),
                runs: BTreeMap::new(),
                rounds: None,
                attempted: 0,
                mean_solve_rate: None,
                solve_rate: Histogram::unit(10),
                padded: 0,
                mean_padding: None,
                padding: Histogram::unit(10),
                depth: BTreeMap::new(),
                distinct_canonical: None,
                canonical_duplicates: None,
                scored: 0,
                mean_interestingness: None,
                interestingness: Histogram::unit(10),
                scorer_errors: 0,
                rewards: RewardMeans::default(),
            },
            solve_sum: 0.0,
            padding_sum: 0.0,
            with_padding: 0,
            interest_sum: 0.0,
            rewards: RewardSums::default(),
        }
    }

    fn add(&mut self, r: &ProblemRecord) {
        let s = &mut self.s;
        s.total += 1;
        match s.runs.get_mut(&r.run) {
            Some(n) => *n += 1,
            None => {
                s.runs.insert(r.run.clone(), 1);
            }
        }
        s.rounds = Some(match s.rounds {
            None => (r.round, r.round),
            Some((lo, hi)) => (lo.min(r.round), hi.max(r.round)),
        });
        if let Some(w) = &r.rewards {
            s.rewards.rewarded += 1;
            self.rewards.add(w);
        }
        if let Some(v) = r.interestingness {
            s.scored += 1;
            self.interest_sum += v;
            s.interestingness.add(v);
        }
        if r.scorer_error.is_some() {
            s.scorer_errors += 1;
        }
        if !r.valid {
            s.invalid += 1;
            let reason = r.reason.as_deref().unwrap_or("unknown");
            match s.invalid_reasons.get_mut(reason) {
                Some(n) => *n += 1,
                None => {
                    s.invalid_reasons.insert(reason.to_string(), 1);
                }
            }
            return;
        }
        s.valid += 1;
        if let Some(p) = r.solve_rate {
            s.attempted += 1;
            self.solve_sum += p;
            s.solve_rate.add(p);
        }
        if let Some(p) = r.padding {
            self.with_padding += 1;
            self.padding_sum += p;
            s.padding.add(p);
        }
        if r.essential_ops < r.surface_ops {
            s.padded += 1;
        }
        if let Some(d) = r.depth {
            *s.depth.entry(d).or_default() += 1;
        }
    }

    fn finish(mut self) -> Stats {
        self.s.mean_solve_rate = (self.s.attempted > 0).then(|| self.solve_sum / self.s.attempted as f64);
        self.s.mean_padding = (self.with_padding > 0).then(|| self.padding_sum / self.with_padding as f64);
        self.s.mean_interestingness = (self.s.scored > 0).then(|| self.interest_sum / self.s.scored as f64);
        self.s.rewards = self.rewards.means(self.s.rewards.rewarded);
        self.s
    }
}

pub(crate) fn compute(archive: &Archive, filter: &Filter) -> Result<Stats> {
    Ok(compute_with_windows(archive, filter, None, &crate::Stop::new())?.0)
}

/// The stats of the matching records and, with `window`, of each window of `window` rounds
/// (rounds `k·window ..= k·window + window − 1`, in round order), in one streamed pass; memory
/// holds one summary per window.
pub(crate) fn compute_with_windows(
    archive: &Archive,
    filter: &Filter,
    window: Option<u64>,
    stop: &crate::Stop,
) -> Result<(Stats, Windows)> {
    let mut whole = Builder::new();
    let mut windows: BTreeMap<u64, Builder> = BTreeMap::new();
    let width = window.map(|w| w.max(1));
    for r in archive.scan(filter, Order::Ascending, None).until(stop) {
        let r = r?;
        // Lets a fault test make a stats query slow enough to be called off midway.
        fail::fail_point!("stats-record");
        whole.add(&r);
        if let Some(w) = width {
            windows.entry(r.round / w).or_insert_with(Builder::new).add(&r);
        }
    }
    let mut s = whole.finish();
    if filter.is_empty() {
        stop.check(archive)?;
        let (distinct, dups) = canonical_counts(archive)?;
        s.distinct_canonical = Some(distinct);
        s.canonical_duplicates = Some(dups);
    }
    let w = width.unwrap_or(1);
    let windows = windows.into_iter().map(|(k, b)| ((k * w, k * w + w - 1), b.finish())).collect();
    Ok((s, windows))
}

/// Distinct canonical hashes and repeats of them, one hash bucket at a time.
fn canonical_counts(archive: &Archive) -> Result<(u64, u64)> {
    let (mut distinct, mut dups) = (0u64, 0u64);
    for_each_hash_bucket(archive, &mut |mut hashes| {
        hashes.sort_unstable();
        for (i, h) in hashes.iter().enumerate() {
            if i > 0 && hashes[i - 1] == *h {
                dups += 1;
            } else {
                distinct += 1;
            }
        }
    })?;
    Ok((distinct, dups))
}

/// Calls `f` with the current canonical hash of every archived problem that has one, a hash
/// bucket at a time, read from the hash index (no record is decoded but rewritten ones): memory
/// holds one bucket's hashes (a sixteenth of the archive's, 8 bytes each), never the records.
pub(crate) fn for_each_hash_bucket(archive: &Archive, f: &mut dyn FnMut(Vec<u64>)) -> Result<()> {
    let corrupt = |k: &[u8], reason: String| StoreError::CorruptIndex {
        path: archive.path().to_path_buf(),
        key: String::from_utf8_lossy(k).into_owned(),
        reason,
    };
    // Records rewritten with a new hash have point postings (rare); their range pairs are stale.
    // Their current hash is read from the record itself.
    let mut rewritten: HashMap<u64, Option<u64>> = HashMap::new();
    for bucket in 0..index::HASH_BUCKETS {
        for kv in archive.tree().scan_prefix(index::bucket_prefix(HASH, bucket, index::POINT)) {
            let (k, _) = kv.map_err(|e| archive.sled_err(e))?;
            let id = crate::id_from_suffix(&k);
            if let Entry::Vacant(e) = rewritten.entry(id) {
                e.insert(archive.get(id)?.and_then(|r| r.canonical_hash));
            }
        }
    }
    for bucket in 0..index::HASH_BUCKETS {
        let mut hashes: Vec<u64> =
            rewritten.values().filter_map(|h| h.filter(|&h| index::hash_bucket(h) == bucket)).collect();
        for kv in archive.tree().scan_prefix(index::bucket_prefix(HASH, bucket, index::RANGE)) {
            let (k, v) = kv.map_err(|e| archive.sled_err(e))?;
            let pairs = index::decode_pairs(&v).map_err(|reason| corrupt(&k, reason))?;
            hashes.extend(pairs.into_iter().filter(|(_, id)| !rewritten.contains_key(id)).map(|(h, _)| h));
        }
        f(hashes);
    }
    Ok(())
}
