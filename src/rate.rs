//! `selfplay rate`: a person's pairwise judgements of interestingness, and the preference scorer
//! fitted to them.
//!
//! Ratings live in the archive's `ratings` tree. Some are held out of fitting, chosen by a hash of
//! the rating's id (the same split for `train` and `eval`), so that `eval` measures agreement on
//! judgements the model never saw.

use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::io::{BufRead, Write};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use problem::Domain;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Stylize;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;
use scorers::{Comparison, PreferenceModel, RatingOutcome};
use store::{Archive, Filter, Order, ProblemRecord, Rated, Rating, Winner};

#[derive(Debug, Args)]
pub struct RateArgs {
    /// The run directory: ratings go to its archive, the model to DIR/preference.json.
    #[arg(long, value_name = "DIR", default_value = "runs/default", global = true)]
    pub run_dir: PathBuf,
    /// Without a subcommand: compare problems two at a time in the terminal.
    #[command(subcommand)]
    pub command: Option<RateCommand>,
}

#[derive(Debug, Subcommand)]
pub enum RateCommand {
    /// Add ratings from JSON lines `{"a": "...", "b": "...", "winner": "a"|"b"|"tie"}`; a side that
    /// is all digits is an archive id, anything else a problem's text. All or nothing; judgements
    /// an earlier import stored are not stored again.
    Import {
        /// Input file; `-` reads standard input.
        input: PathBuf,
        /// Say what was imported as one JSON object: `imported`, `already_imported`, `ratings`.
        #[arg(long)]
        json: bool,
    },
    /// Fit the preference scorer to the ratings, except the held-out ones.
    Train {
        /// Fraction of ratings held out for `rate eval` (by a fixed hash of their ids).
        #[arg(long, default_value_t = 0.2)]
        holdout: f64,
        /// L2 penalty on the weights.
        #[arg(long, default_value_t = 0.01)]
        l2: f64,
        /// Where to write the model (default: DIR/preference.json).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// How often the fitted model picks the winner of held-out ratings, with a 95% interval.
    Eval {
        /// The model (default: DIR/preference.json).
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Problems offered for rating: the most recent valid ones, one per canonical form.
const POOL: usize = 5000;

pub fn run(args: RateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let db = args.run_dir.join("archive");
    let open = || -> anyhow::Result<Archive> {
        Archive::open_existing(&db).map_err(|e| match e {
            store::StoreError::Locked(_) => {
                anyhow!("{e}: stop the daemon to rate (ratings are written to its archive)")
            }
            e => e.into(),
        })
    };
    match args.command {
        None => interactive(open()?),
        Some(RateCommand::Import { input, json }) => {
            let archive = open()?;
            let reader = crate::commands::open_input(Some(&input))?;
            let read =
                read_ratings(&archive, reader).with_context(|| format!("importing {}", input.display()))?;
            let (mut ratings, known) = not_yet_imported(&archive.ratings()?, read);
            let ids = archive.add_ratings(&mut ratings)?;
            if json {
                let said = serde_json::json!({
                    "imported": ids.len(),
                    "already_imported": known,
                    "ratings": archive.ratings()?.len(),
                });
                writeln!(out, "{said}")?;
                return Ok(());
            }
            let skipped = if known > 0 { format!(", {known} imported before") } else { String::new() };
            writeln!(
                out,
                "imported {}{skipped} ({} in the archive now)",
                ratings_count(ids.len()),
                archive.ratings()?.len()
            )?;
            Ok(())
        }
        Some(RateCommand::Train { holdout, l2, out: path, json }) => {
            check_holdout(holdout)?;
            let archive = open()?;
            let (train, test, skipped) = comparisons(&archive, run_domain(&args.run_dir)?, holdout)?;
            let mut model = PreferenceModel::fit(&train, l2)
                .map_err(|e| anyhow!("cannot fit: {e} (rate some problems first)"))?;
            model.holdout = holdout;
            let path = path.unwrap_or_else(|| args.run_dir.join("preference.json"));
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&model)?)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
            let (agree, n) = model.agreement(&train);
            if json {
                let v = serde_json::json!({
                    "model": path, "version": model.version(), "trained_on": train.len(),
                    "held_out": test.len(), "skipped": skipped, "train_agreement": ratio(agree, n),
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(
                    out,
                    "fitted preference@{} on {} comparisons ({} held out, {} skipped: not valid problems); \
                     agrees with {agree} of {n} decided training comparisons; wrote {}",
                    model.version(),
                    train.len(),
                    test.len(),
                    skipped,
                    path.display()
                )?;
            }
            Ok(())
        }
        Some(RateCommand::Eval { model, json }) => {
            let archive = open()?;
            let path = model.unwrap_or_else(|| args.run_dir.join("preference.json"));
            let model = lab::scoring::read_model(&path)?;
            let (_, test, _) = comparisons(&archive, run_domain(&args.run_dir)?, model.holdout)?;
            let (agree, n) = model.agreement(&test);
            let (lo, hi) = wilson(agree, n);
            if json {
                let v = serde_json::json!({
                    "model": path, "version": model.version(), "held_out": test.len(), "decided": n,
                    "agree": agree, "accuracy": ratio(agree, n), "ci95": [lo, hi],
                });
                writeln!(out, "{v}")?;
            } else if n == 0 {
                writeln!(
                    out,
                    "no held-out comparisons with a winner to measure on (held out: {})",
                    test.len()
                )?;
            } else {
                writeln!(
                    out,
                    "preference@{} agrees with {agree} of {n} held-out comparisons: accuracy {:.3} (95% CI {lo:.3}–{hi:.3}; chance is 0.5)",
                    model.version(),
                    agree as f64 / n as f64,
                )?;
            }
            Ok(())
        }
    }
}

/// "1 rating", "3 ratings".
fn ratings_count(n: usize) -> String {
    if n == 1 {
        "1 rating".to_string()
    } else {
        format!("{n} ratings")
    }
}

fn ratio(a: usize, n: usize) -> Option<f64> {
    (n > 0).then(|| a as f64 / n as f64)
}

fn check_holdout(h: f64) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&h) {
        bail!("--holdout must be in [0, 1), got {h}");
    }
    Ok(())
}

/// The Wilson score interval at 95% for `k` successes in `n`.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p, z) = (n as f64, k as f64 / n as f64, 1.96f64);
    let denom = 1.0 + z * z / n;
    let center = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// Whether rating `id` is held out: a fixed hash of the id, below `fraction`.
pub fn held_out(id: u64, fraction: f64) -> bool {
    let h = id.wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let h = (h ^ (h >> 31)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((h ^ (h >> 29)) >> 11) as f64 / (1u64 << 53) as f64 <= fraction && fraction > 0.0
}

/// The domain of the run in `run_dir`, from its `config.toml`; the default domain where it has
/// none (an archive of imported ratings alone). Ratings name problems by text, read in it.
fn run_domain(run_dir: &Path) -> anyhow::Result<&'static dyn Domain> {
    let path = run_dir.join(lab::settle::CONFIG_FILE);
    if !path.is_file() {
        return Ok(problem::default_domain());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config =
        lab::config::RunConfig::from_toml(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(config.domain())
}

/// The ratings as comparisons over problem features in `domain`: (fitting, held out, skipped).
fn comparisons(
    archive: &Archive,
    domain: &dyn Domain,
    holdout: f64,
) -> anyhow::Result<(Vec<Comparison>, Vec<Comparison>, usize)> {
    let (mut train, mut test, mut skipped) = (Vec::new(), Vec::new(), 0);
    for r in archive.ratings()? {
        let (Some(a), Some(b)) =
            (lab::scoring::features_of(domain, &r.a.text), lab::scoring::features_of(domain, &r.b.text))
        else {
            skipped += 1;
            continue;
        };
        let outcome = match r.winner {
            Winner::A => RatingOutcome::A,
            Winner::B => RatingOutcome::B,
            Winner::Tie => RatingOutcome::Tie,
        };
        let c = Comparison { a, b, outcome };
        if held_out(r.id, holdout) {
            test.push(c);
        } else {
            train.push(c);
        }
    }
    Ok((train, test, skipped))
}

/// The ratings of `read` an earlier import did not already store, and how many it did. Read as a
/// multiset of (a, b, winner): a file imported again adds nothing, a file grown since adds its new
/// lines, and a judgement a file gives twice is kept twice.
fn not_yet_imported(stored: &[Rating], read: Vec<Rating>) -> (Vec<Rating>, usize) {
    let key = |r: &Rating| (r.a.text.clone(), r.b.text.clone(), r.winner);
    let mut before: HashMap<_, usize> = HashMap::new();
    for r in stored.iter().filter(|r| r.source == "import") {
        *before.entry(key(r)).or_default() += 1;
    }
    let total = read.len();
    let fresh: Vec<Rating> = read
        .into_iter()
        .filter(|r| match before.get_mut(&key(r)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect();
    let known = total - fresh.len();
    (fresh, known)
}

/// One import line: `{"a": "...", "b": "...", "winner": "a"|"b"|"tie"}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine {
    a: String,
    b: String,
    winner: Winner,
}

/// Reads import lines; all or nothing, errors name the line. A side that is all digits is an
/// archive id; anything else is a problem's text.
fn read_ratings(archive: &Archive, reader: Box<dyn BufRead>) -> anyhow::Result<Vec<Rating>> {
    let now = store::now_ms();
    let side = |s: &str, line: usize| -> anyhow::Result<Rated> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            let id: u64 = s.parse().map_err(|_| anyhow!("line {line}: id {s} is too large"))?;
            let r = archive
                .get(id)?
                .ok_or_else(|| anyhow!("line {line}: no problem with id {id} in the archive"))?;
            Ok(Rated { id: Some(id), text: r.text })
        } else if s.trim().is_empty() {
            bail!("line {line}: a side is empty")
        } else {
            Ok(Rated { id: None, text: s.to_string() })
        }
    };
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("line {n}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: ImportLine = serde_json::from_str(&line).map_err(|e| anyhow!("line {n}: {e}"))?;
        out.push(Rating {
            id: 0,
            a: side(&l.a, n)?,
            b: side(&l.b, n)?,
            winner: l.winner,
            source: "import".into(),
            created_ms: now,
        });
    }
    Ok(out)
}

/// The pairwise rating screen; drawing and keys are functions of it, so it is tested without a
/// terminal.
pub struct RateApp {
    archive: Archive,
    pool: Vec<u64>,
    rng: rand_chacha::ChaCha8Rng,
    pair: Option<(ProblemRecord, ProblemRecord)>,
    /// Ratings given in this session.
    pub given: usize,
    pub skipped: usize,
    status: String,
    pub quit: bool,
}

impl RateApp {
    pub fn new(archive: Archive, seed: u64) -> anyhow::Result<RateApp> {
        let mut seen = std::collections::HashSet::new();
        let mut pool = Vec::new();
        for r in archive.scan(&Filter { valid: Some(true), ..Default::default() }, Order::Descending, None) {
            let r = r?;
            if r.canonical_hash.is_none_or(|h| seen.insert(h)) {
                pool.push(r.id);
            }
            if pool.len() >= POOL {
                break;
            }
        }
        if pool.len() < 2 {
            bail!("the archive has {} distinct valid problems: at least 2 are needed to compare", pool.len());
        }
        let mut app = RateApp {
            archive,
            pool,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            pair: None,
            given: 0,
            skipped: 0,
            status: String::new(),
            quit: false,
        };
        app.next_pair()?;
        Ok(app)
    }

    fn next_pair(&mut self) -> anyhow::Result<()> {
        let ids: Vec<u64> = self.pool.choose_multiple(&mut self.rng, 2).copied().collect();
        let get = |id| {
            self.archive
                .get(id)
                .map_err(anyhow::Error::from)
                .and_then(|r| r.ok_or_else(|| anyhow!("problem {id} vanished")))
        };
        self.pair = Some((get(ids[0])?, get(ids[1])?));
        Ok(())
    }

    fn record(&mut self, winner: Winner) -> anyhow::Result<()> {
        let Some((a, b)) = &self.pair else { return Ok(()) };
        let mut r = vec![Rating {
            id: 0,
            a: Rated { id: Some(a.id), text: a.text.clone() },
            b: Rated { id: Some(b.id), text: b.text.clone() },
            winner,
            source: "terminal".into(),
            created_ms: store::now_ms(),
        }];
        self.archive.add_ratings(&mut r)?;
        self.given += 1;
        self.next_pair()
    }

    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        let result = match key.code {
            KeyCode::Left | KeyCode::Char('a') | KeyCode::Char('1') => self.record(Winner::A),
            KeyCode::Right | KeyCode::Char('b') | KeyCode::Char('2') => self.record(Winner::B),
            KeyCode::Char('t') | KeyCode::Char('=') => self.record(Winner::Tie),
            KeyCode::Char('s') | KeyCode::Char(' ') => {
                self.skipped += 1;
                self.next_pair()
            }
            KeyCode::Char('q') | KeyCode::Esc => {
                self.quit = true;
                Ok(())
            }
            _ => Ok(()),
        };
        self.status = match result {
            Ok(()) => String::new(),
            Err(e) => format!("{e:#}"),
        };
    }

    pub fn draw(&self, frame: &mut Frame) {
        let [top, body, bottom] =
            Layout::vertical([Constraint::Length(2), Constraint::Min(5), Constraint::Length(1)])
                .areas(frame.area());
        frame.render_widget(
            Paragraph::new(format!(
                " Which problem is more interesting?  {} rated, {} skipped this session",
                self.given, self.skipped
            ))
            .bold(),
            top,
        );
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        if let Some((a, b)) = &self.pair {
            for (area, r, title) in [(left, a, " A (← or a) "), (right, b, " B (→ or b) ")] {
                frame.render_widget(
                    Paragraph::new(describe(r))
                        .wrap(Wrap { trim: false })
                        .block(Block::default().borders(Borders::ALL).title(title)),
                    area,
                );
            }
        }
        let hint = if self.status.is_empty() {
            " ← a: A is more interesting · → b: B · t: tie · s: skip · q: quit".to_string()
        } else {
            format!(" {}", self.status)
        };
        frame.render_widget(Line::from(hint).reversed(), bottom);
    }
}

fn describe(r: &ProblemRecord) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    [
        format!("{}\n", r.text),
        format!("= {}\n", r.answer.as_deref().unwrap_or("?")),
        format!("canonical  {}", r.canonical.as_deref().unwrap_or("-")),
        format!("depth      {}", r.depth.map_or("-".into(), |d| d.to_string())),
        format!("padding    {}", opt(r.padding)),
        format!("solve rate {}", opt(r.solve_rate)),
        format!("problem {} (round {})", r.id, r.round),
    ]
    .join("\n")
}

fn interactive(archive: Archive) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        bail!("rating needs a terminal; `selfplay rate import FILE` takes ratings from a file");
    }
    let mut app = RateApp::new(archive, store::now_ms())?;
    let mut terminal = ratatui::init();
    let result = (|| -> anyhow::Result<()> {
        while !app.quit {
            terminal.draw(|f| app.draw(f))?;
            if let Event::Key(key) = event::read()? {
                app.handle_key(key);
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result?;
    eprintln!("{} stored", ratings_count(app.given));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_are_read_in_the_runs_own_domain() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            run_domain(dir.path()).unwrap().name(),
            problem::default_domain().name(),
            "no config.toml"
        );
        let config = dir.path().join(lab::settle::CONFIG_FILE);
        std::fs::write(&config, "domain = \"program\"\n").unwrap();
        assert_eq!(run_domain(dir.path()).unwrap().name(), "program");
        std::fs::write(&config, "domain = \"poetry\"\n").unwrap();
        let err = format!("{:#}", run_domain(dir.path()).err().unwrap());
        assert!(err.contains("config.toml") && err.contains("poetry"), "{err}");
    }

    #[test]
    fn the_held_out_split_has_the_asked_size_and_is_stable() {
        let n = (1..=20_000).filter(|&id| held_out(id, 0.2)).count();
        assert!((n as f64 / 20_000.0 - 0.2).abs() < 0.01, "{n}");
        assert_eq!((1..=1000).filter(|&id| held_out(id, 0.0)).count(), 0);
        assert!((1..=100).all(|id| held_out(id, 0.3) == held_out(id, 0.3)));
    }

    #[test]
    fn counts_of_ratings_read_as_english() {
        assert_eq!(ratings_count(1), "1 rating");
        assert_eq!((ratings_count(0), ratings_count(3)), ("0 ratings".to_string(), "3 ratings".to_string()));
    }

    #[test]
    fn wilson_intervals() {
        let (lo, hi) = wilson(80, 100);
        assert!((lo - 0.711).abs() < 0.002 && (hi - 0.867).abs() < 0.002, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        let (lo, hi) = wilson(10, 10);
        assert!(hi == 1.0 && lo > 0.69);
    }
}
