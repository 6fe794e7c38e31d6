//! Skills: what a problem exercises, in a vocabulary every operator-based domain can use.
//!
//! *Atomic skills* are one operator on literals of one size (`*` on 2-digit numbers).
//! *Compositions* are one operator applied to the result of another, on one side (`+` with a `*`
//! on its left: `a*b+c`). A domain says which skills a problem uses ([`crate::Domain::skills`]);
//! the curriculum's skill graph counts attempts and successes toward each.

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
