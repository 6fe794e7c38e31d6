//! How records, statistics and pages read as text: what `selfplay archive` prints without `--json`,
//! and what the browser shows. Every string from a record goes through
//! [`store::safe_text::for_terminal`] on its way out.

use std::io::Write;

use std::borrow::Cow;

use store::safe_text::for_terminal as safe;
use store::{ProblemRecord, Stats};

/// The header row of a page of [`list_line`]s.
pub fn list_header() -> String {
    format!(
        "{:>8}  {:<12} {:>6}  {:<10} {:>5} {:>5} {:>5} {:>5}  text",
        "id", "run", "round", "status", "p", "pad", "depth", "int"
    )
}

fn fmt_opt<T: std::fmt::Display>(v: Option<T>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.prec$}"))
}

/// `valid`, or why not (`syntax`, `range`, ...).
pub fn status(r: &ProblemRecord) -> Cow<'_, str> {
    if r.valid {
        Cow::Borrowed("valid")
    } else {
        safe(r.reason.as_deref().unwrap_or("invalid"))
    }
}

pub fn list_line(r: &ProblemRecord) -> String {
    let mut text: String = r.text.chars().take(60).collect();
    if text.len() < r.text.len() {
        text.push('…');
    }
    let run: String = safe(&r.run).chars().take(12).collect();
    format!(
        "{:>8}  {:<12} {:>6}  {:<10} {:>5} {:>5} {:>5} {:>5}  {}",
        r.id,
        run,
        r.round,
        status(r),
        fmt_opt(r.solve_rate, 2),
        fmt_opt(r.padding, 2),
        fmt_opt(r.depth, 0),
        fmt_opt(r.interestingness, 2),
        safe(&text)
    )
}

pub fn write_record(r: &ProblemRecord, out: &mut dyn Write) -> std::io::Result<()> {
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), |v| safe(v).into_owned());
    writeln!(out, "problem {}  (run {}, round {}, domain {})", r.id, safe(&r.run), r.round, safe(&r.domain))?;
    writeln!(out, "  text            {}", safe(&r.text))?;
    if r.valid {
        writeln!(out, "  valid           yes")?;
    } else {
        writeln!(out, "  valid           no: {} ({})", opt(&r.error), opt(&r.reason))?;
    }
    writeln!(out, "  answer          {}", opt(&r.answer))?;
    writeln!(out, "  canonical       {}", opt(&r.canonical))?;
    writeln!(out, "  canonical hash  {}", r.canonical_hash.map_or("-".into(), store::hex_u64::format))?;
    writeln!(
        out,
        "  operations      {} written, {} essential, depth {}, padding {}",
        fmt_opt(r.surface_ops, 0),
        fmt_opt(r.essential_ops, 0),
        fmt_opt(r.depth, 0),
        fmt_opt(r.padding, 3)
    )?;
    writeln!(out, "  repetition      {}", opt(&r.repetition))?;
    let literals = r.literal_target.map_or(String::new(), |b| format!(", literals up to {b}"));
    writeln!(out, "  difficulty      {}{literals}", fmt_opt(r.difficulty_target, 0))?;
    let refs: Vec<String> = r.references.iter().map(u64::to_string).collect();
    writeln!(out, "  references      {}", if refs.is_empty() { "-".into() } else { refs.join(", ") })?;
    writeln!(out, "  solve rate      {} over {} attempts", fmt_opt(r.solve_rate, 3), r.attempts.len())?;
    for (i, a) in r.attempts.iter().enumerate() {
        let mark = if a.correct { "right" } else { "wrong" };
        writeln!(out, "    {:>3}. {mark}  answer {}  output {}", i + 1, safe(&a.answer), safe(&a.output))?;
    }
    match &r.rewards {
        None => writeln!(out, "  reward          -")?,
        Some(w) => {
            writeln!(out, "  reward          {:.4}", w.total)?;
            writeln!(out, "    frontier        {}", fmt_opt(w.frontier, 4))?;
            writeln!(out, "    padding factor  {:.4}", w.padding_factor)?;
            writeln!(
                out,
                "    length factor   {} (length curve {})",
                fmt_opt(w.length_factor, 4),
                fmt_opt(w.length_baseline, 3)
            )?;
            writeln!(out, "    repetition      {:.4}", w.repetition)?;
            writeln!(
                out,
                "    interestingness {} × weight {}",
                fmt_opt(w.interestingness, 4),
                w.interestingness_weight
            )?;
            writeln!(
                out,
                "    target miss     {} (target {})",
                fmt_opt(w.target_miss, 0),
                r.difficulty_target.map_or("-".into(), |t| t.to_string())
            )?;
            writeln!(out, "    invalid         {}", fmt_opt(w.invalid, 4))?;
        }
    }
    writeln!(
        out,
        "  interestingness {} by {}{}",
        fmt_opt(r.interestingness, 4),
        opt(&r.scorer),
        r.scorer_error.as_ref().map(|e| format!(" (scorer error: {})", safe(e))).unwrap_or_default()
    )?;
    for score in &r.scores {
        writeln!(
            out,
            "    {} (weight {}): {}{}",
            safe(&score.scorer),
            score.weight,
            fmt_opt(score.score, 4),
            match (&score.reason, &score.error) {
                (_, Some(e)) => format!(", error: {}", safe(e)),
                (Some(why), None) => format!(", {}", safe(why)),
                (None, None) => String::new(),
            }
        )?;
    }
    writeln!(
        out,
        "  models          proposer {}, solver {}",
        opt(&r.proposer_version),
        opt(&r.solver_version)
    )?;
    writeln!(out, "  created         {}, updated {}", date(r.created_ms), date(r.updated_ms))
}

/// Unix milliseconds as a UTC date and time (RFC 3339: `2026-12-05T07:03:18.123Z`); what cannot be
/// one, as the number.
pub fn date(unix_ms: u64) -> String {
    i128::from(unix_ms)
        .checked_mul(1_000_000)
        .and_then(|ns| time::OffsetDateTime::from_unix_timestamp_nanos(ns).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix_ms} ms after 1970 (UTC)"))
}

pub fn write_windows(windows: &[((u64, u64), Stats)], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "by rounds {:>15} {:>8} {:>6} {:>8} {:>7} {:>6}",
        "", "problems", "valid", "mean p", "padded", "depth"
    )?;
    for ((lo, hi), s) in windows {
        let depth_sum: u64 = s.depth.iter().map(|(d, n)| u64::from(*d) * n).sum();
        let depth_n: u64 = s.depth.values().sum();
        let mean_depth = (depth_n > 0).then(|| depth_sum as f64 / depth_n as f64);
        writeln!(
            out,
            "  {:>12}..{:<12} {:>8} {:>6.3} {:>8} {:>7.3} {:>6}",
            lo,
            hi,
            s.total,
            s.valid as f64 / s.total.max(1) as f64,
            fmt_opt(s.mean_solve_rate, 3),
            s.padded as f64 / s.valid.max(1) as f64,
            fmt_opt(mean_depth, 2)
        )?;
    }
    Ok(())
}

pub fn write_stats(s: &Stats, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "problems   {} ({} valid, {} invalid)", s.total, s.valid, s.invalid)?;
    for (reason, n) in &s.invalid_reasons {
        writeln!(out, "  invalid: {:<10} {n}", safe(reason))?;
    }
    if let Some((lo, hi)) = s.rounds {
        writeln!(out, "rounds     {lo}..{hi}")?;
    }
    for (run, n) in &s.runs {
        writeln!(out, "  run {}: {n}", safe(run))?;
    }
    if let (Some(d), Some(dup)) = (s.distinct_canonical, s.canonical_duplicates) {
        writeln!(out, "canonical  {d} distinct, {dup} duplicates")?;
    }
    writeln!(out, "padded     {} (mean padding {})", s.padded, fmt_opt(s.mean_padding, 3))?;
    writeln!(out, "attempted  {} (mean solve rate {})", s.attempted, fmt_opt(s.mean_solve_rate, 3))?;
    writeln!(
        out,
        "scored     {} (mean interestingness {}), {} scorer errors",
        s.scored,
        fmt_opt(s.mean_interestingness, 3),
        s.scorer_errors
    )?;
    let w = &s.rewards;
    writeln!(
        out,
        "reward     mean {} over {}: frontier {}, padding factor {}, repetition {}, interestingness {}, off target {}, invalid {}",
        fmt_opt(w.total, 3),
        w.rewarded,
        fmt_opt(w.frontier, 3),
        fmt_opt(w.padding_factor, 3),
        fmt_opt(w.repetition, 3),
        fmt_opt(w.interestingness, 3),
        fmt_opt(w.target_miss, 3),
        fmt_opt(w.invalid, 3)
    )?;
    for (name, h) in [("solve rate", &s.solve_rate), ("padding", &s.padding)] {
        writeln!(out, "{name} histogram")?;
        let max = h.counts.iter().copied().max().unwrap_or(0).max(1);
        for (i, (&edge, &n)) in h.edges.iter().zip(&h.counts).enumerate() {
            let hi = h.edges.get(i + 1).copied().unwrap_or(1.0);
            let bar = "#".repeat((n * 40).div_ceil(max) as usize);
            writeln!(out, "  {edge:.1}-{hi:.1} {n:>9} {bar}")?;
        }
    }
    writeln!(out, "depth")?;
    for (d, n) in &s.depth {
        writeln!(out, "  {d:>3} {n:>9}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use store::safe_text::is_terminal_safe;

    fn text() -> impl Strategy<Value = String> {
        // Arbitrary Unicode, with the characters that matter here made likely.
        prop::collection::vec(
            prop_oneof![
                any::<char>(),
                prop::sample::select(vec!['\u{1b}', '\u{9b}', '\u{7}', '\r', '\n', '\u{202e}', '\u{2066}'])
            ],
            0..24,
        )
        .prop_map(|c| c.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever a record holds, no renderer passes a control character to the terminal.
        #[test]
        fn no_renderer_lets_a_control_character_through(f in prop::collection::vec(text(), 14)) {
            let run: String = f[0].replace('\0', "x").chars().take(40).collect::<String>() + "r";
            let record = store::ProblemRecord {
                run,
                domain: f[1].clone(),
                text: f[2].clone(),
                reason: Some(f[3].clone()),
                error: Some(f[4].clone()),
                answer: Some(f[5].clone()),
                canonical: Some(f[6].clone()),
                repetition: Some(f[7].clone()),
                scorer: Some(f[8].clone()),
                scorer_error: Some(f[9].clone()),
                proposer_version: Some(f[10].clone()),
                solver_version: Some(f[11].clone()),
                attempts: vec![store::Attempt { output: f[12].clone(), answer: f[13].clone(), correct: false }],
                scores: vec![store::ScorerScore {
                    scorer: f[8].clone(),
                    weight: 1.0,
                    score: None,
                    reason: Some(f[3].clone()),
                    error: Some(f[9].clone()),
                }],
                ..Default::default()
            };
            let mut shown = Vec::new();
            super::write_record(&record, &mut shown).unwrap();
            let shown = String::from_utf8(shown).unwrap();
            prop_assert!(is_terminal_safe(&shown), "{shown:?}");
            prop_assert!(is_terminal_safe(&super::list_line(&record)));
            let dir = tempfile::tempdir().unwrap();
            let archive = store::Archive::open(dir.path().join("a")).unwrap();
            archive.append(&mut [record]).unwrap();
            let stats = archive.stats(&store::Filter::default()).unwrap();
            let mut shown = Vec::new();
            super::write_stats(&stats, &mut shown).unwrap();
            prop_assert!(is_terminal_safe(&String::from_utf8(shown).unwrap()));
        }
    }

    #[test]
    fn times_are_shown_as_utc_dates() {
        assert_eq!(super::date(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::date(1_796_454_198_123), "2026-12-05T07:03:18.123Z");
        assert!(super::date(u64::MAX).contains("ms after 1970"));
    }
}
