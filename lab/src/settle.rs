//! The run directory's configuration is the run's.
//!
//! `RUN_DIR/config.toml` is written on a run's first start and is what every resume runs on:
//! `selfplay run --run-dir DIR` without `--config` continues on it, not on the embedded defaults.
//! A resume given a configuration (a `--config` file, `--set KEY=VALUE` overrides) that differs
//! from it is refused with the differing keys named, unless the change is asked for
//! (`--reconfigure`): then it is recorded in `RUN_DIR/config-changes.jsonl` (the round it takes
//! effect, each key's old and new value) before `config.toml` is replaced. Overrides on a first
//! start are recorded the same way, so that a sweep's runs say what they changed.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::{Override, RunConfig};

/// The run's configuration, in the run directory.
pub const CONFIG_FILE: &str = "config.toml";
/// One JSON line per configuration change: [`ChangeRecord`].
pub const CHANGES_FILE: &str = "config-changes.jsonl";

/// One key whose value changed; values as TOML text, `None` where the key was absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        write!(f, "{} ({} → {})", self.key, show(&self.from), show(&self.to))
    }
}

/// How a change came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Overrides given on the run's first start, against the file or the defaults they overrode.
    Start,
    /// A resume asked to change the configuration (`--reconfigure`).
    Reconfigure,
}

/// One line of `config-changes.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// The first round run on the new configuration.
    pub round: u64,
    /// When it was recorded, in Unix milliseconds.
    pub unix_ms: u64,
    pub kind: ChangeKind,
    pub changes: Vec<Change>,
}

/// What a start or resume of `run_dir` runs on.
#[derive(Debug, Clone)]
pub struct Settled {
    pub config: RunConfig,
    /// Keys changed by this start, recorded when the run directory is opened
    /// ([`crate::run::open_run_dir`]); `None` when nothing changed.
    pub change: Option<(ChangeKind, Vec<Change>)>,
}

/// What a run writes in its directory, opened by name: none of them may be a link, which would
/// send the run's writes elsewhere.
const RUN_FILES: [&str; 9] = [
    CONFIG_FILE,
    CHANGES_FILE,
    "metrics.jsonl",
    "provenance.jsonl",
    "archive",
    "checkpoints",
    "warmstart",
    "logs",
    "report.html",
];

/// Checks that `run_dir`, when it exists, is a directory of this user's, and that nothing the run
/// writes there by name is a symbolic link.
pub fn check_run_dir(run_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(run_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read run directory {}", run_dir.display())),
    };
    if !meta.is_dir() {
        anyhow::bail!("run directory {} is not a directory", run_dir.display());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        anyhow::bail!(
            "run directory {} belongs to user {}, not to this user ({me}): a run writes only in its own",
            run_dir.display(),
            meta.uid()
        );
    }
    for name in RUN_FILES {
        let path = run_dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            anyhow::bail!(
                "{} is a symbolic link: a run writes its files in its own directory only",
                path.display()
            );
        }
    }
    Ok(())
}

/// Creates `run_dir` (and missing parents) readable by its owner only: a run's archive, logs and
/// configuration are nobody else's.
pub fn create_run_dir(run_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(run_dir)
        .with_context(|| format!("cannot create run directory {}", run_dir.display()))?;
    check_run_dir(run_dir)
}

/// Decides the configuration of a start or resume of `run_dir`: `file` (a `--config`), or else the
/// run directory's `config.toml`, or else the embedded defaults, with `overrides` laid over it.
/// On a resume, a result that differs from `config.toml` is an error naming the keys, unless
/// `reconfigure`; before anything ran in `run_dir` (no warm start begun), the result replaces it.
pub fn settle(
    run_dir: &Path,
    file: Option<&Path>,
    overrides: &[Override],
    reconfigure: bool,
) -> anyhow::Result<Settled> {
    check_run_dir(run_dir)?;
    let stored_path = run_dir.join(CONFIG_FILE);
    let stored_text = match std::fs::read_to_string(&stored_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", stored_path.display())),
    };
    let stored = stored_text
        .as_deref()
        .map(|t| {
            RunConfig::from_toml(t).with_context(|| {
                format!("{} (the run's configuration) is not a valid configuration", stored_path.display())
            })
        })
        .transpose()?;
    let (base_text, base_name) = match (file, &stored_text) {
        (Some(p), _) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            (text, format!("configuration {}", p.display()))
        }
        (None, Some(text)) => (text.clone(), format!("configuration {}", stored_path.display())),
        (None, None) => (String::new(), "the embedded default configuration".to_string()),
    };
    let config = RunConfig::from_toml_with(&base_text, overrides).with_context(|| {
        if overrides.is_empty() {
            base_name.clone()
        } else {
            format!("{base_name} with --set overrides")
        }
    })?;
    // A run directory in which nothing ran yet (a first start that stopped before its warm
    // start: a missing scorer model, a typo) takes the configuration given as a first start does.
    let ran = ["warmstart", "checkpoints"].iter().any(|d| run_dir.join(d).exists());
    let stored = stored.filter(|_| ran);
    let change = match stored {
        Some(stored) => {
            let changes = differences(&stored, &config);
            if changes.is_empty() {
                None
            } else if reconfigure {
                Some((ChangeKind::Reconfigure, changes))
            } else {
                let list: Vec<String> = changes.iter().map(ToString::to_string).collect();
                anyhow::bail!(
                    "{} holds the run's configuration, and the one given differs in {}: {}. Leave out \
                     --config and --set to resume as the run was configured, or pass --reconfigure to \
                     change it from the next round on (the change is recorded in {})",
                    stored_path.display(),
                    if changes.len() == 1 {
                        "one key".to_string()
                    } else {
                        format!("{} keys", changes.len())
                    },
                    list.join("; "),
                    CHANGES_FILE
                );
            }
        }
        None if overrides.is_empty() => None,
        None => {
            let without = RunConfig::from_toml(&base_text).with_context(|| base_name.clone())?;
            let changes = differences(&without, &config);
            (!changes.is_empty()).then_some((ChangeKind::Start, changes))
        }
    };
    Ok(Settled { config, change })
}

/// The keys whose values differ between two configurations, in key order.
pub fn differences(a: &RunConfig, b: &RunConfig) -> Vec<Change> {
    let flat = |cfg: &RunConfig| {
        let mut out = std::collections::BTreeMap::new();
        let value = toml::Value::try_from(cfg).expect("a configuration serializes to TOML");
        flatten(&value, "", &mut out);
        out
    };
    let (a, b) = (flat(a), flat(b));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| Change { key: k.clone(), from: a.get(k).cloned(), to: b.get(k).cloned() })
        .collect()
}

/// Every leaf of `value` (tables recursed, arrays kept whole) as `dotted.key → TOML text`.
fn flatten(value: &toml::Value, path: &str, out: &mut std::collections::BTreeMap<String, String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                flatten(v, &key, out);
            }
        }
        leaf => {
            out.insert(path.to_string(), without_credentials(&leaf.to_string()));
        }
    }
}

/// `text` with the user name and password of every URL in it left out (`http://u:p@host` →
/// `http://host`): a change is shown and recorded, and credentials must be neither.
fn without_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', '"', '\'', ' ', '?', '#']).unwrap_or(tail.len());
        rest = match tail[..authority_end].rfind('@') {
            Some(userinfo_end) => &tail[userinfo_end + 1..],
            None => tail,
        };
    }
    out.push_str(rest);
    out
}

/// Records `settled`'s change (taking effect at `round`) and writes `config.toml` when it is new
/// or differs: the record first, so that a configuration never changes unrecorded; the file
/// replaced whole (written beside it, synced, renamed), so that a crash leaves the old one or the
/// new one.
pub(crate) fn write(run_dir: &Path, settled: &Settled, round: u64) -> anyhow::Result<()> {
    let path = run_dir.join(CONFIG_FILE);
    if let Some((kind, changes)) = &settled.change {
        let record = ChangeRecord { round, unix_ms: store::now_ms(), kind: *kind, changes: changes.clone() };
        append_json_line(&run_dir.join(CHANGES_FILE), &record)?;
    }
    let text = toml::to_string(&settled.config)?;
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fail::fail_point!("config-write", |how| Err(store::failpoint::injected("config-write", how).into()));
    let tmp = run_dir.join(format!(".{CONFIG_FILE}.tmp-{}", std::process::id()));
    std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, &path))
        .and_then(|()| std::fs::File::open(run_dir)?.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Appends `value` as one JSON line to the file at `path` (created if missing), synced to disk.
pub fn append_json_line(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&line).and_then(|()| f.sync_data()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The recorded changes of `run_dir`'s configuration, oldest first (none when it never changed).
pub fn history(run_dir: &Path) -> anyhow::Result<Vec<ChangeRecord>> {
    let path = run_dir.join(CHANGES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{} line {}: not a change record", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> Override {
        s.parse().unwrap()
    }

    #[test]
    fn overrides_parse_toml_values_and_fall_back_to_strings() {
        assert_eq!(set("round.proposals=32").value, toml::Value::Integer(32));
        assert_eq!(set("reward.padding.cost = 0.3").value, toml::Value::Float(0.3));
        assert_eq!(set("name=sweep-1").value, toml::Value::String("sweep-1".into()));
        assert_eq!(set("name=\"a b\"").value, toml::Value::String("a b".into()));
        assert!("round.proposals".parse::<Override>().unwrap_err().contains("KEY=VALUE"));
        assert!("round..x=1".parse::<Override>().unwrap_err().contains("dotted name"));
    }

    #[test]
    fn a_first_start_writes_the_configuration_and_records_its_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let settled = settle(dir.path(), None, &[set("round.proposals=12")], false).unwrap();
        assert_eq!(settled.config.round.proposals, 12);
        let (kind, changes) = settled.change.clone().unwrap();
        assert_eq!(kind, ChangeKind::Start);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].key, "round.proposals");
        write(dir.path(), &settled, 1).unwrap();
        let history = history(dir.path()).unwrap();
        assert_eq!((history.len(), history[0].round), (1, 1));
        // A resume with nothing given runs on the run's own configuration, not the defaults.
        let resumed = settle(dir.path(), None, &[], false).unwrap();
        assert_eq!(resumed.config.round.proposals, 12);
        assert!(resumed.change.is_none());
    }

    #[test]
    fn a_differing_resume_is_refused_unless_asked_and_then_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let first = settle(dir.path(), None, &[], false).unwrap();
        write(dir.path(), &first, 1).unwrap();
        assert!(history(dir.path()).unwrap().is_empty());
        // Before the warm start began, another configuration is simply taken.
        let retried = settle(dir.path(), None, &[set("round.proposals=10")], false).unwrap();
        assert_eq!(retried.change.as_ref().map(|c| c.0), Some(ChangeKind::Start));
        std::fs::create_dir(dir.path().join("warmstart")).unwrap();
        let wanted = [set("round.proposals=12"), set("reward.padding.cost=0.3")];
        let e = settle(dir.path(), None, &wanted, false).unwrap_err().to_string();
        assert!(
            e.contains("round.proposals (")
                && e.contains("reward.padding.cost (")
                && e.contains("--reconfigure"),
            "{e}"
        );
        let changed = settle(dir.path(), None, &wanted, true).unwrap();
        write(dir.path(), &changed, 41).unwrap();
        let history = history(dir.path()).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!((history[0].round, history[0].kind), (41, ChangeKind::Reconfigure));
        let keys: Vec<&str> = history[0].changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["reward.padding.cost", "round.proposals"]);
        assert_eq!(settle(dir.path(), None, &[], false).unwrap().config.round.proposals, 12);
    }

    #[test]
    fn changes_never_show_a_urls_credentials() {
        assert_eq!(
            without_credentials("[{ url = \"https://alice:hunter2@h:8/s?x=1\" }, \"http://h/a@b\"]"),
            "[{ url = \"https://h:8/s?x=1\" }, \"http://h/a@b\"]"
        );
        let a = RunConfig::default_config();
        let mut b = a.clone();
        b.name = "ftp://bob:pw@example.org/x".into();
        let shown = differences(&a, &b)[0].to_string();
        assert!(shown.contains("ftp://example.org/x") && !shown.contains("pw"), "{shown}");
    }

    #[test]
    fn a_bad_override_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let e = format!("{:#}", settle(dir.path(), None, &[set("round.propsals=3")], false).unwrap_err());
        assert!(e.contains("unknown key `round.propsals`"), "{e}");
        let e = format!("{:#}", settle(dir.path(), None, &[set("round.proposals=0")], false).unwrap_err());
        assert!(e.contains("round.proposals must be positive"), "{e}");
        let e = format!("{:#}", settle(dir.path(), None, &[set("round.proposals=lots")], false).unwrap_err());
        assert!(e.contains("round.proposals"), "{e}");
    }
}
