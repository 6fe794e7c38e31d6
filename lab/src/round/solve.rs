//! Solving: the problems the solver tries this round — the valid proposals, replayed problems,
//! rehearsal problems of the warm start's kind — its attempts, each verified exactly, and which
//! of them it learns from.

use curriculum::ReplayItem;
use policy::SampleConfig;
use problem::{Domain, Limits};
use solver::plan::Graded;
pub(super) use solver::plan::Source;
use store::Attempt;

use super::judged::Judged;
use super::Lab;
use crate::rollouts::{check_answers, RolloutReport};

/// A problem the solver tries this round, and where it came from.
pub(super) struct Task {
    pub text: String,
    pub answer: String,
    pub source: Source,
}

/// The round's problems for the solver, in order: the valid proposals, the replayed problems,
/// the rehearsal problems.
pub(super) struct Tasks {
    pub tasks: Vec<Task>,
    /// For each proposal, its task when it is valid.
    pub of_proposal: Vec<Option<usize>>,
    /// The replayed items, in the order of their tasks.
    pub replayed: Vec<ReplayItem>,
}

impl Tasks {
    /// The indices of the tasks whose source `keep` accepts, in order.
    pub fn indices(&self, keep: fn(Source) -> bool) -> impl Iterator<Item = usize> + '_ {
        self.tasks.iter().enumerate().filter(move |(_, t)| keep(t.source)).map(|(i, _)| i)
    }
}

/// Each task's attempts: the solver's output, checked, and the tokens it sampled.
pub(super) struct Attempts {
    pub per_task: Vec<Vec<(Attempt, Vec<u32>)>>,
    /// Attempts per task.
    pub k: usize,
    /// Tokens sampled per second while the attempts were sampled (here or on workers): what
    /// `selfplay bench sample` measures alone.
    pub tokens_per_s: f64,
}

impl Attempts {
    /// Task `t`'s correct attempts.
    pub fn correct(&self, t: usize) -> u64 {
        self.per_task[t].iter().filter(|(a, _)| a.correct).count() as u64
    }

    /// Task `t`'s solve rate p̂.
    pub fn rate(&self, t: usize) -> f64 {
        self.correct(t) as f64 / self.k as f64
    }

    /// Each attempt of each task as the solver's plan grades it: right or wrong and, when
    /// `with_progress`, how far it got (`judge::progress`, read only then: it walks each wrong
    /// chain again).
    pub fn graded(&self, tasks: &Tasks, domain: &dyn Domain, with_progress: bool) -> Vec<Vec<Graded>> {
        self.per_task
            .iter()
            .zip(&tasks.tasks)
            .map(|(tries, task)| {
                let grade = |a: &Attempt| Graded {
                    correct: a.correct,
                    progress: with_progress
                        .then(|| judge::progress(domain, &task.text, &task.answer, &a.output))
                        .flatten(),
                };
                tries.iter().map(|(a, _)| grade(a)).collect()
            })
            .collect()
    }
}

impl Lab {
    /// The round's tasks: the valid proposals (marked when one copies a held-out problem), then
    /// `round.replay` problems drawn from replay and `round.rehearsal` fresh ones of the warm
    /// start's kind.
    pub(super) fn draw_tasks(&mut self, judged: &Judged, round: u64) -> anyhow::Result<Tasks> {
        let replayed = self.replay.sample(self.cfg.round.replay, round, &mut self.rng);
        let rehearsed = self.rehearsal_problems(self.cfg.round.rehearsal)?;
        let mut tasks = Vec::new();
        let mut of_proposal = vec![None; judged.candidates.len()];
        for (i, c) in judged.candidates.iter().enumerate() {
            if let Ok(a) = &c.analysis {
                of_proposal[i] = Some(tasks.len());
                let held_out = self.held_out_hashes.contains(&a.hash);
                tasks.push(Task {
                    text: c.text.clone(),
                    answer: a.answer.clone(),
                    source: Source::Fresh { held_out },
                });
            }
        }
        for r in &replayed {
            tasks.push(Task { text: r.problem.clone(), answer: r.answer.clone(), source: Source::Replayed });
        }
        for (text, answer) in rehearsed {
            tasks.push(Task { text, answer, source: Source::Rehearsed });
        }
        Ok(Tasks { tasks, of_proposal, replayed })
    }

    /// `round.attempts` tries at every task, each verified against its exact answer. They are
    /// sampled in shards of `round.sampling_shard`, where the lab's [`crate::rollouts::Rollouts`]
    /// runs them.
    pub(super) fn attempt(
        &mut self,
        tasks: &Tasks,
        sampling: &SampleConfig,
        round: u64,
    ) -> anyhow::Result<(Attempts, Option<RolloutReport>)> {
        let k = self.cfg.round.attempts;
        let mut requests = Vec::with_capacity(tasks.tasks.len() * k);
        for task in &tasks.tasks {
            requests.extend(self.solver_format.requests(&task.text, k)?);
        }
        let shards = policy::shards(requests, self.cfg.round.sampling_shard, *sampling, &mut self.rng);
        let started = std::time::Instant::now();
        let answered = self.rollouts.sample(&self.solver.model, round, &shards)?;
        let seconds = started.elapsed().as_secs_f64();
        check_answers(&shards, &answered)?;
        let report = self.rollouts.report();
        let sampled: Vec<policy::Sampled> = answered.into_iter().flatten().collect();
        let tokens: usize = sampled.iter().map(|s| s.tokens.len()).sum();
        let tokens_per_s = if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 };
        let mut per_task: Vec<Vec<(Attempt, Vec<u32>)>> = vec![Vec::with_capacity(k); tasks.tasks.len()];
        for (j, s) in sampled.iter().enumerate() {
            let t = j / k;
            let output = self.solver_format.output_text(s);
            let v = judge::verify(self.domain, &tasks.tasks[t].text, &tasks.tasks[t].answer, &output);
            per_task[t].push((Attempt { output, answer: v.answer, correct: v.correct }, s.tokens.clone()));
        }
        Ok((Attempts { per_task, k, tokens_per_s }, report))
    }

    /// `n` fresh problems of the warm start's kind (its depths and literal bound), none of them a
    /// held-out problem, as `(text, answer)`.
    fn rehearsal_problems(&mut self, n: usize) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::with_capacity(n);
        // Held-out problems are few among the generator's: a bounded number of redraws.
        for _ in 0..n * 4 {
            if out.len() == n {
                break;
            }
            let g = self.cfg.warm_start.solver.draw(self.domain, &mut self.rng)?;
            let held_out = self
                .domain
                .analyze(&g.problem, &Limits::default())
                .is_ok_and(|a| self.held_out_hashes.contains(&a.hash));
            if !held_out {
                out.push((g.problem, g.answer));
            }
        }
        Ok(out)
    }
}
