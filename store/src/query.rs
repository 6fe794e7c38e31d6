//! The archive's query protocol: the questions a reader may ask and the parts of their answers.
//!
//! One vocabulary for every reader. The command line answers a [`Query`] from a database it
//! opened; the daemon's endpoint carries the same values as JSON to a process that cannot open the
//! database (sled lets one process hold it), and the report and the terminal browser ask the same
//! way. Renaming a command-line flag changes nothing here: the wire format is these types, under
//! [`QUERY_VERSION`].

use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use crate::{Archive, Filter, Lineage, Order, ProblemRecord, Result, Stats, Stop, StoreError, Windows};

/// Version of [`Query`] and [`Reply`] as they travel between processes. A change that an older
/// reader would misread takes the next number.
pub const QUERY_VERSION: u32 = 2;

/// One question about an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Query {
    /// The records matching `filter`, in `order`, at most `limit` of them (all without one); one
    /// [`Reply::Record`] each.
    Page {
        #[serde(default)]
        filter: Filter,
        order: PageOrder,
        #[serde(default)]
        limit: Option<usize>,
    },
    /// One record; one [`Reply::Record`], or an error when there is no such problem.
    Record { id: u64 },
    /// The problems `id` came from and those that came of it, `depth` generations each way; one
    /// [`Reply::Lineage`].
    Lineage { id: u64, depth: usize },
    /// Counts and histograms of the matches, and with a `window`, of each window of that many
    /// rounds; one [`Reply::Stats`].
    Stats {
        #[serde(default)]
        filter: Filter,
        #[serde(default)]
        window: Option<u64>,
    },
}

/// The order of a page.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PageOrder {
    /// Id order, starting after the id `after`: oldest first, or newest first. Cheap at any depth.
    Id {
        #[serde(default)]
        newest: bool,
        #[serde(default)]
        after: Option<u64>,
    },
    /// By a field, ties by id, records without the field last; the first `offset` skipped. Reads
    /// every match, keeping only the best `offset + limit`.
    Field {
        key: SortKey,
        #[serde(default)]
        descending: bool,
        #[serde(default)]
        offset: usize,
    },
}

/// The fields a page can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    Id,
    Round,
    SolveRate,
    Padding,
    Depth,
    Interestingness,
    /// The proposer's total reward.
    Reward,
    /// The problem's length in characters.
    Length,
}

impl SortKey {
    /// The value `r` is sorted by; `None` sorts last.
    pub fn value(self, r: &ProblemRecord) -> Option<f64> {
        match self {
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
}

/// One part of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Record(Box<ProblemRecord>),
    Lineage(Box<Lineage>),
    Stats {
        stats: Box<Stats>,
        /// Per window of rounds, when the query asked for windows.
        windows: Option<Windows>,
    },
}

/// Answers `query` from `archive`, handing each part of the answer to `reply` as it is read: a
/// page of any length goes out one record at a time. An error from `reply` (a reader that went
/// away) stops the answer.
pub fn answer<E: From<StoreError>>(
    archive: &Archive,
    query: &Query,
    reply: impl FnMut(Reply) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    answer_until(archive, query, &Stop::new(), reply)
}

/// [`answer`], ending with [`StoreError::Cancelled`] soon after `stop` is set, between two records
/// read, even when none of them is sent (a stats query, a page sorted by a field, a filter that
/// matches nothing yet).
pub fn answer_until<E: From<StoreError>>(
    archive: &Archive,
    query: &Query,
    stop: &Stop,
    mut reply: impl FnMut(Reply) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    match query {
        Query::Page { filter, order: PageOrder::Id { newest, after }, limit } => {
            let order = if *newest { Order::Descending } else { Order::Ascending };
            let records = archive.scan(filter, order, *after).until(stop).take(limit.unwrap_or(usize::MAX));
            for r in records {
                reply(Reply::Record(Box::new(r?)))?;
            }
        }
        Query::Page { filter, order: PageOrder::Field { key, descending, offset }, limit } => {
            let limit = limit.unwrap_or(usize::MAX);
            let ids = sorted_ids(archive, filter, *key, *descending, *offset, limit, stop)?;
            for id in ids {
                let r = archive.get(id)?.ok_or_else(|| StoreError::Corrupt {
                    path: archive.path().to_path_buf(),
                    id,
                    reason: "removed while listing".into(),
                })?;
                reply(Reply::Record(Box::new(r)))?;
            }
        }
        Query::Record { id } => reply(Reply::Record(Box::new(get(archive, *id)?)))?,
        Query::Lineage { id, depth } => {
            reply(Reply::Lineage(Box::new(Lineage::of_until(archive, *id, *depth, stop)?)))?
        }
        Query::Stats { filter, window } => {
            if *window == Some(0) {
                return Err(StoreError::BadQuery("the window must be at least 1 round".into()).into());
            }
            let (stats, windows) = crate::stats::compute_with_windows(archive, filter, *window, stop)?;
            reply(Reply::Stats { stats: Box::new(stats), windows: window.map(|_| windows) })?;
        }
    }
    Ok(())
}

/// The record with this id, or an error naming the archive.
pub fn get(archive: &Archive, id: u64) -> Result<ProblemRecord> {
    archive.get(id)?.ok_or_else(|| StoreError::NoSuchProblem { path: archive.path().to_path_buf(), id })
}

/// Ids of the page `offset..offset + limit` of the matches sorted by `key` (ties by id), in one
/// streamed pass that keeps only the best `offset + limit` keys.
fn sorted_ids(
    archive: &Archive,
    filter: &Filter,
    key: SortKey,
    descending: bool,
    offset: usize,
    limit: usize,
    stop: &Stop,
) -> Result<Vec<u64>> {
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
    for r in archive.scan(filter, Order::Ascending, None).until(stop) {
        let r = r?;
        let value = key.value(&r).filter(|v| v.is_finite());
        let rank = Rank(value.is_none(), value.map_or(0.0, |v| if descending { -v } else { v }), r.id);
        if heap.len() < keep {
            heap.push(rank);
        } else if heap.peek().is_some_and(|worst| rank < *worst) {
            heap.pop();
            heap.push(rank);
        }
    }
    Ok(heap.into_sorted_vec().into_iter().skip(offset).map(|Rank(_, _, id)| id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_travel_as_the_documented_json() {
        let q = Query::Page {
            filter: Filter { valid: Some(true), ..Filter::default() },
            order: PageOrder::Field { key: SortKey::SolveRate, descending: true, offset: 20 },
            limit: Some(10),
        };
        let json = serde_json::to_value(&q).unwrap();
        assert_eq!(json["page"]["order"]["field"]["key"], "solve_rate");
        assert_eq!(json["page"]["filter"]["valid"], true);
        assert_eq!(serde_json::from_value::<Query>(json).unwrap(), q);
        // Defaults may be left out; unknown fields are refused, not ignored.
        let q: Query = serde_json::from_str(r#"{"stats": {}}"#).unwrap();
        assert_eq!(q, Query::Stats { filter: Filter::default(), window: None });
        let err = serde_json::from_str::<Query>(r#"{"record": {"id": 1, "json": true}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `json`"), "{err}");
    }
}
