//! Composition beyond the warm start: a worked solution, one operation a step, for a problem the
//! solver never solves, built from its own verified steps.
//!
//! The solver is taught chains up to a depth; deeper, it folds operations and fails, so an
//! outcome reward never pays for a longer chain. Here a problem it failed every attempt at is
//! reduced by one operation, taking a first step of its own attempts that holds (the exact
//! value, one operation fewer); the shorter problem is attempted again, and so on, until one
//! attempt solves what is left one operation a step. The steps taken and that solution make a
//! chain in which every step verifies: the solver is trained on it for the whole problem, with
//! advantage `round.compose` (self-improving transformers, Lee et al. 2025).
//!
//! Past the depth it was taught, almost none of the solver's first steps take one operation (it
//! folds two or more at once), so a chain would never start. Where none does, the solver is asked
//! the first operation alone (`3+4` of `(3+4)*2`, a problem it solves), and its answer put in
//! that operation's place is the step, kept when it holds. Nothing in a chain comes from the
//! domain's generator or solver: only which operation a chain takes first (a matter of the
//! problem's syntax), the check that a step holds and how many operations it has.

use policy::SampleConfig;
use problem::Domain;

use super::solve::{Attempts, Source, Tasks};
use super::Lab;

/// Answers asked of the solver for a first operation alone: one operation it all but always
/// solves, so two are enough and cost little beside the chain's own attempts.
const FIRST_OPERATION_ASKS: usize = 2;

/// What composition made this round.
#[derive(Debug, Default)]
pub(super) struct Composed {
    /// (prompt, chain) token pairs the solver is trained on.
    pub pairs: Vec<(Vec<u32>, Vec<u32>)>,
    /// Problems a chain was sought for.
    pub tried: usize,
    /// The operations of each problem a chain was found for.
    pub operations: Vec<u32>,
    /// Steps taken by asking the solver a first operation alone.
    pub first_operations: usize,
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

/// Whether `output` solves `problem` one operation a step: each step of it holds one
/// operation fewer than the one before, the last none, and (checked by the caller) all hold.
pub(super) fn one_operation_a_step(domain: &dyn Domain, problem: &str, output: &str) -> bool {
    let Some(mut ops) = domain.step_operations(problem) else { return false };
    for part in output.split(domain.step_separator()) {
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
    let step = output.split(domain.step_separator()).next()?.trim_matches(' ');
    let n = domain.step_operations(step)?;
    (n + 1 == ops && n > 0 && domain.step_holds(step, answer)).then_some(step)
}

/// The step `outputs`, the solver's answers to the first operation of `here` alone, make toward
/// `answer`: that operation replaced by an output's final answer, when the result holds and has
/// one operation fewer.
fn step_from_first_operation(
    domain: &dyn Domain,
    here: &str,
    answer: &str,
    outputs: &[String],
) -> Option<String> {
    let ops = domain.step_operations(here)?;
    outputs.iter().find_map(|output| {
        let value = judge::extract_answer(output, domain.step_separator());
        let step = domain.replace_first_operation(here, value)?;
        (domain.step_operations(&step)? + 1 == ops && domain.step_holds(&step, answer)).then_some(step)
    })
}

impl Lab {
    /// Chains for up to `round.compose_problems` of the round's fresh and replayed problems that
    /// no attempt solved, the ones of most operations first (the shallower the solver learns from
    /// its rewards); none when `round.compose` is 0.
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
        let mut unsolved: Vec<(usize, &super::solve::Task, u32)> = tasks
            .tasks
            .iter()
            .enumerate()
            .filter(|(t, task)| {
                matches!(task.source, Source::Fresh { held_out: false } | Source::Replayed)
                    && attempts.correct(*t) == 0
            })
            .filter_map(|(t, task)| {
                Some((t, task, domain.step_operations(&task.text).filter(|&ops| ops >= 2)?))
            })
            .collect();
        unsolved.sort_by_key(|&(_, _, ops)| std::cmp::Reverse(ops));
        let mut chains: Vec<Chain> = unsolved
            .into_iter()
            .take(self.cfg.round.compose_problems)
            .map(|(t, task, _)| Chain {
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
            let mut stuck = Vec::new();
            for mut chain in chains {
                let current = chain.steps.last().unwrap_or(&chain.problem).clone();
                let solved = chain.outputs.iter().find(|o| {
                    judge::verify(domain, &chain.problem, &chain.answer, o).correct
                        && one_operation_a_step(domain, &current, o)
                });
                if let Some(rest) = solved.filter(|_| !chain.steps.is_empty()) {
                    let separator = domain.step_separator().to_string();
                    let text = format!("{}{separator}{rest}", chain.steps.join(&separator));
                    // The whole chain, checked again as the problem's solution.
                    if judge::verify(domain, &chain.problem, &chain.answer, &text).correct
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
                } else if ops >= 2 {
                    stuck.push(chain);
                }
            }
            composed.first_operations += self.ask_first_operations(&mut stuck, sampling)?;
            next.extend(stuck.into_iter().filter(|c| c.outputs.is_empty()));
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

    /// For each chain no attempt of which took a one-operation first step: asks the solver the
    /// first operation alone and takes the step its answer makes, when one holds. A chain given a
    /// step is left with no outputs (it is attempted again at that step); the others keep theirs.
    /// Returns the steps taken.
    fn ask_first_operations(
        &mut self,
        stuck: &mut [Chain],
        sampling: &SampleConfig,
    ) -> anyhow::Result<usize> {
        let domain = self.domain;
        let k = FIRST_OPERATION_ASKS;
        let current = |c: &Chain| c.steps.last().unwrap_or(&c.problem).clone();
        let asked: Vec<Option<String>> = stuck.iter().map(|c| domain.first_operation(&current(c))).collect();
        let mut requests = Vec::new();
        for first in asked.iter().flatten() {
            requests.extend(self.solver_format.requests(first, k)?);
        }
        if requests.is_empty() {
            return Ok(0);
        }
        let sampled = policy::sample(&self.solver.model, &requests, sampling, &mut self.rng, true)?;
        let mut answers = sampled.chunks(k);
        let mut taken = 0;
        for (chain, first) in stuck.iter_mut().zip(&asked) {
            if first.is_none() {
                continue;
            }
            let outputs: Vec<String> = answers
                .next()
                .expect("one chunk per operation asked")
                .iter()
                .map(|s| self.solver_format.output_text(s))
                .collect();
            if let Some(step) = step_from_first_operation(domain, &current(chain), &chain.answer, &outputs) {
                chain.steps.push(step);
                chain.outputs.clear();
                taken += 1;
            }
        }
        Ok(taken)
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
    fn a_first_operation_answered_right_is_the_next_step() {
        let outputs = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // `3+4` answered wrong, then right (the second output's final answer counts).
        assert_eq!(
            step_from_first_operation(&Arith, "(3+4)*2-5", "9", &outputs(&["8", "3+4=7"])),
            Some("7*2-5".into())
        );
        assert_eq!(step_from_first_operation(&Arith, "(3+4)*2-5", "9", &outputs(&["8", "6"])), None);
        // A negative value goes in parenthesised, as chains write it.
        assert_eq!(
            step_from_first_operation(&Arith, "12-(3-9)*2", "24", &outputs(&["-6"])),
            Some("12-(-6)*2".into())
        );
        // Not a value.
        assert_eq!(step_from_first_operation(&Arith, "(3+4)*2", "14", &outputs(&["7*1"])), None);
    }

    #[test]
    fn a_first_step_must_hold_and_take_one_operation() {
        assert_eq!(first_step(&Arith, "7*2-5=9", 3, "9"), Some("7*2-5"));
        assert_eq!(first_step(&Arith, "7*3-5=16", 3, "9"), None, "a false step");
        assert_eq!(first_step(&Arith, "14-5=9", 3, "9"), None, "two operations at once");
        assert_eq!(first_step(&Arith, "9", 1, "9"), None, "the answer is no step");
    }
}
