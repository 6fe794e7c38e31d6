//! A person's pairwise judgements of interestingness, kept in the archive's `ratings` tree.
//!
//! Keys are big-endian rating ids (from 1, in the order given); values are the rating as JSON
//! (small, and readable by any tool). Each side names the problem by its text, with its archive id
//! when it came from the archive, so that ratings survive an archive they were not made on.

use serde::{Deserialize, Serialize};

use crate::{Archive, Result, StoreError};

/// Who won.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Winner {
    A,
    B,
    Tie,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rated {
    /// The problem's archive id, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub text: String,
}

/// One judgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    /// Assigned when stored.
    #[serde(default)]
    pub id: u64,
    pub a: Rated,
    pub b: Rated,
    pub winner: Winner,
    /// Where it came from: `terminal` or `import`.
    pub source: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
}

impl Archive {
    fn ratings_tree(&self) -> Result<sled::Tree> {
        self.db.open_tree("ratings").map_err(|e| self.sled_err(e))
    }

    /// Stores ratings in one atomic, flushed batch, giving each the next id; returns the ids.
    pub fn add_ratings(&self, ratings: &mut [Rating]) -> Result<Vec<u64>> {
        let tree = self.ratings_tree()?;
        let first = match tree.last().map_err(|e| self.sled_err(e))? {
            Some((k, _)) => u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])) + 1,
            None => 1,
        };
        let mut batch = sled::Batch::default();
        let mut ids = Vec::with_capacity(ratings.len());
        for (r, id) in ratings.iter_mut().zip(first..) {
            r.id = id;
            let value = serde_json::to_vec(r).expect("ratings serialize");
            batch.insert(&r.id.to_be_bytes()[..], value);
            ids.push(r.id);
        }
        tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.flush()?;
        Ok(ids)
    }

    /// Every rating, in the order given; an unreadable one is an error naming it.
    pub fn ratings(&self) -> Result<Vec<Rating>> {
        let tree = self.ratings_tree()?;
        tree.iter()
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.sled_err(e))?;
                let id = u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8]));
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    path: self.path.clone(),
                    id,
                    reason: format!("rating {id} is unreadable: {e}"),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_kept_in_order_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let side = |t: &str| Rated { id: None, text: t.into() };
        let mut batch = vec![
            Rating {
                id: 0,
                a: side("1+2"),
                b: side("3*4"),
                winner: Winner::B,
                source: "import".into(),
                created_ms: 1,
            },
            Rating {
                id: 0,
                a: side("5"),
                b: side("6-1"),
                winner: Winner::Tie,
                source: "import".into(),
                created_ms: 2,
            },
        ];
        {
            let a = Archive::open(dir.path().join("a")).unwrap();
            assert_eq!(a.add_ratings(&mut batch).unwrap(), vec![1, 2]);
        }
        let a = Archive::open_existing(dir.path().join("a")).unwrap();
        let mut more = vec![batch[0].clone()];
        assert_eq!(a.add_ratings(&mut more).unwrap(), vec![3]);
        let all = a.ratings().unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(all[1], batch[1]);
        // Ratings are not problems.
        assert_eq!(a.stats(&crate::Filter::default()).unwrap().total, 0);
    }
}
