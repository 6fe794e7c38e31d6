//! TensorBoard event files: every scalar of `metrics.jsonl`, under stable tags, in the run
//! directory, so that `tensorboard --logdir runs/` (and `wandb sync --sync-tensorboard`) show a
//! run as they show any other trainer's.
//!
//! An event file is a sequence of records, each `u64` length, masked CRC-32C of the length,
//! the bytes of one `Event` protobuf, masked CRC-32C of those bytes (TensorFlow's TFRecord
//! framing). Each start of a run opens a new file; TensorBoard reads a directory's files in name
//! order, and a step written again after a crash replaces the earlier one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use prost::Message;

/// `tensorflow.Event`, the fields this writer uses.
#[derive(Clone, PartialEq, Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`, as a simple scalar.
#[derive(Clone, PartialEq, Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
}

/// Appends events to one event file.
pub struct EventWriter {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl EventWriter {
    /// A new event file in `dir`, named as TensorFlow names them (`events.out.tfevents.SECONDS.HOST`).
    pub fn create(dir: &Path) -> anyhow::Result<EventWriter> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let path =
            dir.join(format!("events.out.tfevents.{}.{host}.{}.selfplay", now.as_secs(), std::process::id()));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = EventWriter { file: std::io::BufWriter::new(file), path };
        writer.write_event(&Event {
            wall_time: now.as_secs_f64(),
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        })?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event holding `scalars` at `step`, flushed to the file.
    pub fn scalars(&mut self, step: u64, wall_time: f64, scalars: &[(String, f64)]) -> anyhow::Result<()> {
        let value = scalars
            .iter()
            .map(|(tag, v)| SummaryValue { tag: tag.clone(), simple_value: Some(*v as f32) })
            .collect();
        let step = i64::try_from(step).context("a step beyond i64")?;
        self.write_event(&Event { wall_time, step, file_version: None, summary: Some(Summary { value }) })
    }

    fn write_event(&mut self, event: &Event) -> anyhow::Result<()> {
        let data = event.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend_from_slice(&len);
        record.extend_from_slice(&masked_crc(&len).to_le_bytes());
        record.extend_from_slice(&data);
        record.extend_from_slice(&masked_crc(&data).to_le_bytes());
        self.file
            .write_all(&record)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// TFRecord's masked CRC-32C: rotated and offset so that a CRC of data holding CRCs stays strong.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Every scalar of a metrics line (`serde_json` of [`crate::round::RoundMetrics`]) with its tag;
/// `round` (the step) and `wall_time` (the event's time) are not scalars of their own. Booleans
/// count as 0 and 1; strings and lists are left out. A tag met twice keeps its first value (the
/// flat `solver_loss` and the nested `solver.loss` are one number).
pub fn scalars_of(line: &serde_json::Value) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut visit = |path: &[String], v: f64| {
        let t = tag(path);
        if seen.insert(t.clone()) {
            out.push((t, v));
        }
    };
    walk(line, &mut Vec::new(), &mut visit);
    out
}

fn walk(value: &serde_json::Value, path: &mut Vec<String>, visit: &mut dyn FnMut(&[String], f64)) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if path.is_empty() && (k == "round" || k == "wall_time") {
                    continue;
                }
                path.push(k.clone());
                walk(v, path, visit);
                path.pop();
            }
        }
        Value::Number(n) => {
            if let Some(v) = n.as_f64() {
                visit(path, v);
            }
        }
        Value::Bool(b) => visit(path, f64::from(u8::from(*b))),
        Value::Null | Value::String(_) | Value::Array(_) => {}
    }
}

/// What the curriculum decides and holds.
const CURRICULUM: [&str; 5] =
    ["difficulty_level", "difficulty_levels", "median_solve_rates", "replay_size", "rehearsal_solve_rate"];

/// The stable tag of a metrics path: `solver/…` and `proposer/…` (the players' updates and their
/// own counts), `held_out/depth_N`, `timings/…`, `curriculum/…`, `scorers/NAME/…`, and
/// `judge/…` for what the judge found of the round's problems.
pub fn tag(path: &[String]) -> String {
    let (first, rest) = path.split_first().map_or(("", &[][..]), |(f, r)| (f.as_str(), r));
    let joined = |group: &str, head: &str| {
        let mut parts = vec![group.to_string()];
        if !head.is_empty() {
            parts.push(head.to_string());
        }
        parts.extend(rest.iter().cloned());
        parts.join("/")
    };
    match first {
        "solver" | "proposer" | "timings" | "scorers" => joined(first, ""),
        "held_out" => format!("held_out/depth_{}", rest.join("/")),
        "problems_per_s" => "timings/problems_per_s".into(),
        "attempt_tokens_per_s" => "timings/attempt_tokens_per_s".into(),
        "skipped_updates" => "updates/skipped_updates".into(),
        _ => {
            if let Some(k) = first.strip_prefix("solver_") {
                joined("solver", k)
            } else if let Some(k) = first.strip_prefix("proposer_") {
                joined("proposer", k)
            } else if CURRICULUM.contains(&first) {
                joined("curriculum", first)
            } else {
                joined("judge", first)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_masked_crc_is_tensorflows() {
        // CRC-32C("123456789") is 0xE3069283 (its standard check value); masked as TFRecord does.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn metrics_paths_get_their_groups_tags() {
        let line = serde_json::json!({
            "round": 7, "wall_time": 1.5e9, "valid_fraction": 0.5, "solver_loss": 0.25,
            "solver": {"loss": 0.25, "grad_norm": 1.5, "entropy": null},
            "proposer_output_tokens": 9.0, "held_out": {"3": 0.5}, "timings": {"solve": 2.0},
            "difficulty_levels": {"20": 2.5}, "skipped_depths": [1, 2], "problems_per_s": 3.0,
            "scorers": {"novelty@1": {"state": "closed", "last_batch_ok": true, "batches": 4}},
        });
        let got: std::collections::BTreeMap<String, f64> = scalars_of(&line).into_iter().collect();
        let want: std::collections::BTreeMap<String, f64> = [
            ("judge/valid_fraction", 0.5),
            ("solver/loss", 0.25),
            ("solver/grad_norm", 1.5),
            ("proposer/output_tokens", 9.0),
            ("held_out/depth_3", 0.5),
            ("timings/solve", 2.0),
            ("timings/problems_per_s", 3.0),
            ("curriculum/difficulty_levels/20", 2.5),
            ("scorers/novelty@1/last_batch_ok", 1.0),
            ("scorers/novelty@1/batches", 4.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn records_are_framed_with_their_lengths_and_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalars(3, 12.5, &[("judge/valid_fraction".into(), 0.75)]).unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut at = 0;
        let mut events = Vec::new();
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            assert_eq!(
                u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()),
                masked_crc(&bytes[at..at + 8])
            );
            let data = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, masked_crc(data));
            events.push(Event::decode(data).unwrap());
            at += 16 + len;
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        assert_eq!((events[1].step, events[1].wall_time), (3, 12.5));
        let value = &events[1].summary.as_ref().unwrap().value[0];
        assert_eq!((value.tag.as_str(), value.simple_value), ("judge/valid_fraction", Some(0.75)));
    }
}
