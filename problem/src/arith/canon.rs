//! The canonical form of an arithmetic problem, as a hash-consed DAG on petgraph.
//!
//! Two problems that differ only by padding or by the order of commutative operands have the same
//! canonical form. The form keeps the *work* of a problem (`3+4` stays `3+4`; it is not folded to
//! `7`) but removes what costs the solver nothing or what is written twice:
//!
//! * **AC-flattening and sorting.** Chains of `+`/`-` become one sum node of signed terms, chains of
//!   `*` one product node; operands are sorted (literals by value, then products, then sums, each by
//!   canonical text). `a-(b-c)` is the sum `a - b + c`.
//! * **Identities.** `x+0`, `x-0` and `x*1` drop the identity; `x*0` is `0`.
//! * **Cancellation and like terms.** Equal terms of a sum are collected with their signed counts:
//!   `x-x` and `(x+k)-k` cancel, `x+x+x` is `3*x`, `1+1+1+1` is `4`. A product with exactly one
//!   literal factor `k` counts as the term `X` with coefficient `k`, so `2*x+3*x` is `5*x`.
//!
//! Every node is built by a smart constructor from children that are already canonical, so a node
//! is canonical when it is made and the whole form is a fixed point of these rules: canonicalizing
//! the canonical text gives the same form. Nodes are hash-consed, so equal subexpressions are one
//! node and equality of subexpressions is equality of node indices.
//!
//! Sizes: the *essential* operation count is the number of operators in the canonical text (shared
//! subexpressions count each time they are written); the *distinct* count counts each DAG node once.

use std::cmp::Ordering;
use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, EdgeRef};

use super::parse::{Expr, Op};

/// The structure of a node. Children are node indices of already-canonical nodes, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Shape {
    Lit(i64),
    /// Signed terms, positives first; `true` marks a subtracted term. At least one term, never a
    /// single positive one.
    Sum(Vec<(bool, NodeIndex)>),
    /// At least two factors, none `0` or `1`.
    Product(Vec<NodeIndex>),
}

/// A node of the canonical DAG.
#[derive(Debug, Clone)]
pub struct Node {
    shape: Shape,
    /// Canonical text of the subexpression.
    text: String,
    /// Operators in `text`.
    ops: u32,
}

impl Node {
    pub fn text(&self) -> &str {
        &self.text
    }

    fn rank(&self) -> u8 {
        match self.shape {
            Shape::Lit(_) => 0,
            Shape::Product(_) => 1,
            Shape::Sum(_) => 2,
        }
    }
}

/// The operands of a chain of `+`/`-` with their signs, parentheses removed.
fn additive_operands<'e>(e: &'e Expr, sign: i64, out: &mut Vec<(i64, &'e Expr)>) {
    match e {
        Expr::Bin { op: op @ (Op::Add | Op::Sub), lhs, rhs, .. } => {
            additive_operands(lhs, sign, out);
            additive_operands(rhs, if *op == Op::Sub { -sign } else { sign }, out);
        }
        _ => out.push((sign, e)),
    }
}

/// Edge weights: `-1` for a subtracted term of a sum, `1` otherwise.
pub type Sign = i8;

/// A canonical form: the DAG and its root.
#[derive(Debug, Clone)]
pub struct Canonical {
    graph: DiGraph<Node, Sign>,
    consed: HashMap<Shape, NodeIndex>,
    root: NodeIndex,
}

impl Canonical {
    /// The canonical form of `expr`.
    pub fn of(expr: &Expr) -> Canonical {
        let mut b = Canonical { graph: DiGraph::new(), consed: HashMap::new(), root: NodeIndex::new(0) };
        b.root = b.build(expr);
        b
    }

    /// Canonical text, parsable by the arithmetic parser whenever every collected coefficient is
    /// at most 999.
    pub fn text(&self) -> &str {
        &self.graph[self.root].text
    }

    /// XXH3-64 of the canonical text: stable across builds, platforms and versions of Rust.
    pub fn hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.text().as_bytes())
    }

    /// Operators in the canonical text.
    pub fn essential_ops(&self) -> u32 {
        self.graph[self.root].ops
    }

    /// Operators in the DAG reachable from the root, each shared subexpression counted once.
    pub fn distinct_ops(&self) -> u32 {
        let mut dfs = Dfs::new(&self.graph, self.root);
        let mut ops = 0;
        while let Some(n) = dfs.next(&self.graph) {
            ops += match &self.graph[n].shape {
                Shape::Lit(_) => 0,
                Shape::Product(f) => f.len() as u32 - 1,
                Shape::Sum(t) => t.len() as u32 - u32::from(!t[0].0),
            };
        }
        ops
    }

    /// The exact value of the canonical form (wide, so that it can be compared with anything).
    pub fn value(&self) -> i128 {
        self.value_of(self.root)
    }

    fn value_of(&self, n: NodeIndex) -> i128 {
        match &self.graph[n].shape {
            Shape::Lit(v) => i128::from(*v),
            Shape::Product(fs) => fs.iter().map(|&f| self.value_of(f)).product(),
            Shape::Sum(ts) => {
                ts.iter().map(|&(neg, t)| if neg { -self.value_of(t) } else { self.value_of(t) }).sum()
            }
        }
    }

    /// The DAG in Graphviz DOT, reachable part only: for looking at a problem's structure.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph canonical {\n");
        let mut dfs = Dfs::new(&self.graph, self.root);
        while let Some(n) = dfs.next(&self.graph) {
            let label = match &self.graph[n].shape {
                Shape::Lit(v) => v.to_string(),
                Shape::Product(_) => "*".to_string(),
                Shape::Sum(_) => "+".to_string(),
            };
            out.push_str(&format!("  n{} [label=\"{label}\"];\n", n.index()));
            for e in self.graph.edges(n) {
                let style = if *e.weight() < 0 { " [label=\"-\"]" } else { "" };
                out.push_str(&format!("  n{} -> n{}{style};\n", n.index(), e.target().index()));
            }
        }
        out.push_str("}\n");
        out
    }

    fn build(&mut self, e: &Expr) -> NodeIndex {
        match e {
            Expr::Lit { value, .. } => self.lit(i64::from(*value)),
            Expr::Bin { op, lhs, rhs, .. } => {
                if *op == Op::Mul {
                    let (l, r) = (self.build(lhs), self.build(rhs));
                    return self.product(vec![l, r]);
                }
                // A whole chain of `+`/`-` is one sum, whatever its parentheses: collecting like
                // terms over the flat chain is what makes `6+6+6` the same as `3*6`.
                let mut operands = Vec::new();
                additive_operands(e, 1, &mut operands);
                let terms = operands.into_iter().map(|(s, x)| (s, self.build(x))).collect();
                self.sum(terms)
            }
        }
    }

    /// Total order of canonical nodes: literals by value, then products, then sums, by text.
    fn order(&self, a: NodeIndex, b: NodeIndex) -> Ordering {
        let (na, nb) = (&self.graph[a], &self.graph[b]);
        match (&na.shape, &nb.shape) {
            (Shape::Lit(x), Shape::Lit(y)) => x.cmp(y),
            _ => na.rank().cmp(&nb.rank()).then_with(|| na.text.cmp(&nb.text)),
        }
    }

    /// The node of `shape`, made if it does not exist yet (hash-consing).
    fn intern(&mut self, shape: Shape) -> NodeIndex {
        if let Some(&n) = self.consed.get(&shape) {
            return n;
        }
        let (text, ops, edges): (String, u32, Vec<(NodeIndex, Sign)>) = match &shape {
            Shape::Lit(v) => (v.to_string(), 0, vec![]),
            Shape::Product(fs) => {
                let mut text = String::new();
                let mut ops = fs.len() as u32 - 1;
                for (i, &f) in fs.iter().enumerate() {
                    if i > 0 {
                        text.push('*');
                    }
                    let child = &self.graph[f];
                    ops += child.ops;
                    if matches!(child.shape, Shape::Sum(_)) {
                        text.push('(');
                        text.push_str(&child.text);
                        text.push(')');
                    } else {
                        text.push_str(&child.text);
                    }
                }
                (text, ops, fs.iter().map(|&f| (f, 1)).collect())
            }
            Shape::Sum(ts) => {
                let mut text = String::new();
                let mut ops = ts.len() as u32 - 1;
                if ts[0].0 {
                    // No positive term: written `0-a-b`.
                    text.push('0');
                    ops += 1;
                }
                for (i, &(neg, t)) in ts.iter().enumerate() {
                    if neg {
                        text.push('-');
                    } else if i > 0 {
                        text.push('+');
                    }
                    // Terms of a sum are literals or products: no parentheses needed.
                    text.push_str(&self.graph[t].text);
                    ops += self.graph[t].ops;
                }
                (text, ops, ts.iter().map(|&(neg, t)| (t, if neg { -1 } else { 1 })).collect())
            }
        };
        let n = self.graph.add_node(Node { shape: shape.clone(), text, ops });
        for (child, sign) in edges {
            self.graph.add_edge(n, child, sign);
        }
        self.consed.insert(shape, n);
        n
    }

    fn lit(&mut self, v: i64) -> NodeIndex {
        self.intern(Shape::Lit(v))
    }

    /// The canonical product of canonical factors.
    fn product(&mut self, factors: Vec<NodeIndex>) -> NodeIndex {
        let mut flat = Vec::with_capacity(factors.len());
        for f in factors {
            match &self.graph[f].shape {
                Shape::Product(inner) => flat.extend_from_slice(inner),
                Shape::Lit(0) => return self.lit(0),
                Shape::Lit(1) => {}
                _ => flat.push(f),
            }
        }
        match flat.len() {
            0 => self.lit(1),
            1 => flat[0],
            _ => {
                flat.sort_by(|&a, &b| self.order(a, b));
                self.intern(Shape::Product(flat))
            }
        }
    }

    /// The term and coefficient a canonical node stands for inside a sum: a product with exactly
    /// one literal factor `k` and other factors `X` is `k` times `X`.
    fn as_term(&mut self, n: NodeIndex) -> (i64, NodeIndex) {
        if let Shape::Product(fs) = &self.graph[n].shape {
            let lits: Vec<usize> =
                (0..fs.len()).filter(|&i| matches!(self.graph[fs[i]].shape, Shape::Lit(_))).collect();
            if let [i] = lits[..] {
                let Shape::Lit(k) = self.graph[fs[i]].shape else { unreachable!() };
                let rest: Vec<NodeIndex> =
                    fs.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, &f)| f).collect();
                return (k, self.product(rest));
            }
        }
        (1, n)
    }

    /// The canonical sum of signed, coefficient-weighted canonical terms.
    fn sum(&mut self, terms: Vec<(i64, NodeIndex)>) -> NodeIndex {
        let mut terms = terms;
        let signed = loop {
            // Flatten nested sums, drop zeros, split coefficients off, collect like terms.
            let mut collected: Vec<(NodeIndex, i64)> = Vec::with_capacity(terms.len());
            let mut add = |node: NodeIndex, c: i64| match collected.iter_mut().find(|(n, _)| *n == node) {
                Some((_, acc)) => *acc += c,
                None => collected.push((node, c)),
            };
            for (c, n) in terms {
                let parts: Vec<(i64, NodeIndex)> = match &self.graph[n].shape {
                    Shape::Sum(ts) => ts.iter().map(|&(neg, t)| (if neg { -c } else { c }, t)).collect(),
                    _ => vec![(c, n)],
                };
                for (c, t) in parts {
                    if matches!(self.graph[t].shape, Shape::Lit(0)) {
                        continue;
                    }
                    let (k, x) = self.as_term(t);
                    add(x, c * k);
                }
            }
            // Re-form `c * X` as a signed term.
            let mut signed: Vec<(bool, NodeIndex)> = Vec::with_capacity(collected.len());
            for (x, c) in collected {
                if c == 0 {
                    continue;
                }
                let t = if c.abs() == 1 {
                    x
                } else {
                    let k = self.lit(c.abs());
                    self.product(vec![k, x])
                };
                signed.push((c < 0, t));
            }
            // A re-formed `k*lit` can equal another term written as a product of two literals
            // (`3+3-(3+3)`): collect again until the terms are distinct.
            let distinct = signed.iter().enumerate().all(|(i, a)| signed[..i].iter().all(|b| a.1 != b.1));
            if distinct {
                break signed;
            }
            terms = signed.into_iter().map(|(neg, t)| (if neg { -1 } else { 1 }, t)).collect();
        };
        match signed[..] {
            [] => self.lit(0),
            [(false, t)] => t,
            _ => {
                let mut signed = signed;
                signed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| self.order(a.1, b.1)));
                self.intern(Shape::Sum(signed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::parse::parse;
    use crate::Limits;

    fn canon(s: &str) -> Canonical {
        Canonical::of(&parse(s, &Limits::default()).unwrap())
    }

    #[test]
    fn normal_forms() {
        for (src, form, ops) in [
            ("3+4", "3+4", 1),
            ("4+3", "3+4", 1),
            ("(3+4)*2", "2*(3+4)", 2),
            ("2*(4+3)", "2*(3+4)", 2),
            // identities
            ("7+0", "7", 0),
            ("0+7", "7", 0),
            ("7-0", "7", 0),
            ("7*1", "7", 0),
            ("1*7*1", "7", 0),
            ("(5+6)*0", "0", 0),
            ("0*(5+6)+2", "2", 0),
            // cancellation
            ("(2*3)-(2*3)", "0", 0),
            ("(5+9)-9", "5", 0),
            ("5+9-5-9", "0", 0),
            ("8-(8-3)", "3", 0),
            // like terms
            ("1+1+1+1", "4", 0),
            ("6+6+6", "3*6", 1),
            ("(2+5)+(2+5)", "2*2+2*5", 3),
            ("(2+5)*3+(5+2)*3", "6*(2+5)", 2),
            ("2*7+7*2", "2*2*7", 2),
            ("3+3-2*3", "0", 0),
            ("2*(1+4)+3*(4+1)", "5*(1+4)", 2),
            ("2*(1+4)-2*(4+1)+3", "3", 0),
            ("3+3-(3+3)", "0", 0),
            // flattening and order
            ("1+(2+3)", "1+2+3", 2),
            ("2*(3*4)", "2*3*4", 2),
            ("9-(2-5)", "5+9-2", 2),
            ("(4-2)*(2-4)", "(2-4)*(4-2)", 3),
            ("0-7", "0-7", 1),
            ("0-(7+8)", "0-7-8", 2),
            ("4*5+2*3", "2*3+4*5", 3),
        ] {
            let c = canon(src);
            assert_eq!((c.text(), c.essential_ops()), (form, ops), "{src}");
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        for src in ["2*(1+4)+3*(4+1)", "(4-2)*(2-4)", "9-(2-5)", "0-(7+8)", "(3+3)*(3+3)+3"] {
            let once = canon(src);
            let twice = canon(once.text());
            assert_eq!(once.text(), twice.text(), "{src}");
            assert_eq!(once.hash(), twice.hash());
        }
    }

    #[test]
    fn shared_subexpressions_are_one_node() {
        let c = canon("(3*4+5)*(5+4*3)");
        assert_eq!(c.text(), "(5+3*4)*(5+3*4)");
        assert_eq!(c.essential_ops(), 5);
        assert_eq!(c.distinct_ops(), 3);
        let dot = c.to_dot();
        assert_eq!(dot.matches("label=\"*\"").count(), 2, "{dot}");
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: archives written by any build must agree on it.
        assert_eq!(canon("4+3").hash(), xxhash_rust::xxh3::xxh3_64(b"3+4"));
        assert_eq!(canon("4+3").hash(), canon("3 + 4").hash());
        assert_ne!(canon("3+4").hash(), canon("3*4").hash());
    }
}
