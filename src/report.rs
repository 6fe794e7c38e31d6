//! `selfplay report`: one self-contained HTML page about a run, with inline SVG plots.
//!
//! It reads `metrics.jsonl` (one line per round), the archive's statistics per window of rounds
//! (from the database, or from the daemon's endpoint while it runs), and the skill graph of the
//! latest checkpoint. Nothing is fetched by the page: styles and plots are inline. A short script
//! marks on `<body>` how many plots the browser drew (`data-plots`, `data-drawn`) and the errors
//! it saw (`data-errors`), so a headless browser can check the page.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use lab::round::RoundMetrics;
use plotters::prelude::*;
use store::{Filter, Histogram, Stats};

use crate::access::Access;
use crate::commands::positive_seconds;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run directory.
    #[arg(long, value_name = "DIR", default_value = "runs/default")]
    pub run_dir: PathBuf,
    /// Where to write the page (default: DIR/report.html).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// While a daemon holds the archive: seconds to wait for each part of its answer.
    #[arg(long, value_name = "SECS", default_value_t = 60.0, value_parser = positive_seconds)]
    pub timeout: f64,
}

/// Windows of rounds the archive plots are drawn over, at most.
const MAX_WINDOWS: u64 = 60;
const WIDTH: u32 = 760;
const HEIGHT: u32 = 320;

/// Everything the page shows, read from a run directory.
pub struct RunData {
    pub run_dir: PathBuf,
    pub config_name: Option<String>,
    /// Metrics lines, in file order; lines that are not a round's metrics are counted, not kept.
    pub metrics: Vec<RoundMetrics>,
    pub bad_metric_lines: usize,
    pub stats: Stats,
    pub window: u64,
    pub windows: Vec<((u64, u64), Stats)>,
    /// Skills of the latest checkpoint: name, attempts, solve rate, parts.
    pub skills: Vec<SkillNode>,
    pub skills_round: Option<u64>,
    /// The run's recorded configuration changes, oldest first.
    pub config_changes: Vec<lab::settle::ChangeRecord>,
}

pub struct SkillNode {
    pub name: String,
    pub atomic: bool,
    pub attempts: u64,
    pub rate: Option<f64>,
    pub parts: Vec<String>,
}

impl RunData {
    /// Reads what the report needs; the archive through `timeout`-bounded daemon queries when a
    /// daemon holds it.
    pub fn read(run_dir: &Path, timeout: Duration) -> anyhow::Result<RunData> {
        let archive_dir = run_dir.join("archive");
        if !run_dir.join("config.toml").is_file() || !archive_dir.is_dir() {
            bail!(
                "{} is not a run directory: it has no config.toml and archive/ (made by `selfplay run`)",
                run_dir.display()
            );
        }
        let config_name = std::fs::read_to_string(run_dir.join("config.toml"))
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .and_then(|t| t.get("name").and_then(|n| n.as_str().map(str::to_string)));
        let (metrics, bad_metric_lines) = read_metrics(&run_dir.join("metrics.jsonl"))?;
        let access = Access::open(&archive_dir, timeout)?;
        let everything = Filter::default();
        // The window follows the rounds the metrics cover (one pass over the archive); without
        // metrics, the archive's own round range (two passes).
        let rounds = match (metrics.first(), metrics.last()) {
            (Some(a), Some(b)) => Some((a.round, b.round)),
            _ => access.stats(&everything, None)?.0.rounds,
        };
        let (lo, hi) = rounds.unwrap_or((0, 0));
        let window = ((hi.saturating_sub(lo) + 1).div_ceil(MAX_WINDOWS)).max(1);
        let (stats, windows) = access.stats(&everything, Some(window))?;
        let windows = windows.unwrap_or_default();
        let (skills, skills_round) = read_skills(run_dir)?;
        let config_changes = lab::settle::history(run_dir)?;
        Ok(RunData {
            run_dir: run_dir.to_path_buf(),
            config_name,
            metrics,
            bad_metric_lines,
            stats,
            window,
            windows,
            skills,
            skills_round,
            config_changes,
        })
    }
}

fn read_metrics(path: &Path) -> anyhow::Result<(Vec<RoundMetrics>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
    };
    let mut bad = 0;
    let metrics = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| match serde_json::from_str::<RoundMetrics>(l) {
            Ok(m) => Some(m),
            Err(_) => {
                bad += 1;
                None
            }
        })
        .collect();
    Ok((metrics, bad))
}

/// The skill graph of the latest round checkpoint that has one.
fn read_skills(run_dir: &Path) -> anyhow::Result<(Vec<SkillNode>, Option<u64>)> {
    let cks = policy::Checkpoints { root: run_dir.join("checkpoints"), prefix: "round".into(), keep: 0 };
    let Some(round) = cks.latest() else { return Ok((Vec::new(), None)) };
    let path = run_dir.join("checkpoints").join(format!("round-{round:06}")).join("curriculum.json");
    let Ok(bytes) = std::fs::read(&path) else { return Ok((Vec::new(), None)) };
    #[derive(serde::Deserialize)]
    struct Saved {
        skills: Vec<(curriculum::Skill, curriculum::SkillStats, Vec<curriculum::Skill>)>,
    }
    let saved: Saved =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is unreadable", path.display()))?;
    let nodes = saved
        .skills
        .into_iter()
        .map(|(skill, stats, parts)| SkillNode {
            name: skill.to_string(),
            atomic: matches!(skill, curriculum::Skill::Atomic { .. }),
            attempts: stats.attempts,
            rate: stats.rate(),
            parts: parts.iter().map(ToString::to_string).collect(),
        })
        .collect();
    Ok((nodes, Some(round)))
}

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

type Series = (String, Vec<(f64, f64)>);

/// A line chart of `series` over rounds, as SVG; `None` when there is nothing to draw.
fn line_chart(
    y_desc: &str,
    y_range: Option<(f64, f64)>,
    series: &[Series],
) -> anyhow::Result<Option<String>> {
    let points = || series.iter().flat_map(|(_, p)| p.iter());
    if points().next().is_none() {
        return Ok(None);
    }
    let (x0, x1) = points().fold((f64::MAX, f64::MIN), |(a, b), &(x, _)| (a.min(x), b.max(x)));
    let (y0, y1) = y_range.unwrap_or_else(|| {
        let (lo, hi) = points().fold((f64::MAX, f64::MIN), |(a, b), &(_, y)| (a.min(y), b.max(y)));
        let pad = ((hi - lo) * 0.05).max(1e-3);
        (lo - pad, hi + pad)
    });
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    round_chart(x0..x1, y0..y1, y_desc, true, |chart| {
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let style = ShapeStyle::from(&color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), style))
                .map_err(plot_err)?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            if pts.len() == 1 {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    })
    .map(Some)
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// An SVG plot over rounds (x) with axes and labels, drawn into by `draw`. `lines`: a light grid
/// and the legend of the labelled series; otherwise neither.
fn round_chart(
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    y_desc: &str,
    lines: bool,
    draw: impl FnOnce(&mut Chart<'_, '_>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(x, y)
            .map_err(plot_err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc("round").y_desc(y_desc).x_label_formatter(&|x| format!("{x:.0}")).light_line_style(WHITE);
        if !lines {
            mesh.disable_mesh();
        }
        mesh.draw().map_err(plot_err)?;
        draw(&mut chart)?;
        if lines {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a plot: {e:?}")
}

/// The distribution of a value in [0, 1] per window of rounds: one column per window, one cell per
/// bin, darker for a larger share of the window.
fn heatmap(windows: &[((u64, u64), Histogram)], y_desc: &str) -> anyhow::Result<Option<String>> {
    let windows: Vec<_> = windows.iter().filter(|(_, h)| h.counts.iter().sum::<u64>() > 0).collect();
    if windows.is_empty() {
        return Ok(None);
    }
    let x0 = windows[0].0 .0 as f64;
    let x1 = windows[windows.len() - 1].0 .1 as f64 + 1.0;
    round_chart(x0..x1, 0.0..1.0, y_desc, false, |chart| {
        for ((lo, hi), h) in &windows {
            let total = h.counts.iter().sum::<u64>() as f64;
            for (i, (&edge, &n)) in h.edges.iter().zip(&h.counts).enumerate() {
                let top = h.edges.get(i + 1).copied().unwrap_or(1.0);
                let share = n as f64 / total;
                let color = RGBColor(31, 119, 180).mix(0.08 + 0.92 * share);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(*lo as f64, edge), (*hi as f64 + 1.0, top)],
                        color.filled(),
                    )))
                    .map_err(plot_err)?;
            }
        }
        Ok(())
    })
    .map(Some)
}

/// The skill graph as two columns: atomic skills on the left, compositions on the right, an edge
/// from each part to what it composes. Fill: solve rate (white 0 … green 1), grey when never tried.
fn skill_graph(skills: &[SkillNode]) -> Option<String> {
    if skills.is_empty() {
        return None;
    }
    let (atomic, composed): (Vec<&SkillNode>, Vec<&SkillNode>) = skills.iter().partition(|s| s.atomic);
    let rows = atomic.len().max(composed.len());
    let (row_h, node_w, node_h) = (26.0, 190.0, 20.0);
    let height = 40.0 + rows as f64 * row_h;
    let (left_x, right_x) = (20.0, 440.0);
    let mut pos = BTreeMap::new();
    for (i, s) in atomic.iter().enumerate() {
        pos.insert(s.name.as_str(), (left_x, 30.0 + i as f64 * row_h));
    }
    for (i, s) in composed.iter().enumerate() {
        pos.insert(s.name.as_str(), (right_x, 30.0 + i as f64 * row_h));
    }
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<text x="{left_x}" y="18" font-weight="bold">atomic skills</text><text x="{right_x}" y="18" font-weight="bold">compositions</text>"#
    );
    for s in &composed {
        let (x, y) = pos[s.name.as_str()];
        for part in &s.parts {
            if let Some(&(px, py)) = pos.get(part.as_str()) {
                let _ = write!(
                    svg,
                    r##"<line x1="{}" y1="{}" x2="{x}" y2="{}" stroke="#999" stroke-opacity="0.45"/>"##,
                    px + node_w,
                    py + node_h / 2.0,
                    y + node_h / 2.0
                );
            }
        }
    }
    for s in skills {
        let (x, y) = pos[s.name.as_str()];
        let fill = match s.rate {
            None => "#dddddd".to_string(),
            Some(r) => {
                let c = |full: f64| (255.0 - (255.0 - full) * r).round() as u8;
                format!("#{:02x}{:02x}{:02x}", c(60.0), c(170.0), c(70.0))
            }
        };
        let rate = s.rate.map_or("-".into(), |r| format!("{r:.2}"));
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{y}" width="{node_w}" height="{node_h}" rx="3" fill="{fill}" stroke="#555"/><text x="{}" y="{}">{} · {rate} ({} tries)</text>"##,
            x + 6.0,
            y + 14.0,
            esc(&s.name),
            s.attempts
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// Held-out accuracy by depth over rounds.
fn held_out_series(metrics: &[RoundMetrics]) -> Vec<Series> {
    let mut by_depth: BTreeMap<u32, Vec<(f64, f64)>> = BTreeMap::new();
    for m in metrics {
        for (d, a) in m.held_out.iter().flatten() {
            by_depth.entry(*d).or_default().push((m.round as f64, *a));
        }
    }
    by_depth.into_iter().map(|(d, pts)| (format!("depth {d}"), pts)).collect()
}

/// The proposer's and the generator probe's shares in band, overall and for the (up to three)
/// target depths the probe met most often, so that a proposer is seen beside the generator at
/// each difficulty it is asked for, not only on average.
fn proposer_vs_generator(metrics: &[RoundMetrics], window: u64) -> Vec<Series> {
    let mut series = vec![
        metric_series(metrics, "proposer", window, |m| Some(m.band_fraction)),
        metric_series(metrics, "generator", window, |m| m.generator_band_fraction),
    ];
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for d in metrics.iter().filter_map(|m| m.generator_band_by_target.as_ref()).flat_map(|b| b.keys()) {
        *seen.entry(*d).or_default() += 1;
    }
    let mut depths: Vec<(u32, usize)> = seen.into_iter().collect();
    depths.sort_by_key(|&(d, n)| (std::cmp::Reverse(n), d));
    let mut depths: Vec<u32> = depths.into_iter().take(3).map(|(d, _)| d).collect();
    depths.sort_unstable();
    for d in depths {
        series.push(metric_series(metrics, &format!("proposer, depth {d}"), window, |m| {
            m.band_by_target.as_ref()?.get(&d).copied()
        }));
        series.push(metric_series(metrics, &format!("generator, depth {d}"), window, |m| {
            m.generator_band_by_target.as_ref()?.get(&d).copied()
        }));
    }
    series.retain(|(_, points)| !points.is_empty());
    series
}

/// One metric over rounds, skipping rounds without it; averaged per window of `window` rounds
/// (at the window's middle) so that long runs stay readable.
fn metric_series(
    metrics: &[RoundMetrics],
    name: &str,
    window: u64,
    metric: impl Fn(&RoundMetrics) -> Option<f64>,
) -> Series {
    let mut sums: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
    for m in metrics {
        let Some(y) = metric(m) else { continue };
        if y.is_finite() {
            let slot = sums.entry(m.round / window).or_default();
            slot.0 += y;
            slot.1 += 1;
        }
    }
    let mid = |k: u64| (k * window) as f64 + (window - 1) as f64 / 2.0;
    (name.to_string(), sums.into_iter().map(|(k, (sum, n))| (mid(k), sum / n as f64)).collect())
}

/// One statistic per window of rounds, at the window's middle.
fn window_series(windows: &[((u64, u64), Stats)], name: &str, f: impl Fn(&Stats) -> Option<f64>) -> Series {
    let pts = windows.iter().filter_map(|((lo, hi), s)| Some(((lo + hi) as f64 / 2.0, f(s)?))).collect();
    (name.to_string(), pts)
}

/// The page.
pub fn render(data: &RunData) -> anyhow::Result<String> {
    let m = &data.metrics;
    let s = &data.stats;
    let w = data.window;
    let name = data.config_name.clone().unwrap_or_else(|| data.run_dir.display().to_string());
    let mut figures: Vec<(&str, String, Option<String>)> = Vec::new();
    figures.push((
        "held-out",
        "Held-out solver accuracy (greedy) by depth".into(),
        line_chart("accuracy", Some((0.0, 1.0)), &held_out_series(m))?,
    ));
    let solve: Vec<_> = data.windows.iter().map(|(w, s)| (*w, s.solve_rate.clone())).collect();
    figures.push((
        "solve-rate",
        format!(
            "Distribution of the solve rate p̂ over time (windows of {} rounds; darker = larger share)",
            data.window
        ),
        heatmap(&solve, "p̂")?,
    ));
    figures.push((
        "fractions",
        format!("Valid, padded and duplicate fractions (padded and duplicate: of valid problems), mean per {w} rounds"),
        line_chart(
            "fraction",
            Some((0.0, 1.0)),
            &[
                metric_series(m, "valid", w, |m| Some(m.valid_fraction)),
                metric_series(m, "padded", w, |m| Some(m.padded_fraction)),
                metric_series(m, "duplicate", w, |m| Some(m.duplicate_fraction)),
                metric_series(m, "duplicate by the generator", w, |m| m.generator_duplicate_fraction),
                metric_series(m, "in frontier band", w, |m| Some(m.band_fraction)),
            ],
        )?,
    ));
    type Term = (&'static str, fn(&Stats) -> Option<f64>);
    let terms: [Term; 6] = [
        ("total", |s| s.rewards.total),
        ("frontier", |s| s.rewards.frontier),
        ("padding factor", |s| s.rewards.padding_factor),
        ("repetition", |s| s.rewards.repetition),
        ("interestingness", |s| s.rewards.interestingness),
        ("target miss", |s| s.rewards.target_miss),
    ];
    let term_series: Vec<Series> = terms
        .iter()
        .map(|(n, f)| window_series(&data.windows, n, f))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    figures.push((
        "rewards",
        format!("Mean reward terms of the proposer per window of {} rounds", data.window),
        line_chart("mean", None, &term_series)?,
    ));
    figures.push((
        "length",
        format!("Proposer output length and operations, mean per {w} rounds"),
        line_chart(
            "tokens / operations",
            None,
            &[
                metric_series(m, "output tokens", w, |m| Some(m.proposer_output_tokens)),
                metric_series(m, "operations written", w, |m| m.mean_surface_ops),
                metric_series(m, "essential operations", w, |m| m.mean_essential_ops),
            ],
        )?,
    ));
    figures.push((
        "proposer-vs-generator",
        format!(
            "Valid problems in the frontier band: the proposer's, and the generator's at the same \
             targets (generator probe, evaluation rounds), mean per {w} rounds"
        ),
        line_chart("in band", Some((0.0, 1.0)), &proposer_vs_generator(m, w))?,
    ));
    // With literal bounds, each bound's level and median p̂.
    let bounds: std::collections::BTreeSet<u32> = m
        .iter()
        .filter_map(|m| m.difficulty_levels.as_ref())
        .flat_map(|levels| levels.keys().copied())
        .collect();
    let mut difficulty = if bounds.is_empty() {
        vec![metric_series(m, "difficulty level", w, |m| Some(m.difficulty_level))]
    } else {
        let mut series = Vec::new();
        for b in bounds {
            series.push(metric_series(m, &format!("level, literals ≤ {b}"), w, |m| {
                m.difficulty_levels.as_ref()?.get(&b).copied()
            }));
            series.push(metric_series(m, &format!("median p̂, literals ≤ {b}"), w, |m| {
                m.median_solve_rates.as_ref()?.get(&b).copied()
            }));
        }
        series
    };
    difficulty.push(metric_series(m, "median p̂", w, |m| m.median_solve_rate));
    difficulty.push(metric_series(m, "rehearsal p̂", w, |m| m.rehearsal_solve_rate));
    figures.push((
        "difficulty",
        format!("Difficulty controller level, median p̂ and rehearsal p̂, mean per {w} rounds"),
        line_chart("", None, &difficulty)?,
    ));
    figures.push((
        "skills",
        match data.skills_round {
            Some(r) => format!(
                "Skill graph at round {r}: fill is the solve rate; edges go from parts to compositions"
            ),
            None => "Skill graph".into(),
        },
        skill_graph(&data.skills),
    ));

    let pct = |n: u64, d: u64| {
        if d == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * n as f64 / d as f64)
        }
    };
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>selfplay report: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 820px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ padding: 2px 12px 2px 0; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 2em 0; }}
figcaption {{ font-weight: 600; margin-bottom: 0.4em; }}
p.empty {{ color: #777; font-style: italic; }}
</style></head>
<body>
<h1>selfplay report: {title}</h1>
<p>Run directory <code>{dir}</code>.</p>
<table>
<tr><th>rounds</th><td class="n">{rounds}</td></tr>
<tr><th>problems</th><td class="n">{total}</td></tr>
<tr><th>valid</th><td class="n">{valid} ({valid_pct})</td></tr>
<tr><th>distinct canonical forms</th><td class="n">{distinct}</td></tr>
<tr><th>padded (of valid)</th><td class="n">{padded}</td></tr>
<tr><th>mean solve rate</th><td class="n">{mean_p}</td></tr>
<tr><th>scored (interestingness)</th><td class="n">{scored}, {errors} scorer errors</td></tr>
<tr><th>metrics lines</th><td class="n">{lines}{bad}</td></tr>
</table>
"#,
        title = esc(&name),
        dir = esc(&data.run_dir.display().to_string()),
        rounds = s.rounds.map_or("-".into(), |(lo, hi)| format!("{lo}..{hi}")),
        total = s.total,
        valid = s.valid,
        valid_pct = pct(s.valid, s.total),
        distinct = s.distinct_canonical.map_or("-".into(), |d| d.to_string()),
        padded = pct(s.padded, s.valid),
        mean_p = opt(s.mean_solve_rate),
        scored = s.scored,
        errors = s.scorer_errors,
        lines = m.len(),
        bad = if data.bad_metric_lines > 0 {
            format!(" ({} unreadable lines skipped)", data.bad_metric_lines)
        } else {
            String::new()
        },
    );
    html.push_str(&config_changes(&data.config_changes));
    for (id, caption, svg) in &figures {
        let _ = write!(html, "<figure class=\"plot\" id=\"{id}\"><figcaption>{}</figcaption>", esc(caption));
        match svg {
            Some(svg) => html.push_str(svg),
            None => html.push_str("<p class=\"empty\">No data yet.</p>"),
        }
        html.push_str("</figure>\n");
    }
    html.push_str(SELF_CHECK);
    html.push_str("</body></html>\n");
    Ok(html)
}

/// The table of configuration changes: the round each took effect, how, and each key's values.
fn config_changes(records: &[lab::settle::ChangeRecord]) -> String {
    if records.is_empty() {
        return "<p id=\"config-changes\">The configuration never changed.</p>\n".into();
    }
    let mut html = String::from(
        "<h2>Configuration changes</h2>\n<table id=\"config-changes\">\n<tr><th>from round</th><th>how</th><th>key</th><th>was</th><th>became</th></tr>\n",
    );
    for r in records {
        let how = match r.kind {
            lab::settle::ChangeKind::Start => "--set at the start",
            lab::settle::ChangeKind::Reconfigure => "--reconfigure",
        };
        for c in &r.changes {
            let show = |v: &Option<String>| esc(v.as_deref().unwrap_or("(absent)"));
            let _ = writeln!(
                html,
                "<tr><td class=\"n\">{}</td><td>{how}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                r.round,
                esc(&c.key),
                show(&c.from),
                show(&c.to)
            );
        }
    }
    html.push_str("</table>\n");
    html
}

/// Marks on `<body>` what the browser drew, for headless checks.
const SELF_CHECK: &str = r#"<script>
(function () {
  var errors = 0;
  window.addEventListener('error', function () { errors += 1; }, true);
  window.addEventListener('load', function () {
    var figures = document.querySelectorAll('figure.plot');
    var drawn = 0;
    figures.forEach(function (f) {
      var svg = f.querySelector('svg');
      if (!svg) return;
      var box = svg.getBBox();
      if (box.width > 0 && box.height > 0 && svg.querySelectorAll('path,polyline,rect,line,circle').length > 0) drawn += 1;
    });
    document.body.setAttribute('data-plots', figures.length);
    document.body.setAttribute('data-drawn', drawn);
    document.body.setAttribute('data-errors', errors);
  });
})();
</script>
"#;

/// `selfplay report`: writes the page to `out` atomically.
/// `selfplay report`: writes the page and says what it holds.
pub fn run(args: &ReportArgs, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let path = args.out.clone().unwrap_or_else(|| args.run_dir.join("report.html"));
    let summary = write(&args.run_dir, &path, Duration::from_secs_f64(args.timeout))?;
    writeln!(out, "{summary}")?;
    Ok(())
}

/// Writes the page about the run at `run_dir` to `out`; returns a line saying what it holds.
pub fn write(run_dir: &Path, out: &Path, timeout: Duration) -> anyhow::Result<String> {
    let data = RunData::read(run_dir, timeout)?;
    let html = render(&data)?;
    let tmp = out.with_extension("html.tmp");
    std::fs::write(&tmp, &html).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    let drawn = [!data.metrics.is_empty(), !data.windows.is_empty(), !data.skills.is_empty()];
    Ok(format!(
        "wrote {} ({} rounds of metrics, {} problems{})",
        out.display(),
        data.metrics.len(),
        data.stats.total,
        if drawn.iter().all(|&d| d) { "" } else { "; some plots have no data yet" }
    ))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Text on the page (a run's name, a configuration change) is markup-free and reads back
        /// exactly as it was.
        #[test]
        fn page_text_is_escaped_and_survives_intact(text in any::<String>()) {
            let escaped = super::esc(&text);
            prop_assert!(!escaped.contains(['<', '>', '"']));
            let back = escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&");
            prop_assert_eq!(back, text);
        }
    }
}
