//! Lineage: where a problem came from and what came of it.
//!
//! The proposer is shown reference problems from the archive; each record keeps their ids. Those
//! edges (reference → problem) form a DAG on petgraph. Ancestors are followed through each
//! record's `references`; descendants by scanning for records that name a problem of the current
//! generation, one streamed pass per generation, so memory holds only the generations found.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
pub use petgraph::Direction;
use serde::{Deserialize, Serialize};

use crate::{query, Archive, Filter, Order, ProblemRecord, Result, Stop};

/// The lineage of one problem, `depth` generations each way. It travels (a [`query::Reply`]) as
/// its records and edges; the graph is built again on arrival.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "LineageParts", from = "LineageParts")]
pub struct Lineage {
    pub root: u64,
    graph: DiGraph<u64, ()>,
    nodes: BTreeMap<u64, NodeIndex>,
    records: BTreeMap<u64, ProblemRecord>,
}

impl Lineage {
    pub fn of(archive: &Archive, id: u64, depth: usize) -> Result<Lineage> {
        Lineage::of_until(archive, id, depth, &Stop::new())
    }

    /// [`Lineage::of`], called off when `stop` is set.
    pub fn of_until(archive: &Archive, id: u64, depth: usize, stop: &Stop) -> Result<Lineage> {
        let root = query::get(archive, id)?;
        let mut l = Lineage::empty(id);
        l.add(root);
        // Ancestors: follow references.
        let mut generation = vec![id];
        for _ in 0..depth {
            if generation.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for child in generation {
                stop.check(archive)?;
                for parent in l.records[&child].references.clone() {
                    // A reference to a problem not in the archive (an import without it) is shown
                    // by id alone.
                    if let Some(r) = archive.get(parent)? {
                        if !l.records.contains_key(&parent) {
                            next.push(parent);
                            l.add(r);
                        }
                    } else {
                        l.node(parent);
                    }
                    l.edge(parent, child);
                }
            }
            generation = next;
        }
        // Descendants: through the references index where it covers the archive (a lookup per
        // problem), else one pass per generation over the problems that came after. Either way in
        // id order, and each found record checked (a rewritten one may have dropped a reference).
        let mut generation: BTreeSet<u64> = [id].into();
        for _ in 0..depth {
            if generation.is_empty() {
                break;
            }
            let found: Vec<ProblemRecord> = if archive.references_indexed() {
                let mut children = BTreeSet::new();
                for &parent in &generation {
                    stop.check(archive)?;
                    children.extend(archive.referrers(parent)?);
                }
                children.into_iter().filter_map(|c| archive.get(c).transpose()).collect::<Result<_>>()?
            } else {
                let first = *generation.iter().next().expect("not empty");
                let mut found = Vec::new();
                for r in archive.scan(&Filter::default(), Order::Ascending, Some(first)).until(stop) {
                    let r = r?;
                    if r.references.iter().any(|p| generation.contains(p)) {
                        found.push(r);
                    }
                }
                found
            };
            let mut next = BTreeSet::new();
            for r in found {
                let parents: Vec<u64> =
                    r.references.iter().copied().filter(|p| generation.contains(p)).collect();
                if parents.is_empty() {
                    continue;
                }
                let child = r.id;
                if !l.records.contains_key(&child) {
                    next.insert(child);
                    l.add(r);
                }
                for p in parents {
                    l.edge(p, child);
                }
            }
            generation = next;
        }
        Ok(l)
    }

    /// The problems found, by id (a reference to a problem not in the archive has none).
    pub fn records(&self) -> &BTreeMap<u64, ProblemRecord> {
        &self.records
    }

    /// A lineage of `root` with nothing found yet.
    fn empty(root: u64) -> Lineage {
        Lineage { root, graph: DiGraph::new(), nodes: BTreeMap::new(), records: BTreeMap::new() }
    }

    /// The edges (reference, problem), by id.
    fn edges(&self) -> BTreeSet<(u64, u64)> {
        self.graph.raw_edges().iter().map(|e| (self.graph[e.source()], self.graph[e.target()])).collect()
    }

    fn node(&mut self, id: u64) -> NodeIndex {
        *self.nodes.entry(id).or_insert_with(|| self.graph.add_node(id))
    }

    fn add(&mut self, r: ProblemRecord) {
        self.node(r.id);
        self.records.insert(r.id, r);
    }

    fn edge(&mut self, parent: u64, child: u64) {
        let (p, c) = (self.node(parent), self.node(child));
        if self.graph.find_edge(p, c).is_none() {
            self.graph.add_edge(p, c, ());
        }
    }

    /// Ids one step from `id`: its references (`Incoming`) or the problems it was one for.
    pub fn next(&self, id: u64, dir: Direction) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .nodes
            .get(&id)
            .map(|&n| self.graph.neighbors_directed(n, dir).map(|m| self.graph[m]).collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    fn label(&self, id: u64) -> String {
        match self.records.get(&id) {
            Some(r) => {
                let p = r.solve_rate.map_or("-".to_string(), |p| format!("{p:.2}"));
                format!("{id}  round {}  p {p}  {}", r.round, crate::safe_text::for_terminal(&r.text))
            }
            None => format!("{id}  (not in this archive)"),
        }
    }

    fn tree(&self, id: u64, dir: Direction, prefix: &str, seen: &mut BTreeSet<u64>, out: &mut String) {
        let next = self.next(id, dir);
        for (i, n) in next.iter().enumerate() {
            let last = i + 1 == next.len();
            out.push_str(&format!("{prefix}{}{}\n", if last { "└─ " } else { "├─ " }, self.label(*n)));
            if seen.insert(*n) {
                let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
                self.tree(*n, dir, &deeper, seen, out);
            }
        }
    }

    /// Both trees as text.
    pub fn render(&self) -> String {
        let mut out = format!("{}\n", self.label(self.root));
        out.push_str("references (ancestors):\n");
        self.tree(self.root, Direction::Incoming, "  ", &mut BTreeSet::new(), &mut out);
        out.push_str("referenced by (descendants):\n");
        self.tree(self.root, Direction::Outgoing, "  ", &mut BTreeSet::new(), &mut out);
        out
    }

    /// Every problem reached by following references from the root (`Incoming`), or by following
    /// what referenced it (`Outgoing`), the root aside.
    pub fn relatives(&self, dir: Direction) -> BTreeSet<u64> {
        let mut seen = BTreeSet::new();
        let mut queue = vec![self.root];
        while let Some(id) = queue.pop() {
            for n in self.next(id, dir) {
                if seen.insert(n) {
                    queue.push(n);
                }
            }
        }
        seen
    }

    /// `{"id", "ancestors": [{id, round, text, references}], "descendants": [...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let side = |dir: Direction| {
            self.relatives(dir)
                .into_iter()
                .map(|id| match self.records.get(&id) {
                    Some(r) => serde_json::json!({"id": id, "round": r.round, "text": r.text, "references": r.references}),
                    None => serde_json::json!({"id": id, "missing": true}),
                })
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "id": self.root,
            "ancestors": side(Direction::Incoming),
            "descendants": side(Direction::Outgoing),
        })
    }
}

/// A lineage as it travels: the root, the records found and the edges (reference, problem).
#[derive(Serialize, Deserialize)]
struct LineageParts {
    root: u64,
    records: Vec<ProblemRecord>,
    edges: Vec<(u64, u64)>,
}

impl From<Lineage> for LineageParts {
    fn from(l: Lineage) -> Self {
        let edges = l.edges().into_iter().collect();
        LineageParts { root: l.root, records: l.records.into_values().collect(), edges }
    }
}

impl From<LineageParts> for Lineage {
    fn from(parts: LineageParts) -> Self {
        let mut l = Lineage::empty(parts.root);
        l.node(parts.root);
        for r in parts.records {
            l.add(r);
        }
        for (parent, child) in parts.edges {
            l.edge(parent, child);
        }
        l
    }
}

impl PartialEq for Lineage {
    /// The same problems joined the same way (node order inside the graph aside).
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root && self.records == other.records && self.edges() == other.edges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::rec;

    #[test]
    fn a_lineage_arrives_as_it_left() {
        let dir = tempfile::tempdir().unwrap();
        let archive = Archive::open(dir.path().join("a")).unwrap();
        // 1 and 2 are references of 3; 3 of 4; 4 also names 99, a problem not in the archive.
        let mut records: Vec<ProblemRecord> =
            ["1+1", "2+2", "1+2", "3*3"].map(|t| rec("r", 1, t, true)).into();
        records[2].references = vec![1, 2];
        records[3].references = vec![3, 99];
        archive.append(&mut records).unwrap();
        let lineage = Lineage::of(&archive, 3, 3).unwrap();
        assert_eq!(lineage.edges(), BTreeSet::from([(1, 3), (2, 3), (3, 4)]));
        let back: Lineage = serde_json::from_str(&serde_json::to_string(&lineage).unwrap()).unwrap();
        assert_eq!(back, lineage);
        assert_eq!(back.render(), lineage.render());
        assert_eq!(back.to_json(), lineage.to_json());
        let from_4 = Lineage::of(&archive, 4, 1).unwrap();
        assert_eq!(from_4.relatives(Direction::Incoming), BTreeSet::from([3, 99]));
        assert!(from_4.render().contains("99  (not in this archive)"), "{}", from_4.render());
    }
}
