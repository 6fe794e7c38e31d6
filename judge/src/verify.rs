//! Exact verification of a solver's output: its answer, and every step before it.

use problem::Domain;
use serde::{Deserialize, Serialize};

/// The final answer in a solver's output.
///
/// Rule: the solver may write a scratchpad of steps separated by the domain's step separator
/// (`=` in arithmetic: `(3+4)*2=7*2=14`); its answer is the text after the last separator, or
/// the whole output when there is none, with surrounding spaces removed.
pub fn extract_answer(output: &str, separator: char) -> &str {
    output.rsplit(separator).next().unwrap_or(output).trim_matches(' ')
}

/// One solver attempt, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The extracted final answer.
    pub answer: String,
    pub correct: bool,
}

/// Checks a solver's whole output for `problem`, whose exact answer is `expected`: correct when
/// the domain accepts the final answer ([`Domain::accepts`]) and every step before it holds
/// ([`Domain::step_holds`]: in arithmetic, each expression of the chain has the answer's value). A right answer reached through a false
/// step (`4*3+3` → `8+9=15`) is not a solution: paying for it would teach the false step.
pub fn verify(domain: &dyn Domain, problem: &str, expected: &str, output: &str) -> Verdict {
    let separator = domain.step_separator();
    let answer = extract_answer(output, separator);
    // Every part but the last (the answer) is a step.
    let correct = domain.accepts(problem, expected, answer)
        && output.rsplit(separator).skip(1).all(|s| domain.step_holds(s, expected));
    Verdict { answer: answer.to_string(), correct }
}

/// How far `output` got toward `expected` before its first false step: the share of `problem`'s
/// operations its leading steps took away, each step holding and having fewer operations than the
/// one before; 1 for a solution. A step that copies or reorders what came before takes nothing
/// away, and a bare number counts only as the accepted answer (any number "holds" as an
/// intermediate value), so an output that is not a solution scores below 1 and copying the
/// problem scores 0. `None` where the domain counts no operations ([`Domain::step_operations`]).
///
/// The verifier already reads every step; this is what it knows about a wrong attempt that a
/// bare right-or-wrong throws away: a partial, exactly checked credit (a process reward that
/// needs no learnt reward model).
pub fn progress(domain: &dyn Domain, problem: &str, expected: &str, output: &str) -> Option<f64> {
    let total = domain.step_operations(problem)?;
    if verify(domain, problem, expected, output).correct {
        return Some(1.0);
    }
    if total == 0 {
        return Some(0.0);
    }
    let mut left = total;
    for part in output.split(domain.step_separator()) {
        let part = part.trim_matches(' ');
        let Some(n) = domain.step_operations(part) else { break };
        let reduces = match n {
            0 => domain.accepts(problem, expected, part),
            n => n < left && domain.step_holds(part, expected),
        };
        if !reduces {
            break;
        }
        left = n;
    }
    Some(f64::from(total - left) / f64::from(total))
}

/// Fraction of correct verdicts; `None` when there are none.
pub fn solve_rate(verdicts: &[Verdict]) -> Option<f64> {
    (!verdicts.is_empty())
        .then(|| verdicts.iter().filter(|v| v.correct).count() as f64 / verdicts.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use problem::{Arith, Programs};

    #[test]
    fn extraction_takes_the_text_after_the_last_equals() {
        assert_eq!(extract_answer("14", '='), "14");
        assert_eq!(extract_answer(" 14 ", '='), "14");
        assert_eq!(extract_answer("(3+4)*2=7*2=14", '='), "14");
        assert_eq!(extract_answer("(3+4)*2=7*2=", '='), "");
        assert_eq!(extract_answer("", '='), "");
    }

    #[test]
    fn verification_is_exact() {
        assert!(verify(&Arith, "", "14", "(3+4)*2=7*2=14").correct);
        assert!(!verify(&Arith, "", "14", "(3+4)*2=14=7*2").correct);
        assert!(!verify(&Arith, "", "14", "014").correct);
        assert_eq!(verify(&Arith, "", "-3", "1-4= -3"), Verdict { answer: "-3".into(), correct: true });
    }

    #[test]
    fn a_right_answer_through_a_false_step_is_wrong() {
        // Worked solutions in every style, negative intermediate values included.
        assert!(verify(&Arith, "", "-12", "(-3)*4=-12").correct);
        assert!(verify(&Arith, "", "18", "12-(3-9)=12-(-6)=18").correct);
        assert!(verify(&Arith, "", "14", "7=14").correct, "a bare number is an intermediate value");
        // The answer is right, a step is not.
        let v = verify(&Arith, "", "15", "8+9=15");
        assert_eq!(v, Verdict { answer: "15".into(), correct: false });
        assert!(!verify(&Arith, "", "30", "18-14=30").correct);
        assert!(!verify(&Arith, "", "14", "7*2=3+=14").correct, "an unreadable step");
        assert!(!verify(&Arith, "", "14", "=14").correct, "an empty step");
        let vs = [true, false, true, true].map(|c| Verdict { answer: String::new(), correct: c });
        assert_eq!(solve_rate(&vs), Some(0.75));
        assert_eq!(solve_rate(&[]), None);
    }

    #[test]
    fn progress_counts_the_operations_taken_away_before_the_first_false_step() {
        let p = |output: &str| progress(&Arith, "(3+4)*(2+5)", "49", output).unwrap();
        assert_eq!(p("7*(2+5)=7*7=49"), 1.0, "a solution");
        assert_eq!(p("7*(2+5)=7*8=56"), 1.0 / 3.0, "right first step, false second");
        assert_eq!(p("7*(2+5)=7*7=48"), 2.0 / 3.0, "every step right but the answer");
        assert_eq!(p("7*7=48"), 2.0 / 3.0, "two operations folded into one right step");
        assert_eq!(p("8*(2+5)=56"), 0.0, "a false first step");
        assert_eq!(p("(3+4)*(2+5)=(2+5)*(3+4)=48"), 0.0, "copying or reordering takes nothing away");
        assert_eq!(p("7*(2+5)=7*(2+5)=7*7=48"), 1.0 / 3.0, "a repeated step ends the count");
        assert_eq!(p("50"), 0.0, "a bare wrong number");
        assert_eq!(p(""), 0.0);
        // A problem without operations, and a domain that counts none.
        assert_eq!(progress(&Arith, "7", "7", "8"), Some(0.0));
        assert_eq!(progress(&Arith, "7", "7", "7"), Some(1.0));
        assert_eq!(progress(&Programs, "x=4;a=x*3;a", "12", "12"), None);
    }

    #[test]
    fn programs_separate_steps_with_a_bar_and_abductions_take_any_input() {
        let problem = "x=4;a=x*3;?a>9{a=a-5};a";
        assert!(verify(&Programs, problem, "7", "a=12;?a>9{a=a-5};a|a=12;a=a-5;a|7").correct);
        assert!(!verify(&Programs, problem, "7", "a=12;a=a-4;a|7").correct, "a false step");
        assert_eq!(verify(&Programs, problem, "7", "7").answer, "7");
        let abduction = "a=x*x;a-x*4=0";
        assert!(verify(&Programs, abduction, "0", "4").correct, "another input that gives 0");
        assert!(!verify(&Programs, abduction, "0", "3").correct);
    }
}
