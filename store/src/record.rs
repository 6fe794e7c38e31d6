//! The archived record of one generated problem, and its versioned encoding.
//!
//! Stored values are `[format version: u8] ++ postcard(record)`. postcard is compact and fast but
//! positional, so any change to a record type is a new format version: the old struct stays here,
//! frozen, with a conversion into the current one, and [`decode`] dispatches on the version byte.

use serde::{Deserialize, Serialize};

/// Version of the record encoding written by this build.
pub const RECORD_VERSION: u8 = 5;

/// One solver attempt at a problem.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Attempt {
    /// Everything the solver wrote (scratchpad included).
    pub output: String,
    /// The final answer extracted from it.
    pub answer: String,
    pub correct: bool,
}

/// Every term of the proposer's reward for this problem.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rewards {
    pub frontier: Option<f64>,
    pub padding_factor: f64,
    /// The solver's solve rate at this problem's surface size when the reward was paid.
    pub length_baseline: Option<f64>,
    /// Length-residual discount; missing in records written before the term existed.
    pub length_factor: Option<f64>,
    pub repetition: f64,
    pub interestingness: Option<f64>,
    pub interestingness_weight: f64,
    /// 1 when the problem's essential depth was not its difficulty target, 0 when it was; missing
    /// for invalid problems and in records written before the term existed.
    pub target_miss: Option<f64>,
    pub invalid: Option<f64>,
    pub total: f64,
}

/// Everything known about one generated problem, valid or not.
///
/// Fields that a stage of the lab has not filled (no solver yet, no scorer configured) are empty:
/// `None` or an empty list.
///
/// In JSON, missing fields take their empty value, so hand-written or older JSON lines import;
/// unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProblemRecord {
    /// Archive-wide id, assigned in insertion order.
    pub id: u64,
    /// Name of the run that generated it.
    pub run: String,
    /// Round of that run.
    pub round: u64,
    /// Problem domain (`"arith"`).
    pub domain: String,
    /// The text exactly as proposed.
    pub text: String,
    pub valid: bool,
    /// Short stable reason when invalid (`"syntax"`, `"range"`, ...).
    pub reason: Option<String>,
    /// The full error message when invalid.
    pub error: Option<String>,
    /// The exact answer, when valid.
    pub answer: Option<String>,
    pub canonical: Option<String>,
    /// 64-bit canonical hash; written as 16 hex digits in JSON and CSV.
    #[serde(with = "crate::hex_u64::option")]
    pub canonical_hash: Option<u64>,
    pub surface_ops: Option<u32>,
    pub essential_ops: Option<u32>,
    pub depth: Option<u32>,
    pub padding: Option<f64>,
    /// Difficulty target the proposer was conditioned on.
    pub difficulty_target: Option<u32>,
    /// Ids of the reference problems shown to the proposer (lineage).
    pub references: Vec<u64>,
    /// How the judge classified repetition (`"fresh"`, `"batch"`, `"archive"`).
    pub repetition: Option<String>,
    pub attempts: Vec<Attempt>,
    /// Fraction of attempts that were correct.
    pub solve_rate: Option<f64>,
    pub rewards: Option<Rewards>,
    pub interestingness: Option<f64>,
    /// `name@version` of the scorer that gave `interestingness`.
    pub scorer: Option<String>,
    /// Why the scorer gave no score, when it failed.
    pub scorer_error: Option<String>,
    pub proposer_version: Option<String>,
    pub solver_version: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// What each configured scorer said: `interestingness` is their weighted mean over those that
    /// answered.
    pub scores: Vec<ScorerScore>,
    /// Largest literal the difficulty target allowed, for a proposer asked for a literal bound.
    /// Last, so that format 4 is this layout without it.
    pub literal_target: Option<u32>,
}

/// One scorer's verdict on one problem.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScorerScore {
    /// `name@version`.
    pub scorer: String,
    /// Its weight among the configured scorers.
    pub weight: f64,
    /// In [0, 1]; missing when the scorer failed.
    pub score: Option<f64>,
    /// Why, when the scorer said.
    pub reason: Option<String>,
    /// What went wrong, when it failed.
    pub error: Option<String>,
}

impl ProblemRecord {
    /// The solve-rate bucket used by the solve-rate index: `floor(p · 20)`, so `p = 1` is bucket 20.
    pub fn solve_rate_bucket(p: f64) -> u8 {
        (p.clamp(0.0, 1.0) * f64::from(SOLVE_RATE_BUCKETS)).floor() as u8
    }

    /// Checks what the indexes, the id counter and every reader rely on: ids, rounds and
    /// references within [`MAX_ID`] and [`MAX_ROUND`], fractions in [0, 1], every number finite,
    /// every text within [`MAX_TEXT`] bytes.
    pub fn validate(&self) -> Result<(), String> {
        if self.run.is_empty() || self.run.len() > 255 || self.run.contains('\0') {
            return Err(format!("run name {:?} must be 1 to 255 bytes with no NUL", self.run));
        }
        if self.id > MAX_ID {
            return Err(format!("id {} is above the largest id, {MAX_ID}", self.id));
        }
        if self.round > MAX_ROUND {
            return Err(format!("round {} is above the largest round, {MAX_ROUND}", self.round));
        }
        if let Some(r) = self.references.iter().find(|&&r| r == 0 || r > MAX_ID) {
            return Err(format!("reference {r} is not an id (1 to {MAX_ID})"));
        }
        let fraction = |name: &str, v: Option<f64>| match v {
            Some(v) if !(0.0..=1.0).contains(&v) => Err(format!("{name} {v} is outside [0, 1]")),
            _ => Ok(()),
        };
        fraction("solve_rate", self.solve_rate)?;
        fraction("padding", self.padding)?;
        fraction("interestingness", self.interestingness)?;
        for s in &self.scores {
            fraction("a score", s.score)?;
            if !(s.weight.is_finite() && s.weight >= 0.0) {
                return Err(format!(
                    "the weight {} of scorer {:?} must be a finite number >= 0",
                    s.weight, s.scorer
                ));
            }
        }
        if let Some(w) = &self.rewards {
            let terms = [
                ("frontier", w.frontier),
                ("padding_factor", Some(w.padding_factor)),
                ("length_baseline", w.length_baseline),
                ("length_factor", w.length_factor),
                ("repetition", Some(w.repetition)),
                ("interestingness", w.interestingness),
                ("interestingness_weight", Some(w.interestingness_weight)),
                ("target_miss", w.target_miss),
                ("invalid", w.invalid),
                ("total", Some(w.total)),
            ];
            if let Some((name, v)) =
                terms.iter().find_map(|(n, v)| v.filter(|v| !v.is_finite()).map(|v| (n, v)))
            {
                return Err(format!("reward term {name} {v} is not a finite number"));
            }
        }
        let texts = [
            Some(&self.domain),
            Some(&self.text),
            self.reason.as_ref(),
            self.error.as_ref(),
            self.answer.as_ref(),
            self.canonical.as_ref(),
            self.repetition.as_ref(),
            self.scorer.as_ref(),
            self.scorer_error.as_ref(),
            self.proposer_version.as_ref(),
            self.solver_version.as_ref(),
        ];
        let attempts = self.attempts.iter().flat_map(|a| [&a.output, &a.answer]);
        let scores = self.scores.iter().flat_map(|s| [Some(&s.scorer), s.reason.as_ref(), s.error.as_ref()]);
        if let Some(long) =
            texts.into_iter().chain(scores).flatten().chain(attempts).find(|t| t.len() > MAX_TEXT)
        {
            return Err(format!("a text of {} bytes is longer than the {MAX_TEXT} allowed", long.len()));
        }
        Ok(())
    }
}

/// The largest id: ids are exact in every JSON reader (2^53 − 1), and the id counter, one above
/// the largest stored id, can never overflow.
pub const MAX_ID: u64 = (1 << 53) - 1;
/// The largest round, for the same reasons.
pub const MAX_ROUND: u64 = (1 << 53) - 1;
/// The longest text a record holds in any field: problem, answers, reasons, errors.
pub const MAX_TEXT: usize = 64 << 10;

/// Solve rates are indexed in this many equal buckets (plus one for exactly 1).
pub const SOLVE_RATE_BUCKETS: u8 = 20;

/// The stored bytes of a record.
pub fn encode(r: &ProblemRecord) -> Vec<u8> {
    let out = vec![RECORD_VERSION];
    postcard::to_extend(r, out).expect("records always serialize")
}

/// A record from its stored bytes.
pub fn decode(bytes: &[u8]) -> Result<ProblemRecord, String> {
    match bytes.split_first() {
        None => Err("empty value".into()),
        Some((&RECORD_VERSION, body)) => match postcard::take_from_bytes::<ProblemRecord>(body) {
            Ok((r, [])) => Ok(r),
            Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
            Err(e) => Err(format!("corrupt record: {e}")),
        },
        // Format 4 is this layout less `literal_target`, the last field: postcard writes `None`
        // as a single 0 byte.
        Some((4, body)) => match postcard::take_from_bytes::<ProblemRecord>(&[body, &[0]].concat()) {
            Ok((r, [])) => Ok(r),
            Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
            Err(e) => Err(format!("corrupt record (format 4): {e}")),
        },
        Some((3, body)) => match postcard::take_from_bytes::<v2::ProblemRecordV2<v3::RewardsV3>>(body) {
            Ok((r, [])) => Ok(r.into()),
            Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
            Err(e) => Err(format!("corrupt record (format 3): {e}")),
        },
        Some((2, body)) => match postcard::take_from_bytes::<v2::ProblemRecordV2>(body) {
            Ok((r, [])) => Ok(r.into()),
            Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
            Err(e) => Err(format!("corrupt record (format 2): {e}")),
        },
        Some((1, body)) => match postcard::take_from_bytes::<v1::ProblemRecordV1>(body) {
            Ok((r, [])) => Ok(r.into()),
            Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
            Err(e) => Err(format!("corrupt record (format 1): {e}")),
        },
        Some((v, _)) => {
            Err(format!("record format {v} is not known to this build (it writes {RECORD_VERSION})"))
        }
    }
}

/// Format 3, frozen: records written before the target term. Its layout is format 2's with these
/// rewards in place of [`v2::RewardsV2`].
mod v3 {
    use super::Rewards;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct RewardsV3 {
        pub frontier: Option<f64>,
        pub padding_factor: f64,
        pub length_baseline: Option<f64>,
        pub length_factor: Option<f64>,
        pub repetition: f64,
        pub interestingness: Option<f64>,
        pub interestingness_weight: f64,
        pub invalid: Option<f64>,
        pub total: f64,
    }

    /// Format 3 lacks the target term.
    impl From<RewardsV3> for Rewards {
        fn from(r: RewardsV3) -> Self {
            Rewards {
                frontier: r.frontier,
                padding_factor: r.padding_factor,
                length_baseline: r.length_baseline,
                length_factor: r.length_factor,
                repetition: r.repetition,
                interestingness: r.interestingness,
                interestingness_weight: r.interestingness_weight,
                target_miss: None,
                invalid: r.invalid,
                total: r.total,
            }
        }
    }
}

/// Format 2, frozen: records written before the length-residual term.
mod v2 {
    use super::v3::RewardsV3;
    use super::{ProblemRecord, Rewards, ScorerScore};
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct RewardsV2 {
        pub frontier: Option<f64>,
        pub padding_factor: f64,
        pub repetition: f64,
        pub interestingness: Option<f64>,
        pub interestingness_weight: f64,
        pub invalid: Option<f64>,
        pub total: f64,
    }

    /// Format 2's rewards go through format 3's: they lack the length residual.
    impl From<RewardsV2> for Rewards {
        fn from(r: RewardsV2) -> Self {
            RewardsV3 {
                frontier: r.frontier,
                padding_factor: r.padding_factor,
                length_baseline: None,
                length_factor: None,
                repetition: r.repetition,
                interestingness: r.interestingness,
                interestingness_weight: r.interestingness_weight,
                invalid: r.invalid,
                total: r.total,
            }
            .into()
        }
    }

    /// Format 1's fields followed by `scores`: postcard writes a nested struct's fields in place,
    /// so this is the same layout as the flat struct format 2 was written from (and, with
    /// format 3's rewards as `R`, format 3).
    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct ProblemRecordV2<R = RewardsV2> {
        pub record: super::v1::ProblemRecordV1<R>,
        pub scores: Vec<ScorerScore>,
    }

    impl<R: Into<Rewards>> From<ProblemRecordV2<R>> for ProblemRecord {
        fn from(r: ProblemRecordV2<R>) -> Self {
            ProblemRecord { scores: r.scores, ..r.record.into() }
        }
    }
}

/// Format 1, frozen: records written before per-scorer scores were kept.
mod v1 {
    use super::v2::RewardsV2;
    use super::{Attempt, ProblemRecord, Rewards};
    use serde::Deserialize;

    /// `R`: the rewards of the format (format 3 kept this layout with its own).
    #[derive(Deserialize)]
    #[cfg_attr(test, derive(serde::Serialize))]
    pub struct ProblemRecordV1<R = RewardsV2> {
        pub id: u64,
        pub run: String,
        pub round: u64,
        pub domain: String,
        pub text: String,
        pub valid: bool,
        pub reason: Option<String>,
        pub error: Option<String>,
        pub answer: Option<String>,
        pub canonical: Option<String>,
        #[serde(with = "crate::hex_u64::option")]
        pub canonical_hash: Option<u64>,
        pub surface_ops: Option<u32>,
        pub essential_ops: Option<u32>,
        pub depth: Option<u32>,
        pub padding: Option<f64>,
        pub difficulty_target: Option<u32>,
        pub references: Vec<u64>,
        pub repetition: Option<String>,
        pub attempts: Vec<Attempt>,
        pub solve_rate: Option<f64>,
        pub rewards: Option<R>,
        pub interestingness: Option<f64>,
        pub scorer: Option<String>,
        pub scorer_error: Option<String>,
        pub proposer_version: Option<String>,
        pub solver_version: Option<String>,
        pub created_ms: u64,
        pub updated_ms: u64,
    }

    impl<R: Into<Rewards>> From<ProblemRecordV1<R>> for ProblemRecord {
        fn from(r: ProblemRecordV1<R>) -> Self {
            ProblemRecord {
                id: r.id,
                run: r.run,
                round: r.round,
                domain: r.domain,
                text: r.text,
                valid: r.valid,
                reason: r.reason,
                error: r.error,
                answer: r.answer,
                canonical: r.canonical,
                canonical_hash: r.canonical_hash,
                surface_ops: r.surface_ops,
                essential_ops: r.essential_ops,
                depth: r.depth,
                padding: r.padding,
                difficulty_target: r.difficulty_target,
                references: r.references,
                repetition: r.repetition,
                attempts: r.attempts,
                solve_rate: r.solve_rate,
                rewards: r.rewards.map(Into::into),
                interestingness: r.interestingness,
                scorer: r.scorer,
                scorer_error: r.scorer_error,
                proposer_version: r.proposer_version,
                solver_version: r.solver_version,
                created_ms: r.created_ms,
                updated_ms: r.updated_ms,
                scores: Vec::new(),
                literal_target: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn sample() -> ProblemRecord {
        ProblemRecord {
            id: 42,
            run: "run-a".into(),
            round: 3,
            domain: "arith".into(),
            text: "(3+4)*1".into(),
            valid: true,
            answer: Some("7".into()),
            canonical: Some("3+4".into()),
            canonical_hash: Some(0xdead_beef_0123_4567),
            surface_ops: Some(2),
            essential_ops: Some(1),
            depth: Some(1),
            padding: Some(0.5),
            references: vec![1, 2],
            attempts: vec![Attempt { output: "7".into(), answer: "7".into(), correct: true }],
            solve_rate: Some(1.0),
            rewards: Some(Rewards {
                frontier: Some(0.0),
                padding_factor: 0.0,
                length_baseline: Some(0.75),
                length_factor: Some(1.0),
                target_miss: Some(1.0),
                total: 0.0,
                ..Default::default()
            }),
            created_ms: 1_700_000_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn round_trips_through_bytes_and_json() {
        let r = sample();
        let bytes = encode(&r);
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(decode(&bytes).unwrap(), r);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""canonical_hash":"deadbeef01234567""#), "{json}");
        assert_eq!(serde_json::from_str::<ProblemRecord>(&json).unwrap(), r);
        let minimal: ProblemRecord = serde_json::from_str(r#"{"id":3,"run":"x","text":"1+1"}"#).unwrap();
        assert_eq!((minimal.id, minimal.valid, minimal.canonical_hash), (3, false, None));
    }

    /// `r` in format 2 or 3: without the terms added since (format 2: the length residual's and
    /// the target's; format 3: the target's).
    fn older_format(r: &ProblemRecord, version: u8) -> Vec<u8> {
        let mut json = serde_json::to_value(r).unwrap();
        let rewards = json["rewards"].as_object_mut().unwrap();
        rewards.remove("target_miss");
        if version == 2 {
            rewards.remove("length_baseline");
            rewards.remove("length_factor");
        }
        let scores = serde_json::from_value(json.as_object_mut().unwrap().remove("scores").unwrap()).unwrap();
        match version {
            2 => {
                let old: v2::ProblemRecordV2 =
                    v2::ProblemRecordV2 { record: serde_json::from_value(json).unwrap(), scores };
                postcard::to_extend(&old, vec![2]).unwrap()
            }
            3 => {
                let old: v2::ProblemRecordV2<v3::RewardsV3> =
                    v2::ProblemRecordV2 { record: serde_json::from_value(json).unwrap(), scores };
                postcard::to_extend(&old, vec![3]).unwrap()
            }
            _ => unreachable!(),
        }
    }

    /// What a record reads back as from format `version`.
    fn as_read_from(r: &ProblemRecord, version: u8) -> ProblemRecord {
        let mut old = r.clone();
        let rewards = old.rewards.as_mut().unwrap();
        rewards.target_miss = None;
        if version == 2 {
            (rewards.length_baseline, rewards.length_factor) = (None, None);
        }
        old
    }

    #[test]
    fn older_formats_still_read() {
        let r = sample();
        let rewards = r.rewards.as_ref().unwrap();
        assert!(rewards.length_factor.is_some() && rewards.target_miss.is_some());
        assert_eq!(decode(&older_format(&r, 3)).unwrap(), as_read_from(&r, 3));
        let mut bytes = older_format(&r, 2);
        assert_eq!(decode(&bytes).unwrap(), as_read_from(&r, 2));
        // Format 2 appended `scores` (a sequence) to format 1: an empty one is a single 0 byte.
        assert_eq!(bytes.pop(), Some(0));
        bytes[0] = 1;
        assert_eq!(decode(&bytes).unwrap(), as_read_from(&r, 2));
        let mut scored = r.clone();
        scored.scores.push(ScorerScore {
            scorer: "novelty@1".into(),
            weight: 1.0,
            score: Some(0.5),
            ..Default::default()
        });
        assert_eq!(decode(&encode(&scored)).unwrap(), scored);
        for version in [2, 3] {
            assert_eq!(decode(&older_format(&scored, version)).unwrap(), as_read_from(&scored, version));
        }
        // A format-3 body is not a format-4 one: the version byte decides.
        let mut bytes = older_format(&r, 3);
        bytes[0] = 4;
        assert_ne!(decode(&bytes), Ok(r.clone()));
        // Format 4: the record less `literal_target`.
        let bounded = ProblemRecord { literal_target: Some(99), ..r.clone() };
        let mut bytes = encode(&ProblemRecord { literal_target: None, ..r.clone() });
        assert_eq!(bytes.pop(), Some(0));
        bytes[0] = 4;
        assert_eq!(decode(&bytes).unwrap(), r);
        assert_eq!(decode(&encode(&bounded)).unwrap(), bounded);
        bytes.push(7);
        assert!(decode(&bytes).unwrap_err().contains("format 4"), "{:?}", decode(&bytes));
    }

    #[test]
    fn unknown_versions_and_corruption_are_errors() {
        let mut bytes = encode(&sample());
        bytes[0] = 9;
        assert_eq!(decode(&bytes).unwrap_err(), "record format 9 is not known to this build (it writes 5)");
        assert_eq!(decode(&[]).unwrap_err(), "empty value");
        let bytes = encode(&sample());
        assert!(decode(&bytes[..bytes.len() / 2]).unwrap_err().starts_with("corrupt record"));
    }

    #[test]
    fn buckets() {
        assert_eq!(ProblemRecord::solve_rate_bucket(0.0), 0);
        assert_eq!(ProblemRecord::solve_rate_bucket(0.5), 10);
        assert_eq!(ProblemRecord::solve_rate_bucket(0.999), 19);
        assert_eq!(ProblemRecord::solve_rate_bucket(1.0), 20);
    }

    proptest! {
        #[test]
        fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let mut versioned = vec![RECORD_VERSION];
            versioned.extend_from_slice(&bytes);
            let _ = decode(&versioned);
        }
    }
}
