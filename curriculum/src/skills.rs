//! The skill graph: what the solver has mastered, and what it is ready to learn next.
//!
//! Skills ([`Skill`]) are atomic (one operator on literals of one size) or compositions (one
//! operator applied to the result of another); the domain says which a problem uses
//! ([`problem::Domain::skills`]). Every solved-for problem counts its attempts and successes
//! toward each skill it uses; each composition has edges from the two atomic skills it composes
//! (at the problem's literal size), so the graph says what a composition is made of.
//!
//! A skill is *mastered* when its solve rate is at least `mastery` over at least `min_attempts`
//! attempts. The *frontier* is the compositions not yet mastered whose parts all are: what the
//! solver is ready to learn next.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
pub use problem::Skill;
use serde::{Deserialize, Serialize};

/// Attempts and successes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SkillStats {
    pub attempts: u64,
    pub correct: u64,
}

impl SkillStats {
    pub fn rate(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.correct as f64 / self.attempts as f64)
    }
}

/// Skills, their statistics, and what composes what.
#[derive(Debug, Clone, Default)]
pub struct SkillGraph {
    graph: DiGraph<(Skill, SkillStats), ()>,
    nodes: BTreeMap<Skill, NodeIndex>,
    /// Solve rate from which a skill counts as mastered.
    pub mastery: f64,
    /// Attempts needed before a skill can count as mastered.
    pub min_attempts: u64,
}

impl SkillGraph {
    pub fn new(mastery: f64, min_attempts: u64) -> Self {
        SkillGraph { mastery, min_attempts, ..Default::default() }
    }

    fn node(&mut self, s: Skill) -> NodeIndex {
        if let Some(&n) = self.nodes.get(&s) {
            return n;
        }
        let n = self.graph.add_node((s, SkillStats::default()));
        self.nodes.insert(s, n);
        n
    }

    /// Counts `correct` of `attempts` toward every skill a problem uses (`skills`, each with the
    /// atomic skills it is made of: [`problem::Domain::skills`]).
    pub fn observe(&mut self, skills: &BTreeMap<Skill, Vec<Skill>>, attempts: u64, correct: u64) {
        for (&skill, parts) in skills {
            let n = self.node(skill);
            let stats = &mut self.graph[n].1;
            stats.attempts += attempts;
            stats.correct += correct;
            for &part in parts {
                let p = self.node(part);
                if self.graph.find_edge(p, n).is_none() {
                    self.graph.add_edge(p, n, ());
                }
            }
        }
    }

    pub fn stats(&self, s: &Skill) -> Option<SkillStats> {
        self.nodes.get(s).map(|&n| self.graph[n].1)
    }

    pub fn mastered(&self, s: &Skill) -> bool {
        self.stats(s).is_some_and(|st| st.attempts >= self.min_attempts && st.rate() >= Some(self.mastery))
    }

    /// Compositions not mastered whose parts all are, with their solve rates.
    pub fn frontier(&self) -> Vec<(Skill, SkillStats)> {
        self.graph
            .node_indices()
            .filter_map(|n| {
                let (skill, stats) = self.graph[n];
                let is_composition = matches!(skill, Skill::Composition { .. });
                let parts_mastered = self
                    .graph
                    .neighbors_directed(n, Direction::Incoming)
                    .all(|p| self.mastered(&self.graph[p].0));
                (is_composition && !self.mastered(&skill) && parts_mastered).then_some((skill, stats))
            })
            .collect()
    }

    /// Every skill with its statistics, in a stable order.
    pub fn skills(&self) -> Vec<(Skill, SkillStats)> {
        self.nodes.iter().map(|(s, &n)| (*s, self.graph[n].1)).collect()
    }

    /// The graph in Graphviz DOT: mastered skills green, frontier compositions orange.
    pub fn to_dot(&self) -> String {
        let frontier: BTreeSet<Skill> = self.frontier().into_iter().map(|(s, _)| s).collect();
        let mut out = String::from(
            "digraph skills {\n  rankdir=LR;\n  node [shape=box, style=filled, fillcolor=white];\n",
        );
        for (skill, &n) in &self.nodes {
            let stats = self.graph[n].1;
            let rate = stats.rate().map_or("-".to_string(), |r| format!("{r:.2}"));
            let color = if self.mastered(skill) {
                "palegreen"
            } else if frontier.contains(skill) {
                "orange"
            } else {
                "white"
            };
            out.push_str(&format!(
                "  n{} [label=\"{skill}\\n{rate} of {}\", fillcolor={color}];\n",
                n.index(),
                stats.attempts
            ));
        }
        for e in self.graph.edge_indices() {
            let (a, b) = self.graph.edge_endpoints(e).expect("edges have endpoints");
            out.push_str(&format!("  n{} -> n{};\n", a.index(), b.index()));
        }
        out.push_str("}\n");
        out
    }

    /// The statistics alone, for saving; [`SkillGraph::restore`] rebuilds the graph.
    pub fn snapshot(&self) -> Vec<(Skill, SkillStats, Vec<Skill>)> {
        self.nodes
            .iter()
            .map(|(s, &n)| {
                let parts =
                    self.graph.neighbors_directed(n, Direction::Incoming).map(|p| self.graph[p].0).collect();
                (*s, self.graph[n].1, parts)
            })
            .collect()
    }

    pub fn restore(mastery: f64, min_attempts: u64, snapshot: &[(Skill, SkillStats, Vec<Skill>)]) -> Self {
        let mut g = SkillGraph::new(mastery, min_attempts);
        for (s, stats, parts) in snapshot {
            let n = g.node(*s);
            g.graph[n].1 = *stats;
            for p in parts {
                let pn = g.node(*p);
                g.graph.add_edge(pn, n, ());
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::{Arith, Domain};

    fn expr(s: &str) -> BTreeMap<Skill, Vec<Skill>> {
        Arith.skills(s)
    }

    #[test]
    fn the_frontier_is_compositions_of_mastered_parts() {
        let mut g = SkillGraph::new(0.8, 8);
        // Atomic + and * mastered on 1-digit numbers.
        g.observe(&expr("3+4"), 8, 8);
        g.observe(&expr("3*4"), 8, 7);
        // Their composition not yet.
        g.observe(&expr("2*3+4"), 8, 2);
        // A composition with an unmastered part (- never seen alone).
        g.observe(&expr("9-2*3"), 8, 1);
        let frontier: Vec<Skill> = g.frontier().into_iter().map(|(s, _)| s).collect();
        assert_eq!(frontier, vec![Skill::Composition { outer: '+', inner: '*', left: true }]);
        // Atomic skills count atomic problems only.
        assert_eq!(
            g.stats(&Skill::Atomic { op: '*', digits: 1 }).unwrap(),
            SkillStats { attempts: 8, correct: 7 }
        );
        assert!(g.mastered(&Skill::Atomic { op: '*', digits: 1 }));
        assert_eq!(
            g.stats(&Skill::Atomic { op: '-', digits: 1 }).unwrap().attempts,
            0,
            "a part seen only in compositions"
        );
        let dot = g.to_dot();
        assert!(
            dot.starts_with("digraph skills {") && dot.contains("(a*b)+c") && dot.contains("->"),
            "{dot}"
        );
        let again = SkillGraph::restore(0.8, 8, &g.snapshot());
        assert_eq!(again.skills(), g.skills());
        assert_eq!(again.frontier(), g.frontier());
    }
}
