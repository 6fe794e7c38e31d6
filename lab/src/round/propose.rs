//! Asking and proposing: the proposer's prompts (a difficulty target, reference problems from
//! replay or from its frontier) and the problems it writes; or, in the generator arm, the
//! domain's own problems at the same targets (its generator's, or its references mutated).

use policy::{Request, SampleConfig, Sampled};
use problem::{GenSpec, Limits, Target};
use rand::seq::IndexedRandom;
use rand::Rng;

use super::Lab;
use crate::config::{Arm, ReferenceSource};
use curriculum::ReplayItem;

/// The proposer's problems, with what each was asked.
pub(super) struct Proposals {
    /// The difficulty target each proposal was asked for.
    pub targets: Vec<Target>,
    /// The archive ids of the reference problems each prompt showed.
    pub references: Vec<Vec<u64>>,
    /// The proposer's prompts and what it sampled, one a proposal; empty when the generator
    /// wrote the round's problems.
    pub requests: Vec<Request>,
    pub sampled: Vec<Sampled>,
    /// Each proposal's problem text, as the proposer's format reads it back.
    pub texts: Vec<String>,
}

impl Lab {
    /// One prompt per target, with its reference problems (see [`Lab::references`]; none where
    /// they would not leave room for the problem), and the proposer's answers.
    pub(super) fn propose(
        &mut self,
        targets: Vec<Target>,
        sampling: &SampleConfig,
    ) -> anyhow::Result<Proposals> {
        if self.cfg.round.arm == Arm::Generator {
            // Only frontier references are the generator's to mutate: it draws nothing else.
            let chosen = match self.cfg.round.references_from {
                ReferenceSource::Frontier => self.references(&targets),
                ReferenceSource::Replay => vec![Vec::new(); targets.len()],
            };
            return Ok(self.generate(targets, chosen));
        }
        let chosen = self.references(&targets);
        let n = targets.len();
        let mut references: Vec<Vec<u64>> = Vec::with_capacity(n);
        let mut requests = Vec::with_capacity(n);
        let ctx = self.proposer.model.config().context;
        for (&target, refs) in targets.iter().zip(&chosen) {
            let texts: Vec<&str> = refs.iter().map(|r| r.problem.as_str()).collect();
            let mut req = self.proposer_format.request(target, &texts)?;
            let mut ids: Vec<u64> = refs.iter().map(|r| r.id).collect();
            if req.prompt.len() + req.max_new > ctx {
                req = self.proposer_format.request(target, &[])?;
                ids.clear();
            }
            references.push(ids);
            requests.push(req);
        }
        let sampled = policy::sample(&self.proposer.model, &requests, sampling, &mut self.rng, true)?;
        let texts = sampled.iter().map(|s| self.proposer_format.parse(s).text).collect();
        Ok(Proposals { targets, references, requests, sampled, texts })
    }

    /// Each target's reference problems: 0 to `round.references` drawn uniformly from replay, or
    /// with `round.references_from = "frontier"` that many of the replayed problems whose solve
    /// rate is in the frontier band — the last one, or with `round.reference_evidence` the rate
    /// over at least that many attempts — of the target's depth where there are such, else one
    /// operation off, within the target's literal bound (none where replay holds none).
    fn references(&mut self, targets: &[Target]) -> Vec<Vec<ReplayItem>> {
        let most = self.cfg.round.references;
        if self.cfg.round.references_from == ReferenceSource::Replay {
            return targets
                .iter()
                .map(|_| {
                    let want = self.rng.random_range(0..=most);
                    self.replay.items().choose_multiple(&mut self.rng, want).cloned().collect()
                })
                .collect();
        }
        let band = self.cfg.frontier;
        let limits = Limits::default();
        let frontier: Vec<(&ReplayItem, problem::Analysis)> = self
            .replay
            .items()
            .iter()
            .filter(|r| match self.cfg.round.reference_evidence {
                0 => band.contains(r.solve_rate),
                least => r.pooled_rate().is_some_and(|(p, n)| n >= least && band.contains(p)),
            })
            .filter_map(|r| self.domain.analyze(&r.problem, &limits).ok().map(|a| (r, a)))
            .collect();
        targets
            .iter()
            .map(|t| {
                let fits = |a: &problem::Analysis, off: u32| {
                    a.depth.abs_diff(t.depth) == off && t.max_literal.is_none_or(|b| a.max_literal <= b)
                };
                let near: Vec<&ReplayItem> = [0, 1]
                    .into_iter()
                    .map(|off| {
                        frontier.iter().filter(|(_, a)| fits(a, off)).map(|(r, _)| *r).collect::<Vec<_>>()
                    })
                    .find(|tier| !tier.is_empty())
                    .unwrap_or_default();
                near.choose_multiple(&mut self.rng, most).map(|r| (*r).clone()).collect()
            })
            .collect()
    }

    /// The generator arm: one problem per target from the domain, of the target's depth and
    /// literal bound (the proposer's warm-start bound without one) — its frontier reference
    /// mutated where `chosen` gives it one, else the generator's. A target neither can meet gives an empty
    /// problem, which the judge records as invalid.
    fn generate(&mut self, targets: Vec<Target>, chosen: Vec<Vec<ReplayItem>>) -> Proposals {
        let max_literal = self.cfg.warm_start.proposer.max_literal;
        let mut texts = Vec::with_capacity(targets.len());
        let mut references = Vec::with_capacity(targets.len());
        // Canonical hashes of this round's mutations so far.
        let mut written = std::collections::HashSet::new();
        for (t, refs) in targets.iter().zip(&chosen) {
            let spec = GenSpec { depth: t.depth, max_literal: t.max_literal.unwrap_or(max_literal) };
            let mutated = refs
                .first()
                .and_then(|r| Some((r.id, self.fresh_mutation(&r.problem, &spec, &mut written)?)));
            match mutated {
                Some((id, text)) => {
                    texts.push(text);
                    references.push(vec![id]);
                }
                None => {
                    texts.push(
                        generator_problem(self.domain, t, max_literal, &mut self.rng).unwrap_or_default(),
                    );
                    references.push(Vec::new());
                }
            }
        }
        Proposals { targets, references, requests: Vec::new(), sampled: Vec::new(), texts }
    }

    /// A mutation of `reference` by the edits a proposer warm-started on mutated references was
    /// taught: up to `round.mutation_tries` of them, the first that copies neither the archive
    /// nor this round's earlier ones (`written`), else the last. Small edits of the same few
    /// frontier problems otherwise come back to the same problems (bench/experiments/selfplay).
    fn fresh_mutation(
        &mut self,
        reference: &str,
        spec: &GenSpec,
        written: &mut std::collections::HashSet<u64>,
    ) -> Option<String> {
        let edits = self.cfg.warm_start.proposer_reference_edits;
        let mut last = None;
        for _ in 0..self.cfg.round.mutation_tries {
            let Some(m) = self.domain.mutate(reference, spec, edits, &mut self.rng) else { continue };
            let hash = self.domain.analyze(&m, &Limits::default()).ok().map(|a| a.hash);
            if self.cfg.round.mutation_tries <= 1
                || hash.is_some_and(|h| !self.known.contains(&h) && written.insert(h))
            {
                return Some(m);
            }
            last = Some(m);
        }
        last
    }
}

/// One problem from the domain's generator for `target`: of its depth and literal bound
/// (`max_literal` without one); `None` where the generator cannot draw it.
pub(super) fn generator_problem(
    domain: &dyn problem::Domain,
    target: &Target,
    max_literal: u32,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Option<String> {
    let spec = GenSpec { depth: target.depth, max_literal: target.max_literal.unwrap_or(max_literal) };
    domain.generate(&spec, rng).ok().map(|g| g.problem)
}
