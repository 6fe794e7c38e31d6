//! The skill graph of the arithmetic domain.
//!
//! *Atomic skills* are one operator on literals of one size (`*` on 2-digit numbers). *Compositions*
//! are one operator applied to the result of another, on one side (`+` with a `*` on its left:
//! `a*b+c`). Every solved-for problem counts its attempts and successes toward each skill it uses;
//! each composition has edges from the two atomic skills it composes (at the problem's literal
//! size), so the graph says what a composition is made of.
//!
//! A skill is *mastered* when its solve rate is at least `mastery` over at least `min_attempts`
//! attempts. The *frontier* is the compositions not yet mastered whose parts all are: what the
//! solver is ready to learn next.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use problem::arith::Expr;
use serde::{Deserialize, Serialize};

/// One skill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Skill {
    /// An operator on literals of `digits` digits (the problem's largest literal).
    Atomic { op: char, digits: u8 },
    /// `outer` applied to the result of `inner`, found on the `left` or right of `outer`.
    Composition { outer: char, inner: char, left: bool },
}

impl std::fmt::Display for Skill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skill::Atomic { op, digits } => write!(f, "{op} on {digits}-digit"),
            Skill::Composition { outer, inner, left: true } => write!(f, "(a{inner}b){outer}c"),
            Skill::Composition { outer, inner, left: false } => write!(f, "a{outer}(b{inner}c)"),
        }
    }
}

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

fn digits(v: u32) -> u8 {
    if v >= 100 {
        3
    } else if v >= 10 {
        2
    } else {
        1
    }
}

fn largest_literal(e: &Expr) -> u32 {
    match e {
        Expr::Lit { value, .. } => *value,
        Expr::Bin { lhs, rhs, .. } => largest_literal(lhs).max(largest_literal(rhs)),
    }
}

/// The skills a problem exercises, each with the atomic skills it is made of.
///
/// A single operation exercises its atomic skill; a longer problem exercises its compositions
/// (whose parts are the atomic skills at the problem's literal size). Atomic mastery is thus
/// measured on atomic problems alone, not blurred by the compositions around it.
pub fn skills_of(e: &Expr) -> BTreeMap<Skill, Vec<Skill>> {
    let size = digits(largest_literal(e));
    let mut out = BTreeMap::new();
    if let Expr::Bin { op, lhs, rhs, .. } = e {
        if matches!((lhs.as_ref(), rhs.as_ref()), (Expr::Lit { .. }, Expr::Lit { .. })) {
            out.insert(Skill::Atomic { op: op.symbol(), digits: size }, Vec::new());
            return out;
        }
    }
    fn walk(e: &Expr, size: u8, out: &mut BTreeMap<Skill, Vec<Skill>>) {
        if let Expr::Bin { op, lhs, rhs, .. } = e {
            let outer = op.symbol();
            for (child, left) in [(lhs, true), (rhs, false)] {
                if let Expr::Bin { op: inner, .. } = child.as_ref() {
                    let inner = inner.symbol();
                    out.insert(
                        Skill::Composition { outer, inner, left },
                        vec![
                            Skill::Atomic { op: outer, digits: size },
                            Skill::Atomic { op: inner, digits: size },
                        ],
                    );
                }
                walk(child, size, out);
            }
        }
    }
    walk(e, size, &mut out);
    out
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

    /// Counts `correct` of `attempts` toward every skill of `problem`.
    pub fn observe(&mut self, problem: &Expr, attempts: u64, correct: u64) {
        for (skill, parts) in skills_of(problem) {
            let n = self.node(skill);
            let stats = &mut self.graph[n].1;
            stats.attempts += attempts;
            stats.correct += correct;
            for part in parts {
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
    use problem::arith::parse;
    use problem::Limits;

    fn expr(s: &str) -> Expr {
        parse(s, &Limits::default()).unwrap()
    }

    #[test]
    fn skills_of_a_problem() {
        let s = skills_of(&expr("(12+3)*4-5"));
        let names: Vec<String> = s.keys().map(|k| k.to_string()).collect();
        assert_eq!(names, vec!["(a+b)*c", "(a*b)-c"], "{names:?}");
        let atomic: Vec<String> = skills_of(&expr("12*3")).keys().map(|k| k.to_string()).collect();
        assert_eq!(atomic, vec!["* on 2-digit"]);
        assert_eq!(s[&Skill::Composition { outer: '*', inner: '+', left: true }].len(), 2);
        assert!(skills_of(&expr("7")).is_empty());
        assert!(skills_of(&expr("1-(2*3)")).contains_key(&Skill::Composition {
            outer: '-',
            inner: '*',
            left: false
        }));
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
