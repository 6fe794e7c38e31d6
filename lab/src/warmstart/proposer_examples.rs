//! The proposer's warm-start training pairs: a difficulty prompt, sometimes with a reference
//! problem, and a problem of the asked depth — with the padding and wide literals the warm start
//! asks for, and, where `warm_start.proposer_references = "mutated"`, written as a small edit of
//! its reference (so that a proposer shown a problem at the solver's frontier writes one near it).

use problem::{Domain, GenSpec};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::WarmStartConfig;

/// What a reference problem in a proposer's training prompt is to the problem it is taught to
/// write after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceUse {
    /// Nothing: another problem of the generator's, drawn on its own. The proposer learns to
    /// ignore references.
    #[default]
    Unrelated,
    /// Its source: the problem is the reference mutated ([`Domain::mutate`]) to the asked depth,
    /// from a reference up to one operation away. The proposer learns to write near what it is
    /// shown, and the round can show it the frontier (`round.references_from = "frontier"`).
    Mutated,
}

/// The depths a mutated problem's reference may be from the problem's.
const REFERENCE_DEPTH_CHANGE: u32 = 1;

/// One proposer training pair: a difficulty prompt (with a reference problem half the time) and
/// a problem of that essential depth, with literals up to `proposer_wide_max_literal` for a
/// `proposer_wide_literals` share, padded with identities for a `proposer_padding` share; a
/// mutation of its reference where references are taught as sources.
pub(crate) fn example(
    cfg: &WarmStartConfig,
    domain: &dyn Domain,
    format: &proposer::ProposerFormat,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<(Vec<u32>, Vec<u32>)> {
    let p = &cfg.proposer;
    // No draw at all without wide literals: such a warm start trains as it did before them.
    let wide = cfg.proposer_wide_literals > 0.0 && rng.random_bool(cfg.proposer_wide_literals);
    let most = if wide { cfg.proposer_wide_bound() } else { p.max_literal };
    let mut g = p.draw_up_to(most, domain, rng)?;
    // Half the examples show a reference, as with unrelated ones; the problem then replaces the
    // generator's, at its depth, and is written without a reference where no mutation fits.
    let mut source = None;
    if cfg.proposer_references == ReferenceUse::Mutated && rng.random_bool(0.5) {
        let low = g.depth.saturating_sub(REFERENCE_DEPTH_CHANGE).max(p.min_depth).max(1);
        let high = (g.depth + REFERENCE_DEPTH_CHANGE).min(p.max_depth).max(low);
        let from =
            domain.generate(&GenSpec { depth: rng.random_range(low..=high), max_literal: most }, rng)?;
        let spec = GenSpec { depth: g.depth, max_literal: most };
        if let Some(m) = domain.mutate(&from.problem, &spec, cfg.proposer_reference_edits, rng) {
            g.problem = m;
            source = Some(from.problem);
        }
    }
    // Asked for the bound it keeps to, when the proposer is told bounds.
    let target = problem::Target {
        depth: g.depth,
        max_literal: (!format.literal_bounds().is_empty()).then_some(most),
    };
    let mut text = g.problem;
    // No draw at all without padding: such a warm start trains as it did before padding existed.
    if cfg.proposer_padding > 0.0 && rng.random_bool(cfg.proposer_padding) {
        let identities = rng.random_range(1..=cfg.proposer_padding_ops);
        // Kept only where the proposer could write it whole.
        match domain.pad(&text, identities, rng) {
            Some(padded) if padded.chars().count() < p.max_new_tokens => text = padded,
            _ => {}
        }
    }
    let written = format.target(&text)?;
    let mut refs = Vec::new();
    if let Some(source) = source {
        refs.push(source);
    } else if cfg.proposer_references == ReferenceUse::Unrelated && rng.random_bool(0.5) {
        refs.push(p.draw(domain, rng)?.problem);
    }
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let mut prompt = format.prompt(target, &refs)?;
    if prompt.len() + written.len() > p.context {
        prompt = format.prompt(target, &[])?;
    }
    Ok((prompt, written))
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::player::DIFFICULTY_LEVELS;
    use problem::{Limits, Special};
    use rand::SeedableRng;

    /// `n` proposer training pairs under `cfg`, as (prompt, problem text), after checking that
    /// each target ends with the end token.
    fn training_problems(cfg: &WarmStartConfig, seed: u64, n: usize) -> Vec<(Vec<u32>, String)> {
        let domain: &dyn Domain = &problem::arith::Arith;
        let bounds = cfg.proposer_literal_bounds();
        let tok = domain.tokenizer(DIFFICULTY_LEVELS).with_literal_levels(bounds.len() as u32);
        let format = proposer::ProposerFormat::new(tok.clone(), cfg.proposer.max_new_tokens, bounds);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let (prompt, target) = example(cfg, domain, &format, &mut rng).unwrap();
                assert_eq!(target.last(), Some(&tok.special(Special::Eos)));
                (prompt, tok.decode(&target[..target.len() - 1]).unwrap())
            })
            .collect()
    }

    /// The share of padded training problems for `proposer_padding = rate`, after checking that
    /// every problem has the essential depth its prompt asks for and at most
    /// `proposer_padding_ops` identities.
    fn padded_share(rate: f64, n: usize) -> f64 {
        let domain: &dyn Domain = &problem::arith::Arith;
        let cfg =
            WarmStartConfig { proposer_padding: rate, proposer_padding_ops: 2, ..WarmStartConfig::default() };
        let tok = domain.tokenizer(DIFFICULTY_LEVELS);
        let mut padded = 0;
        for (prompt, text) in training_problems(&cfg, 9, n) {
            let a = domain.analyze(&text, &Limits::default()).unwrap();
            assert_eq!(tok.difficulty_of(prompt[1]), Some(a.essential_ops), "{text}");
            assert!(a.surface_ops <= a.essential_ops + 2, "{text}");
            padded += usize::from(a.padded());
        }
        padded as f64 / n as f64
    }

    #[test]
    fn proposer_training_problems_carry_padding_at_the_configured_rate() {
        assert_eq!(padded_share(0.0, 300), 0.0);
        assert_eq!(padded_share(1.0, 300), 1.0);
        // 2,000 draws at 0.3: the standard error is 0.010.
        let share = padded_share(0.3, 2000);
        assert!((share - 0.3).abs() < 0.04, "{share}");
    }

    /// The share of training problems with a literal above 20 for `proposer_wide_literals =
    /// rate` and, where the proposer is told bounds, the share asked for the wide one, after
    /// checking that none is above 99, that each keeps to the bound its prompt names, and that a
    /// proposer not told bounds is asked for none.
    fn wide_share(rate: f64, tokens: bool, n: usize) -> (f64, f64) {
        let cfg = WarmStartConfig {
            proposer_wide_literals: rate,
            proposer_wide_max_literal: 99,
            proposer_literal_tokens: tokens,
            proposer_padding: 0.0,
            ..WarmStartConfig::default()
        };
        let bounds = cfg.proposer_literal_bounds();
        let tok = problem::arith::Arith.tokenizer(DIFFICULTY_LEVELS).with_literal_levels(bounds.len() as u32);
        let (mut wide, mut asked_wide) = (0, 0);
        for (prompt, text) in training_problems(&cfg, 4, n) {
            let a = problem::arith::Arith.analyze(&text, &Limits::default()).unwrap();
            assert!(a.max_literal <= 99, "{text}");
            wide += usize::from(a.max_literal > 20);
            match tok.literal_of(prompt[2]) {
                Some(level) => {
                    assert!(a.max_literal <= bounds[level as usize], "{text}: {}", tok.render(&prompt));
                    asked_wide += usize::from(level == 1);
                }
                None => assert!(bounds.is_empty() && prompt.iter().all(|&t| tok.literal_of(t).is_none())),
            }
        }
        (wide as f64 / n as f64, asked_wide as f64 / n as f64)
    }

    #[test]
    fn proposer_training_problems_have_wide_literals_at_the_configured_rate() {
        for tokens in [false, true] {
            assert_eq!(wide_share(0.0, tokens, 300), (0.0, 0.0));
            // Of problems drawn up to 99, all but those whose literals all fall in 0..=20 (4% at
            // one operation, less beyond) have one above 20.
            let (all, asked) = wide_share(1.0, tokens, 600);
            assert!(all > 0.97, "{all}");
            assert_eq!(asked, if tokens { 1.0 } else { 0.0 });
            // 2,000 draws at 0.25: the standard error is 0.010.
            let (share, asked) = wide_share(0.25, tokens, 2000);
            assert!((share - 0.25 * all).abs() < 0.04, "{share}");
            assert!(if tokens { (asked - 0.25).abs() < 0.04 } else { asked == 0.0 }, "{asked}");
        }
    }

    #[test]
    fn mutated_references_are_the_sources_of_their_problems() {
        let domain: &dyn Domain = &problem::arith::Arith;
        let cfg = WarmStartConfig {
            proposer_references: ReferenceUse::Mutated,
            proposer_padding: 0.0,
            ..WarmStartConfig::default()
        };
        let tok = domain.tokenizer(DIFFICULTY_LEVELS);
        let format = proposer::ProposerFormat::new(tok.clone(), cfg.proposer.max_new_tokens, Vec::new());
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (mut with_reference, n) = (0, 2000);
        for _ in 0..n {
            let (prompt, target) = example(&cfg, domain, &format, &mut rng).unwrap();
            let text = tok.decode(&target[..target.len() - 1]).unwrap();
            let a = domain.analyze(&text, &Limits::default()).unwrap();
            assert_eq!(tok.difficulty_of(prompt[1]), Some(a.depth), "{text}");
            // The prompt: <bos> <dK> [reference <sep>] <sep>.
            let sep = tok.special(Special::Sep);
            let end = prompt.iter().position(|&t| t == sep).unwrap();
            if end == 2 {
                continue;
            }
            with_reference += 1;
            let reference = tok.decode(&prompt[2..end]).unwrap();
            let r = domain.analyze(&reference, &Limits::default()).unwrap();
            assert!(r.depth.abs_diff(a.depth) <= REFERENCE_DEPTH_CHANGE, "{reference} → {text}");
            assert_ne!(r.hash, a.hash, "{reference} → {text}");
            // Close: one edit keeps all the reference's literals but at most two (a cut to a new
            // literal drops two).
            let literals = |s: &str| -> Vec<String> {
                s.split(|c: char| !c.is_ascii_digit()).filter(|l| !l.is_empty()).map(String::from).collect()
            };
            let mut left = literals(&text);
            let kept = literals(&reference)
                .into_iter()
                .filter(|l| left.iter().position(|m| m == l).map(|i| left.swap_remove(i)).is_some())
                .count();
            assert!(kept + 2 >= literals(&reference).len(), "{reference} → {text}");
        }
        // Half ask with a reference, less the few draws no mutation fits; 2,000 draws at 0.5: the
        // standard error is 0.011.
        let share = with_reference as f64 / n as f64;
        assert!((0.42..0.53).contains(&share), "{share}");
    }
}
