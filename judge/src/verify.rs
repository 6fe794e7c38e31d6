//! Exact verification of a solver's output: its answer, and every step before it.

use problem::Domain;
use serde::{Deserialize, Serialize};

/// The final answer in a solver's output.
///
/// Rule: the solver may write a scratchpad of steps separated by `=` (`(3+4)*2=7*2=14`); its
/// answer is the text after the last `=`, or the whole output when there is none, with
/// surrounding spaces removed.
pub fn extract_answer(output: &str) -> &str {
    output.rsplit('=').next().unwrap_or(output).trim_matches(' ')
}

/// One solver attempt, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The extracted final answer.
    pub answer: String,
    pub correct: bool,
}

/// Checks a solver's whole output against the exact answer of the problem: correct when the
/// final answer matches and every step before it holds ([`Domain::step_holds`]: in arithmetic,
/// each expression of the chain has the answer's value). A right answer reached through a false
/// step (`4*3+3` → `8+9=15`) is not a solution: paying for it would teach the false step.
pub fn verify(domain: &dyn Domain, expected: &str, output: &str) -> Verdict {
    let answer = extract_answer(output);
    // Every `=`-separated part but the last (the answer) is a step.
    let correct = domain.answers_match(expected, answer)
        && output.rsplit('=').skip(1).all(|s| domain.step_holds(s, expected));
    Verdict { answer: answer.to_string(), correct }
}

/// Fraction of correct verdicts; `None` when there are none.
pub fn solve_rate(verdicts: &[Verdict]) -> Option<f64> {
    (!verdicts.is_empty())
        .then(|| verdicts.iter().filter(|v| v.correct).count() as f64 / verdicts.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::Arith;

    #[test]
    fn extraction_takes_the_text_after_the_last_equals() {
        assert_eq!(extract_answer("14"), "14");
        assert_eq!(extract_answer(" 14 "), "14");
        assert_eq!(extract_answer("(3+4)*2=7*2=14"), "14");
        assert_eq!(extract_answer("(3+4)*2=7*2="), "");
        assert_eq!(extract_answer(""), "");
    }

    #[test]
    fn verification_is_exact() {
        assert!(verify(&Arith, "14", "(3+4)*2=7*2=14").correct);
        assert!(!verify(&Arith, "14", "(3+4)*2=14=7*2").correct);
        assert!(!verify(&Arith, "14", "014").correct);
        assert_eq!(verify(&Arith, "-3", "1-4= -3"), Verdict { answer: "-3".into(), correct: true });
    }

    #[test]
    fn a_right_answer_through_a_false_step_is_wrong() {
        // Worked solutions in every style, negative intermediate values included.
        assert!(verify(&Arith, "-12", "(-3)*4=-12").correct);
        assert!(verify(&Arith, "18", "12-(3-9)=12-(-6)=18").correct);
        assert!(verify(&Arith, "14", "7=14").correct, "a bare number is an intermediate value");
        // The answer is right, a step is not.
        let v = verify(&Arith, "15", "8+9=15");
        assert_eq!(v, Verdict { answer: "15".into(), correct: false });
        assert!(!verify(&Arith, "30", "18-14=30").correct);
        assert!(!verify(&Arith, "14", "7*2=3+=14").correct, "an unreadable step");
        assert!(!verify(&Arith, "14", "=14").correct, "an empty step");
        let vs = [true, false, true, true].map(|c| Verdict { answer: String::new(), correct: c });
        assert_eq!(solve_rate(&vs), Some(0.75));
        assert_eq!(solve_rate(&[]), None);
    }
}
