//! The experiment daemon: rounds of self-play in a run directory, resumable.
//!
//! ```text
//! RUN_DIR/
//!   config.toml                 the run's configuration ([`crate::settle`])
//!   archive/                    the sled archive of every problem
//!   warmstart/                  the warm start (solver, proposer, report.json)
//!   checkpoints/round-NNNNNN/   solver/, proposer/, curriculum.json; round-000000 is the warm
//!                               start and is always kept
//!   config-changes.jsonl        each change of the configuration, and the round it took effect
//!   metrics.jsonl               one JSON object per round
//!   events.out.tfevents.*       the same metrics for TensorBoard, a file per start
//!   provenance.jsonl            each start: version, commit, command line, cores
//!   archive.sock                the query endpoint while the daemon runs ([`crate::endpoint`])
//!   logs/                       daily log files
//! ```
//!
//! Started on a run directory with checkpoints, it resumes from the latest: models, optimizers,
//! curriculum and RNG as they were. Rounds that ran after that checkpoint (a crash) are not
//! redone under the same numbers: the counter goes on from the highest round in the archive.
//! A stop request (SIGINT, SIGTERM) lets the current round finish, then checkpoints and returns.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;
use policy::Trainable;
use store::Archive;

use crate::config::RunConfig;
use crate::round::{CurriculumState, Lab, LabParts, RoundMetrics};
use problem::player::{checkpoint_dir, Player, PlayerMeta};
use proposer::ProposerFormat;
use solver::SolverFormat;

/// How long to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    pub minutes: Option<f64>,
    pub rounds: Option<u64>,
}

/// What a run did in this process.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub first_round: u64,
    pub last_round: u64,
    pub resumed: bool,
    /// Seconds spent in rounds (checkpoints included), and problems written in them.
    pub seconds: f64,
    pub problems: u64,
    pub stopped_by_request: bool,
}

fn round_dir(run_dir: &Path, n: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("round-{n:06}"))
}

type Loaded = ((Trainable, PlayerMeta), (Trainable, PlayerMeta), CurriculumState);

/// Both players and the curriculum of the round checkpoint at `dir`.
fn load_round(dir: &Path, device: &Device) -> anyhow::Result<Loaded> {
    let solver = load_player(dir, Player::Solver, device)?;
    let proposer = load_player(dir, Player::Proposer, device)?;
    let path = dir.join("curriculum.json");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let state =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is unreadable", path.display()))?;
    Ok((solver, proposer, state))
}

/// The newest round checkpoint that loads; `None` when there is no checkpoint at all. Newer ones
/// that do not load (a damaged disk, a hand edit) are reported and renamed
/// `round-NNNNNN.corrupt-SECONDS`, kept but never tried again. When none loads, nothing is
/// renamed (the cause may be this machine, not the files) and the run stops, naming each.
fn latest_loadable(
    run_dir: &Path,
    device: &Device,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<Option<(u64, Loaded)>> {
    let cks = policy::Checkpoints { root: run_dir.join("checkpoints"), prefix: "round".into(), keep: 0 };
    let mut failed: Vec<(PathBuf, anyhow::Error)> = Vec::new();
    for &n in cks.list().iter().rev() {
        let dir = round_dir(run_dir, n);
        match load_round(&dir, device) {
            Ok(loaded) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                for (bad, e) in &failed {
                    let name = bad.file_name().unwrap_or_default().to_string_lossy();
                    let aside = bad.with_file_name(format!("{name}.corrupt-{stamp}"));
                    let moved = std::fs::rename(bad, &aside).map_or_else(
                        |m| format!("could not move it aside: {m}"),
                        |()| format!("moved to {}", aside.display()),
                    );
                    log(&format!("checkpoint {} does not load: {e:#}; {moved}", bad.display()));
                }
                if !failed.is_empty() {
                    log(&format!("resuming from the older checkpoint {}", dir.display()));
                }
                return Ok(Some((n, loaded)));
            }
            Err(e) => failed.push((dir, e)),
        }
    }
    if failed.is_empty() {
        return Ok(None);
    }
    let each: Vec<String> = failed.iter().map(|(d, e)| format!("{}: {e:#}", d.display())).collect();
    bail!("no checkpoint of {} loads:\n  {}", run_dir.display(), each.join("\n  "))
}

/// Writes a round checkpoint atomically: both players and the curriculum into a temporary
/// directory, renamed into place.
fn save_round(run_dir: &Path, lab: &Lab, cfg: &RunConfig) -> anyhow::Result<()> {
    let root = run_dir.join("checkpoints");
    let final_dir = round_dir(run_dir, lab.completed_rounds());
    if final_dir.exists() {
        return Ok(());
    }
    let tmp = root.join(format!(".round-{:06}.tmp-{}", lab.completed_rounds(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let written = lab.write_checkpoint(&tmp).and_then(|()| {
        fail::fail_point!("checkpoint-rename", |how| Err(store::failpoint::injected(
            "checkpoint-rename",
            how
        )
        .into()));
        // The players' files are synced by their own save; the renamed entry is synced here.
        std::fs::rename(&tmp, &final_dir).with_context(|| format!("cannot write {}", final_dir.display()))?;
        std::fs::File::open(&root)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", root.display()))
    });
    if written.is_err() {
        // A full disk gets its space back; the previous checkpoints stay as they were.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written?;
    // Keep round-000000, the milestones and the latest `keep_checkpoints`.
    let checkpoints = policy::Checkpoints { root, prefix: "round".into(), keep: cfg.keep_checkpoints.max(1) };
    let pinned: Vec<u64> = checkpoints
        .list()
        .into_iter()
        .filter(|&n| n == 0 || (cfg.milestone_every > 0 && n % cfg.milestone_every == 0))
        .collect();
    checkpoints.prune(&pinned);
    Ok(())
}

fn load_player(dir: &Path, player: Player, device: &Device) -> anyhow::Result<(Trainable, PlayerMeta)> {
    let dir = checkpoint_dir(dir, player)?;
    let (t, state) = Trainable::load(&dir, None, device)?;
    // What its tokens mean must be what the model reads (a hand-edited or mismatched state).
    let (meta, _) = PlayerMeta::read(&dir, &state.extra, player, t.model.config().vocab)?;
    Ok((t, meta))
}

/// Opens the lab at the latest checkpoint of `run_dir`, warm-starting first when there is none.
fn open_lab(
    cfg: &RunConfig,
    run_dir: &Path,
    archive: &Archive,
    device: &Device,
    stop: &AtomicBool,
    scoring: Option<crate::scoring::Scoring>,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<(Lab, bool)> {
    let domain = cfg.domain();
    let (dir, resumed, (mut solver, solver_meta), (mut proposer, proposer_meta), state) =
        match latest_loadable(run_dir, device, log)? {
            Some((n, loaded)) => {
                let (solver, proposer, state) = loaded;
                (round_dir(run_dir, n), true, solver, proposer, Some(state))
            }
            None => {
                let warm = run_dir.join("warmstart");
                log(&format!("no checkpoint in {}: warm start", run_dir.display()));
                if warm.exists() && !crate::warmstart::finished(&warm) {
                    // This run's own, left unfinished by a run killed during it: start it again.
                    log(&format!("removing the unfinished warm start in {}", warm.display()));
                    std::fs::remove_dir_all(&warm)
                        .with_context(|| format!("cannot remove {}", warm.display()))?;
                }
                crate::warmstart::run(&cfg.warm_start, domain, &warm, device, stop, log)?;
                let solver = load_player(&warm, Player::Solver, device)?;
                let proposer = load_player(&warm, Player::Proposer, device)?;
                (warm, false, solver, proposer, None)
            }
        };
    if !resumed {
        // Self-play trains with its own optimizer settings, from the warm-start weights.
        solver.optim = policy::AdamW::new(solver.model.named_vars(), cfg.solver_optim)?;
        proposer.optim = policy::AdamW::new(proposer.model.named_vars(), cfg.proposer_optim)?;
    }
    // KL penalties hold each player near its warm start (round 0), whatever round this resumes.
    let warm_dir = if resumed { round_dir(run_dir, 0) } else { dir.clone() };
    let solver_reference =
        if cfg.solver_ppo.kl_coef > 0.0 { Some(solver::load(&warm_dir, device)?.model) } else { None };
    let proposer_reference =
        if cfg.proposer_ppo.kl_coef > 0.0 { Some(proposer::load(&warm_dir, device)?.model) } else { None };
    // Never reuse a round number the archive already holds (rounds run after the last checkpoint).
    let checkpointed = state.as_ref().map_or(0, |s| s.round);
    let completed_rounds = match archive.last_round(&cfg.name)? {
        Some(max) if max > checkpointed => {
            log(&format!(
                "the archive holds rounds up to {max}, past checkpoint {checkpointed}: continuing from {max}"
            ));
            Some(max)
        }
        _ => None,
    };
    let lab = Lab::new(
        LabParts {
            cfg: cfg.clone(),
            solver: (solver, SolverFormat::of(&solver_meta, domain)),
            proposer: (proposer, ProposerFormat::of(&proposer_meta, domain)),
            solver_reference,
            proposer_reference,
            state,
            completed_rounds,
            scoring,
        },
        archive,
    )?;
    if !resumed {
        save_round(run_dir, &lab, cfg)?;
    }
    Ok((lab, resumed))
}

/// A process killed mid-write can leave a partial last line: cut it, so that every line stays a
/// whole JSON object.
fn drop_partial_line(path: &Path) -> anyhow::Result<()> {
    let Ok(bytes) = std::fs::read(path) else { return Ok(()) };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.set_len(keep as u64).with_context(|| format!("repairing {}", path.display()))?;
    Ok(())
}

/// Prepares `run_dir` for a run and opens its archive, which this process then holds: creates it,
/// writes its `config.toml` on the first start, and records and writes a configuration change
/// ([`crate::settle`]).
pub fn open_run_dir(settled: &crate::settle::Settled, run_dir: &Path) -> anyhow::Result<Archive> {
    let cfg = &settled.config;
    cfg.validate()?;
    crate::settle::create_run_dir(run_dir)?;
    let archive = Archive::open(run_dir.join("archive"))?;
    // A change takes effect at the round after the last one this run holds anywhere: its newest
    // checkpoint, or rounds the archive holds past it (a crash after them).
    let checkpointed =
        policy::Checkpoints { root: run_dir.join("checkpoints"), prefix: "round".into(), keep: 1 }
            .latest()
            .unwrap_or(0);
    let archived = archive.last_round(&cfg.name)?.unwrap_or(0);
    crate::settle::write(run_dir, settled, checkpointed.max(archived) + 1)?;
    // Holding the archive, this is the only run here: temporary checkpoints are left-overs of a
    // run that was killed while writing one.
    for entry in std::fs::read_dir(run_dir.join("checkpoints")).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') && name.to_string_lossy().contains(".tmp-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    Ok(archive)
}

/// Makes the finished warm start in `from` (a `selfplay pretrain --out`) the warm start of the run
/// in `run_dir`, copied into `run_dir/warmstart` so that the run stands alone. A run that already
/// has a finished warm start keeps it: the same one again is no change, another is refused.
pub fn adopt_warm_start(from: &Path, run_dir: &Path) -> anyhow::Result<()> {
    check_warm_start(from)?;
    let dest = run_dir.join("warmstart");
    let report = |dir: &Path| std::fs::read(dir.join("report.json")).ok();
    if crate::warmstart::finished(&dest) {
        if report(&dest) == report(from) {
            return Ok(());
        }
        bail!(
            "--warm-start {}: the run in {} already has a warm start of its own, and another one: a run keeps \
             the warm start it began with (start a new run directory to use this one)",
            from.display(),
            run_dir.display()
        );
    }
    if dest.exists() {
        // This run's own, left unfinished by a run killed during it.
        std::fs::remove_dir_all(&dest).with_context(|| format!("cannot remove {}", dest.display()))?;
    }
    let tmp = run_dir.join(format!(".warmstart.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    copy_dir(from, &tmp)
        .and_then(|()| std::fs::rename(&tmp, &dest).map_err(Into::into))
        .with_context(|| format!("cannot copy the warm start {} into {}", from.display(), dest.display()))
}

/// That `from` holds a finished warm start a run can adopt ([`adopt_warm_start`]).
pub fn check_warm_start(from: &Path) -> anyhow::Result<()> {
    if !crate::warmstart::finished(from) {
        bail!(
            "--warm-start {}: no finished warm start there (it needs solver/, proposer/ and report.json, \
             as `selfplay pretrain --out DIR` writes them)",
            from.display()
        );
    }
    Ok(())
}

/// Copies the files of `from` into a new directory `to`, recursively.
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Runs rounds until the budget is spent or `stop` is set; checkpoints on schedule and at the end.
/// `archive` is the run directory's ([`open_run_dir`]); `rollouts` samples the solver's attempts
/// ([`crate::rollouts::InProcess`], or workers).
#[allow(clippy::too_many_arguments)]
pub fn run(
    cfg: &RunConfig,
    run_dir: &Path,
    archive: &Archive,
    budget: Budget,
    device: &Device,
    rollouts: Box<dyn crate::rollouts::Rollouts>,
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
    on_round: &mut dyn FnMut(&RoundMetrics),
) -> anyhow::Result<RunSummary> {
    let domain = cfg.domain();
    // Scorers first: a missing model or command stops the run before the warm start.
    let scoring = crate::scoring::Scoring::build(&cfg.scorers, run_dir, archive, domain)?;
    let (mut lab, resumed) = match open_lab(cfg, run_dir, archive, device, stop, scoring, log) {
        Err(e) if e.is::<crate::warmstart::Stopped>() => {
            log("stopped on request during the warm start: the next run starts it again");
            return Ok(RunSummary {
                first_round: 0,
                last_round: 0,
                resumed: false,
                seconds: 0.0,
                problems: 0,
                stopped_by_request: true,
            });
        }
        opened => opened?,
    };
    lab.set_rollouts(rollouts);
    let first_round = lab.completed_rounds();
    if resumed {
        log(&format!("resumed {} at round {}", run_dir.display(), lab.completed_rounds()));
    }
    let metrics_path = run_dir.join("metrics.jsonl");
    drop_partial_line(&metrics_path)?;
    let mut metrics = std::fs::OpenOptions::new()
        .custom_flags(libc::O_NOFOLLOW)
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("cannot open {}", metrics_path.display()))?;
    // TensorBoard's copy of the metrics; without it the run goes on (metrics.jsonl is the record).
    let mut events = match crate::tensorboard::EventWriter::create(run_dir) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("no TensorBoard events: {e:#}");
            None
        }
    };
    let started = Instant::now();
    let mut stopped_by_request = false;
    let mut problems = 0;
    loop {
        if stop.load(Ordering::SeqCst) {
            stopped_by_request = true;
            break;
        }
        if budget.rounds.is_some_and(|r| lab.completed_rounds() - first_round >= r)
            || budget.minutes.is_some_and(|m| started.elapsed().as_secs_f64() >= m * 60.0)
        {
            break;
        }
        let m = lab.round(archive)?;
        problems += m.proposals as u64;
        let mut line = serde_json::to_vec(&m)?;
        line.push(b'\n');
        fail::fail_point!("metrics-append", |how| Err(
            store::failpoint::injected("metrics-append", how).into()
        ));
        metrics.write_all(&line).and_then(|()| metrics.sync_data()).context("writing metrics.jsonl")?;
        if let Some(w) = &mut events {
            let scalars = crate::tensorboard::scalars_of(&serde_json::to_value(&m)?);
            if let Err(e) = w.scalars(m.round, m.wall_time, &scalars) {
                tracing::warn!("TensorBoard events stopped: {e:#}");
                events = None;
            }
        }
        on_round(&m);
        if lab.completed_rounds() % cfg.checkpoint_every == 0 {
            save_round(run_dir, &lab, cfg)?;
        }
    }
    save_round(run_dir, &lab, cfg)?;
    archive.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RunSummary {
        first_round,
        last_round: lab.completed_rounds(),
        resumed,
        seconds,
        problems,
        stopped_by_request,
    })
}
