//! Judging a round's candidates together: analysis and repetition against the batch and the
//! archive.

use problem::{Analysis, Domain, Limits, ProblemError};

use crate::*;

/// A candidate problem as the judge sees it before any solver has tried it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub text: String,
    pub analysis: Result<Analysis, ProblemError>,
    pub repetition: Repetition,
}

/// The judge's first pass over a batch: parse, bound, interpret and canonicalize each text, and
/// find canonical duplicates within the batch and against `known`.
pub fn judge_batch(
    domain: &dyn Domain,
    limits: &Limits,
    texts: &[String],
    known: &dyn KnownHashes,
) -> Vec<Candidate> {
    let analyses: Vec<_> = texts.iter().map(|t| domain.analyze(t, limits)).collect();
    let hashes: Vec<Option<u64>> = analyses.iter().map(|a| a.as_ref().ok().map(|a| a.hash)).collect();
    let reps = repetitions(&hashes, known);
    texts
        .iter()
        .zip(analyses)
        .zip(reps)
        .map(|((text, analysis), repetition)| Candidate { text: text.clone(), analysis, repetition })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::Arith;

    #[test]
    fn batch_judging_finds_canonical_duplicates_and_keeps_errors() {
        let texts: Vec<String> = ["3+4", "4 + 3", "(3+4)*1", "3*4", "3+", "7+0"].map(String::from).into();
        let known = |h: u64| h == Arith.analyze("3*4", &Limits::default()).unwrap().hash;
        let c = judge_batch(&Arith, &Limits::default(), &texts, &known);
        let reps: Vec<_> = c.iter().map(|c| c.repetition).collect();
        assert_eq!(
            reps,
            [
                Repetition::Fresh,
                Repetition::Batch { first: 0 },
                Repetition::Batch { first: 0 },
                Repetition::Archive,
                Repetition::Fresh,
                Repetition::Fresh,
            ]
        );
        let err = c[4].analysis.as_ref().unwrap_err();
        assert_eq!(err.kind, problem::ErrorKind::Syntax);
        assert_eq!(c[5].analysis.as_ref().unwrap().canonical, "7");
    }
}
