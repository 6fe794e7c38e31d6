//! Composition beyond the warm start: a worked solution, one operation a step, for a problem the
//! solver never solves, built from its own verified steps.
//!
//! The solver is taught chains up to a depth; deeper, it folds operations and fails, so an
//! outcome reward never pays for a longer chain. Here a problem it failed every attempt at is
//! reduced by one operation, taking a first step of its own attempts that holds (the exact
//! value, one operation fewer); the shorter problem is attempted again, and so on, until one
//! attempt solves what is left one operation a step. The steps taken and that solution make a
//! chain in which every step verifies: the solver is trained on it for the whole problem, with
//! advantage `round.compose` (self-improving transformers, Lee et al. 2025). Nothing in a chain
//! comes from the domain's generator or solver: only the check that a step holds and how many
//! operations it has.

use policy::SampleConfig;
use problem::Domain;

use super::solve::{Attempts, Source, Tasks};
use super::Lab;

/// What composition made this round.
#[derive(Debug, Default)]
pub(super) struct Composed {
    /// (prompt, chain) token pairs the solver is trained on.
    pub pairs: Vec<(Vec<u32>, Vec<u32>)>,
    /// Problems a chain was sought for.
    pub tried: usize,
    /// The operations of each problem a chain was found for.
    pub operations: Vec<u32>,
}

/// One problem on its way to a chain.
struct Chain {
    problem: String,
    answer: String,
    /// The steps taken so far (each one operation fewer), the last the problem now attempted.
    steps: Vec<String>,
    /// The solver's outputs at the last step (or at the problem, before any).
    outputs: Vec<String>,
}

/// Whether `output` solves `problem` one operation a step: each `=`-separated part holds one
/// operation fewer than the one before, the last none, and (checked by the caller) all hold.
pub(super) fn one_operation_a_step(domain: &dyn Domain, problem: &str, output: &str) -> bool {
    let Some(mut ops) = domain.step_operations(problem) else { return false };
    for part in output.split('=') {
        match domain.step_operations(part) {
            Some(n) if n + 1 == ops => ops = n,
            _ => return false,
        }
    }
    ops == 0
}

/// A first step of `output` toward `answer` from a problem of `ops` operations: its first part,
/// when that holds and has one operation fewer.
fn first_step<'a>(domain: &dyn Domain, output: &'a str, ops: u32, answer: &str) -> Option<&'a str> {
    let step = output.split('=').next()?.trim_matches(' ');
    let n = domain.step_operations(step)?;
    (n + 1 == ops && n > 0 && domain.step_holds(step, answer)).then_some(step)
}

impl Lab {
    /// Chains for up to `round.compose_problems` of the round's fresh and replayed problems that
    /// no attempt solved; none when `round.compose` is 0.
    pub(super) fn compose(
        &mut self,
        tasks: &Tasks,
        attempts: &Attempts,
        sampling: &SampleConfig,
    ) -> anyhow::Result<Composed> {
        let mut composed = Composed::default();
        if self.cfg.round.compose <= 0.0 {
            return Ok(composed);
        }
        let domain = self.domain;
        let mut chains: Vec<Chain> = tasks
            .tasks
            .iter()
            .enumerate()
            .filter(|(t, task)| {
                matches!(task.source, Source::Fresh { held_out: false } | Source::Replayed)
                    && attempts.correct(*t) == 0
                    && domain.step_operations(&task.text).is_some_and(|ops| ops >= 2)
            })
            .take(self.cfg.round.compose_problems)
            .map(|(t, task)| Chain {
                problem: task.text.clone(),
                answer: task.answer.clone(),
                steps: Vec::new(),
                outputs: attempts.per_task[t].iter().map(|(a, _)| a.output.clone()).collect(),
            })
            .collect();
        composed.tried = chains.len();
        let k = self.cfg.round.attempts;
        while !chains.is_empty() {
            let mut next = Vec::new();
            for mut chain in chains {
                let current = chain.steps.last().unwrap_or(&chain.problem).clone();
                let solved = chain.outputs.iter().find(|o| {
                    judge::verify(domain, &chain.answer, o).correct
                        && one_operation_a_step(domain, &current, o)
                });
                if let Some(rest) = solved.filter(|_| !chain.steps.is_empty()) {
                    let text = format!("{}={rest}", chain.steps.join("="));
                    // The whole chain, checked again as the problem's solution.
                    if judge::verify(domain, &chain.answer, &text).correct
                        && one_operation_a_step(domain, &chain.problem, &text)
                    {
                        if let Ok(target) = self.solver_format.target(&text) {
                            if target.len() <= self.solver_format.max_answer_tokens {
                                composed.pairs.push((self.solver_format.prompt(&chain.problem)?, target));
                                composed
                                    .operations
                                    .push(domain.step_operations(&chain.problem).unwrap_or_default());
                            }
                        }
                    }
                    continue;
                }
                let ops = domain.step_operations(&current).unwrap_or_default();
                let step = chain.outputs.iter().find_map(|o| first_step(domain, o, ops, &chain.answer));
                if let Some(step) = step.map(str::to_string) {
                    chain.steps.push(step);
                    next.push(chain);
                }
            }
            // The reduced problems, attempted together.
            let mut requests = Vec::with_capacity(next.len() * k);
            for chain in &next {
                requests
                    .extend(self.solver_format.requests(chain.steps.last().expect("a step was taken"), k)?);
            }
            if requests.is_empty() {
                break;
            }
            let sampled = policy::sample(&self.solver.model, &requests, sampling, &mut self.rng, true)?;
            for (chain, outputs) in next.iter_mut().zip(sampled.chunks(k)) {
                chain.outputs = outputs.iter().map(|s| self.solver_format.output_text(s)).collect();
            }
            chains = next;
        }
        Ok(composed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::Arith;

    #[test]
    fn a_solution_one_operation_a_step_is_told_from_one_that_folds() {
        assert!(one_operation_a_step(&Arith, "(3+4)*2-5", "7*2-5=14-5=9"));
        // Two operations folded into the first step.
        assert!(!one_operation_a_step(&Arith, "(3+4)*2-5", "14-5=9"));
        // A step that does nothing.
        assert!(!one_operation_a_step(&Arith, "(3+4)*2", "(3+4)*2=7*2=14"));
        assert!(!one_operation_a_step(&Arith, "(3+4)*2", "7*2"));
        assert!(one_operation_a_step(&Arith, "1-4", "-3"));
        assert!(one_operation_a_step(&Arith, "1-4*2", "1-8=-7"));
    }

    #[test]
    fn a_first_step_must_hold_and_take_one_operation() {
        assert_eq!(first_step(&Arith, "7*2-5=9", 3, "9"), Some("7*2-5"));
        assert_eq!(first_step(&Arith, "7*3-5=16", 3, "9"), None, "a false step");
        assert_eq!(first_step(&Arith, "14-5=9", 3, "9"), None, "two operations at once");
        assert_eq!(first_step(&Arith, "9", 1, "9"), None, "the answer is no step");
    }
}
