//! Seeded random programs of a given amount of work, and the padding a proposer might add.
//!
//! A draw builds a deduction (`x=L;…;output`) or an abduction (`…;output=N`, the input free) one
//! statement at a time: a new variable or an update from a variable not yet read, a conditional
//! with both branches assigning the same variable, or a loop of two or three passes updating one.
//! Every value written is read later and the output reads what is left, so nothing is dead; the
//! draw is kept when the judge's own analysis gives exactly the asked work. Literals avoid the
//! identities (`+0`, `*1`): the generator writes no padding, and [`PadKind`] adds it on purpose.

use rand::{Rng, RngCore};

use super::run::State;
use super::syntax::{
    bit, block_reads, block_writes, parse, Cmp, Cond, Expr, Program, Stmt, StmtKind, INPUT, VARIABLES,
};
use super::{Programs, INPUTS};
use crate::arith::{Op, MAX_ABS_VALUE, MAX_LITERAL};
use crate::{Domain, GenError, GenSpec, Generated, Limits};

/// Draws before giving up.
const MAX_DRAWS: usize = 10_000;
/// The most work the generator is asked for.
pub const MAX_GEN_DEPTH: u32 = 24;

pub(super) fn generate(
    domain: &Programs,
    spec: &GenSpec,
    rng: &mut dyn RngCore,
) -> Result<Generated, GenError> {
    if spec.max_literal > MAX_LITERAL || spec.max_literal < 2 {
        return Err(GenError(format!("max_literal must be in 2..={MAX_LITERAL}, got {}", spec.max_literal)));
    }
    if spec.depth > MAX_GEN_DEPTH {
        return Err(GenError(format!("depth {} exceeds {MAX_GEN_DEPTH}", spec.depth)));
    }
    for _ in 0..MAX_DRAWS {
        let abduction = rng.random_bool(0.5);
        let Some(program) = Builder::draw(spec, abduction, rng) else { continue };
        let text = program.to_string();
        match domain.analyze(&text, &Limits::default()) {
            Ok(a) if a.depth == spec.depth && a.max_literal <= spec.max_literal => {
                return Ok(Generated { problem: text, answer: a.answer, depth: spec.depth })
            }
            _ => continue,
        }
    }
    Err(GenError(format!(
        "no program of {} operations in {MAX_DRAWS} draws with literals up to {}",
        spec.depth, spec.max_literal
    )))
}

/// A program under construction, its values followed on one input.
struct Builder<'r> {
    rng: &'r mut dyn RngCore,
    max_literal: u32,
    stmts: Vec<Stmt>,
    /// Variables whose value is still to be read.
    pending: Vec<u8>,
    state: State,
    /// Operations left to write, the output's included.
    remaining: u32,
}

impl Builder<'_> {
    fn draw(spec: &GenSpec, abduction: bool, rng: &mut dyn RngCore) -> Option<Program> {
        let input = rng.random_range(1..=i64::from(spec.max_literal).min(*INPUTS.end()));
        let mut b = Builder {
            rng,
            max_literal: spec.max_literal,
            stmts: Vec::new(),
            pending: vec![INPUT],
            state: State::default(),
            remaining: spec.depth,
        };
        b.state.set(INPUT, input);
        if !abduction {
            b.stmts.push(assign(INPUT, Expr::Lit(input)));
        }
        while b.remaining as usize > b.pending.len() - 1 {
            b.statement()?;
        }
        // The output reads every variable left, one operation between each two.
        let mut vars = b.pending.clone();
        b.shuffle(&mut vars);
        let mut output = Expr::Var(vars[0]);
        for &v in &vars[1..] {
            let op = b.op();
            output = Expr::bin(op, output, Expr::Var(v));
        }
        let value = super::run::eval(&output, &b.state, None).ok()?;
        let target = abduction.then_some(value);
        let mut p = Program { stmts: b.stmts, output, target, statements: 0 };
        p.renumber();
        Some(p)
    }

    fn shuffle(&mut self, vars: &mut [u8]) {
        for i in (1..vars.len()).rev() {
            vars.swap(i, self.rng.random_range(0..=i));
        }
    }

    fn op(&mut self) -> Op {
        [Op::Add, Op::Sub, Op::Mul][self.rng.random_range(0..3)]
    }

    /// A literal for `op` that is no identity.
    fn literal(&mut self, op: Op) -> Expr {
        let low = if op == Op::Mul { 2 } else { 1 };
        Expr::Lit(self.rng.random_range(low..=i64::from(self.max_literal)))
    }

    /// A variable not yet used, if one is left.
    fn fresh(&self) -> Option<u8> {
        let used = bit(INPUT) | block_writes(&self.stmts);
        VARIABLES.into_iter().find(|&v| used & bit(v) == 0)
    }

    fn take_pending(&mut self) -> u8 {
        let i = self.rng.random_range(0..self.pending.len());
        self.pending.swap_remove(i)
    }

    /// Appends one statement that fits what is left, or gives up the draw.
    fn statement(&mut self) -> Option<()> {
        // What the output will cost after this statement must still fit: remaining − cost ≥
        // pending after − 1.
        let fits = |cost: u32, pending_after: usize, remaining: u32| {
            cost <= remaining && remaining - cost >= pending_after as u32 - 1
        };
        let n = self.pending.len();
        let mut kinds = Vec::new();
        if fits(1, n, self.remaining) {
            kinds.extend(["new", "update"]);
        }
        if n >= 2 && fits(1, n - 1, self.remaining) {
            kinds.push("combine");
        }
        if fits(2, n, self.remaining) {
            kinds.extend(["new2", "if"]);
        }
        if fits(2, n, self.remaining) {
            kinds.push("loop");
        }
        let mut kind = *kinds.get(self.rng.random_range(0..kinds.len().max(1)))?;
        let p = self.take_pending();
        // The input is never assigned (an abduction's must not be): what would update it writes
        // a new variable instead.
        if p == INPUT {
            kind = match kind {
                "update" => "new",
                "loop" => return None,
                k => k,
            };
        }
        let stmt = match kind {
            "update" => {
                let op = self.op();
                let lit = self.literal(op);
                assign(p, Expr::bin(op, Expr::Var(p), lit))
            }
            "new" | "new2" => {
                let target = self.fresh()?;
                let op = self.op();
                let lit = self.literal(op);
                let mut e = self.ordered(op, Expr::Var(p), lit.clone());
                if kind == "new2" {
                    let op2 = self.op();
                    let lit2 = self.literal(op2);
                    // `x-20+20` would be padding the canonical form does not see.
                    if op != Op::Mul && op2 != Op::Mul && op != op2 && e.reads() != 0 && lit == lit2 {
                        return None;
                    }
                    e = self.ordered(op2, e, lit2);
                }
                assign(target, e)
            }
            "combine" => {
                let q = self.take_pending();
                let target = self.fresh().or((p != INPUT).then_some(p))?;
                let op = self.op();
                assign(target, Expr::bin(op, Expr::Var(p), Expr::Var(q)))
            }
            "if" => {
                let value = self.state.get(p)?;
                let cmp = [Cmp::Lt, Cmp::Gt, Cmp::Lt, Cmp::Gt, Cmp::Eq][self.rng.random_range(0..5)];
                let near = (value + self.rng.random_range(-3..=3)).clamp(0, i64::from(self.max_literal));
                let target = if p == INPUT || self.rng.random_bool(0.5) { self.fresh()? } else { p };
                let (op1, op2) = (self.op(), self.op());
                let (l1, l2) = (self.literal(op1), self.literal(op2));
                let then = vec![assign(target, Expr::bin(op1, Expr::Var(p), l1))];
                let otherwise = vec![assign(target, Expr::bin(op2, Expr::Var(p), l2))];
                Stmt {
                    id: 0,
                    at: 0,
                    kind: StmtKind::If {
                        cond: Cond { lhs: Expr::Var(p), cmp, rhs: Expr::Lit(near) },
                        then,
                        otherwise,
                    },
                }
            }
            _ => {
                let count = if self.remaining >= 3 && self.rng.random_bool(0.5) { 3 } else { 2 };
                if !fits(count, n, self.remaining) {
                    return None;
                }
                let op = [Op::Add, Op::Sub, Op::Mul][self.rng.random_range(0..3)];
                let lit =
                    if op == Op::Mul { Expr::Lit(self.rng.random_range(2..=3)) } else { self.literal(op) };
                let body = vec![assign(p, Expr::bin(op, Expr::Var(p), lit))];
                Stmt { id: 0, at: 0, kind: StmtKind::Repeat { count, body } }
            }
        };
        self.remaining -= self.execute(&stmt)?;
        let written = block_writes(std::slice::from_ref(&stmt));
        let var = VARIABLES.into_iter().find(|&v| written & bit(v) != 0)?;
        self.pending.push(var);
        self.stmts.push(stmt);
        Some(())
    }

    /// `a op b`, or `b op a` for a commutative `op` half the time.
    fn ordered(&mut self, op: Op, a: Expr, b: Expr) -> Expr {
        if op != Op::Sub && self.rng.random_bool(0.5) {
            Expr::bin(op, b, a)
        } else {
            Expr::bin(op, a, b)
        }
    }

    /// Runs `stmt` on the followed state; the operations it cost, or `None` out of range.
    fn execute(&mut self, stmt: &Stmt) -> Option<u32> {
        match &stmt.kind {
            StmtKind::Assign { var, expr } => {
                let v = super::run::eval(expr, &self.state, None).ok()?;
                (v.abs() <= MAX_ABS_VALUE).then(|| self.state.set(*var, v))?;
                Some(expr.ops())
            }
            StmtKind::If { cond, then, otherwise } => {
                let a = super::run::eval(&cond.lhs, &self.state, None).ok()?;
                let b = super::run::eval(&cond.rhs, &self.state, None).ok()?;
                let branch = if cond.cmp.holds(a, b) { then } else { otherwise };
                let mut cost = 1 + cond.ops();
                for s in branch {
                    cost += self.execute(s)?;
                }
                Some(cost)
            }
            StmtKind::Repeat { count, body } => {
                let mut cost = 0;
                for _ in 0..*count {
                    for s in body {
                        cost += self.execute(s)?;
                    }
                }
                Some(cost)
            }
        }
    }
}

fn assign(var: u8, expr: Expr) -> Stmt {
    Stmt { id: 0, at: 0, kind: StmtKind::Assign { var, expr } }
}

/// A kind of padding (or, for [`PadKind::Rename`], of copying) a proposer might write. Each keeps
/// the program's answer; all but `Rename` add work that the canonical form removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadKind {
    /// `c=a*7` where `c` is never read.
    DeadStatement,
    /// `d=9` where `d` is never read.
    UnusedVariable,
    /// `a=a`.
    SelfAssignment,
    /// `e` written `e+0`, `e*1`, `0+e`, `1*e` or `e-0`.
    Identity,
    /// `#0{a=a*5}`.
    EmptyLoop,
    /// A statement written `#1{…}`.
    SinglePass,
    /// `?a<5{c=a+1}` where `c` is never read.
    DeadConditional,
    /// `b=a` and `b` read where `a` was.
    Copy,
    /// `a=x*3` before an assignment to `a` that does not read it.
    OverwrittenStore,
    /// A statement written `?1<2{…}`.
    LiteralCondition,
    /// The variables renamed: a copy, not padding.
    Rename,
}

impl PadKind {
    pub const ALL: [PadKind; 11] = [
        PadKind::DeadStatement,
        PadKind::UnusedVariable,
        PadKind::SelfAssignment,
        PadKind::Identity,
        PadKind::EmptyLoop,
        PadKind::SinglePass,
        PadKind::DeadConditional,
        PadKind::Copy,
        PadKind::OverwrittenStore,
        PadKind::LiteralCondition,
        PadKind::Rename,
    ];
}

/// `problem` with one edit of `kind`, or `None` where it has no place for one.
pub fn pad_with(problem: &str, kind: PadKind, rng: &mut dyn RngCore) -> Option<String> {
    let hard = Limits { max_tokens: Limits::HARD_MAX_TOKENS, max_nesting: Limits::HARD_MAX_NESTING };
    let mut p = parse(problem, &hard).ok()?;
    let used = used_vars(&p);
    let unused = VARIABLES.into_iter().filter(|&v| v != INPUT && used & bit(v) == 0).collect::<Vec<_>>();
    let fresh = *unused.first()?;
    // Where a statement can go, and a variable assigned (or the input) before it.
    let len = p.stmts.len();
    let at = rng.random_range(0..=len);
    let defined = defined_before(&p, at);
    let v = *defined.get(rng.random_range(0..defined.len().max(1)))?;
    let lit = |rng: &mut dyn RngCore| Expr::Lit(rng.random_range(2..=9));
    match kind {
        PadKind::DeadStatement => {
            let l = lit(rng);
            p.stmts.insert(at, assign(fresh, Expr::bin(Op::Mul, Expr::Var(v), l)));
        }
        PadKind::UnusedVariable => p.stmts.insert(at, assign(fresh, lit(rng))),
        // An abduction's input is never assigned, not even where it does nothing.
        PadKind::SelfAssignment | PadKind::EmptyLoop if v == INPUT && p.target.is_some() => return None,
        PadKind::SelfAssignment => p.stmts.insert(at, assign(v, Expr::Var(v))),
        PadKind::Identity => {
            let (op, lit, left) = [
                (Op::Add, 0, false),
                (Op::Add, 0, true),
                (Op::Sub, 0, false),
                (Op::Mul, 1, false),
                (Op::Mul, 1, true),
            ][rng.random_range(0..5)];
            let wrap = |e: Expr| {
                if left {
                    Expr::bin(op, Expr::Lit(lit), e)
                } else {
                    Expr::bin(op, e, Expr::Lit(lit))
                }
            };
            let assignments: Vec<usize> = (0..len)
                .filter(|&i| matches!(&p.stmts[i].kind, StmtKind::Assign { expr, .. } if expr.ops() > 0))
                .collect();
            if assignments.is_empty() || rng.random_bool(0.3) {
                p.output = wrap(p.output.clone());
            } else {
                let i = assignments[rng.random_range(0..assignments.len())];
                let StmtKind::Assign { expr, .. } = &mut p.stmts[i].kind else { unreachable!() };
                *expr = wrap(expr.clone());
            }
        }
        PadKind::EmptyLoop => {
            let l = lit(rng);
            let body = vec![assign(v, Expr::bin(Op::Mul, Expr::Var(v), l))];
            p.stmts.insert(at, Stmt { id: 0, at: 0, kind: StmtKind::Repeat { count: 0, body } });
        }
        PadKind::SinglePass | PadKind::LiteralCondition => {
            let movable: Vec<usize> = (0..len).filter(|&i| !is_input_binding(&p.stmts[i])).collect();
            let i = *movable.get(rng.random_range(0..movable.len().max(1)))?;
            let inner = vec![p.stmts[i].clone()];
            p.stmts[i].kind = if kind == PadKind::SinglePass {
                StmtKind::Repeat { count: 1, body: inner }
            } else {
                let (a, b) = (rng.random_range(0..5), rng.random_range(5..10));
                StmtKind::If {
                    cond: Cond { lhs: Expr::Lit(a), cmp: Cmp::Lt, rhs: Expr::Lit(b) },
                    then: inner,
                    otherwise: vec![],
                }
            };
        }
        PadKind::DeadConditional => {
            let (l1, l2) = (lit(rng), lit(rng));
            let then = vec![assign(fresh, Expr::bin(Op::Add, Expr::Var(v), l2))];
            let cond = Cond { lhs: Expr::Var(v), cmp: Cmp::Lt, rhs: l1 };
            p.stmts.insert(at, Stmt { id: 0, at: 0, kind: StmtKind::If { cond, then, otherwise: vec![] } });
        }
        PadKind::Copy => {
            // `fresh=v` and the next reader of `v` reads `fresh` instead.
            let reader = match p.stmts.get(at) {
                Some(Stmt { kind: StmtKind::Assign { expr, .. }, .. }) if expr.reads() & bit(v) != 0 => {
                    Some(at)
                }
                None if p.output.reads() & bit(v) != 0 => None,
                _ => return None,
            };
            match reader {
                Some(i) => {
                    let StmtKind::Assign { expr, .. } = &mut p.stmts[i].kind else { unreachable!() };
                    *expr = expr.substitute(v, fresh);
                }
                None => p.output = p.output.substitute(v, fresh),
            }
            p.stmts.insert(at, assign(fresh, Expr::Var(v)));
        }
        PadKind::OverwrittenStore => {
            let i = (at..len).find(|&i| {
                matches!(&p.stmts[i].kind, StmtKind::Assign { var, expr } if expr.reads() & bit(*var) == 0 && *var != INPUT)
            })?;
            let StmtKind::Assign { var, .. } = p.stmts[i].kind else { unreachable!() };
            let l = lit(rng);
            p.stmts.insert(i, assign(var, Expr::bin(Op::Add, Expr::Var(v), l)));
        }
        PadKind::Rename => {
            let mut names: Vec<u8> = VARIABLES.into_iter().filter(|&v| v != INPUT).collect();
            for i in (1..names.len()).rev() {
                names.swap(i, rng.random_range(0..=i));
            }
            let text = p.to_string();
            let renamed: String = text
                .bytes()
                .map(|c| {
                    if c.is_ascii_lowercase() && c != INPUT {
                        char::from(names[usize::from(c - b'a')])
                    } else {
                        char::from(c)
                    }
                })
                .collect();
            return (renamed != text).then_some(renamed);
        }
    }
    p.renumber();
    Some(p.to_string())
}

fn is_input_binding(s: &Stmt) -> bool {
    matches!(&s.kind, StmtKind::Assign { var: INPUT, expr: Expr::Lit(_) })
}

/// Every variable written or read anywhere.
fn used_vars(p: &Program) -> u32 {
    block_reads(&p.stmts) | block_writes(&p.stmts) | p.output.reads() | bit(INPUT)
}

/// Variables assigned by a top-level assignment before statement `at` (the input where free).
fn defined_before(p: &Program, at: usize) -> Vec<u8> {
    let mut out = Vec::new();
    if p.target.is_some() {
        out.push(INPUT);
    }
    for s in &p.stmts[..at] {
        if let StmtKind::Assign { var, .. } = s.kind {
            if !out.contains(&var) {
                out.push(var);
            }
        }
    }
    out
}

/// `problem` with `edits` random padding edits (any kind but renaming), each keeping its answer
/// and canonical form.
pub(super) fn pad(problem: &str, edits: u32, rng: &mut dyn RngCore) -> Option<String> {
    let mut text = problem.to_string();
    let kinds = &PadKind::ALL[..PadKind::ALL.len() - 1];
    for _ in 0..edits {
        let mut done = false;
        for _ in 0..16 {
            if let Some(t) = pad_with(&text, kinds[rng.random_range(0..kinds.len())], rng) {
                text = t;
                done = true;
                break;
            }
        }
        if !done {
            return None;
        }
    }
    Some(text)
}
