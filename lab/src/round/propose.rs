//! Asking and proposing: the proposer's prompts (a difficulty target, reference problems from
//! replay) and the problems it writes; or, in the generator arm, the domain's generator's
//! problems at the same targets.

use policy::{Request, SampleConfig, Sampled};
use problem::Target;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::Lab;
use crate::config::Arm;
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
    /// One prompt per target, with 0 to `round.references` reference problems drawn from replay
    /// (none where they would not leave room for the problem), and the proposer's answers.
    pub(super) fn propose(
        &mut self,
        targets: Vec<Target>,
        sampling: &SampleConfig,
    ) -> anyhow::Result<Proposals> {
        if self.cfg.round.arm == Arm::Generator {
            return Ok(self.generate(targets));
        }
        let n = targets.len();
        let mut references: Vec<Vec<u64>> = Vec::with_capacity(n);
        let mut requests = Vec::with_capacity(n);
        let ctx = self.proposer.model.config().context;
        for &target in &targets {
            let want = self.rng.random_range(0..=self.cfg.round.references);
            let refs: Vec<&ReplayItem> = self.replay.items().choose_multiple(&mut self.rng, want).collect();
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

    /// The generator arm: one problem from the domain's generator per target, of the target's
    /// depth and literal bound (the proposer's warm-start bound without one). A target the
    /// generator cannot draw gives an empty problem, which the judge records as invalid.
    fn generate(&mut self, targets: Vec<Target>) -> Proposals {
        let max_literal = self.cfg.warm_start.proposer.max_literal;
        let texts = targets
            .iter()
            .map(|t| generator_problem(self.domain, t, max_literal, &mut self.rng).unwrap_or_default())
            .collect();
        let references = vec![Vec::new(); targets.len()];
        Proposals { targets, references, requests: Vec::new(), sampled: Vec::new(), texts }
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
    let spec =
        problem::GenSpec { depth: target.depth, max_literal: target.max_literal.unwrap_or(max_literal) };
    domain.generate(&spec, rng).ok().map(|g| g.problem)
}
