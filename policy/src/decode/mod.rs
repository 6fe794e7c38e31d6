//! Sampling on the CPU without a graph: every request one stream of slots, continuously batched.
//!
//! candle's graph costs a tensor, an allocation and a dispatch per op, and a decoding step is a
//! few hundred small ops: at the policy's sizes that bookkeeping, not arithmetic, set the rate.
//! Here a step is a handful of loops over plain `f32` rows, the weights copied out (transposed for
//! the products) once per call.
//!
//! Each worker thread holds up to [`MAX_SLOTS`] sequences, each with its own KV cache rows and
//! positions counted from its own first token (no padding, no masks). A step feeds every slot what
//! it has not yet fed (a new slot its whole prompt, a running one its last token) as one matrix of
//! rows; a sequence that ends frees its slot for the next request at once, so no row is spent on
//! a finished sequence or on padding. Workers take requests from one shared queue.
//!
//! Which requests share a step depends on timing, so nothing may depend on it: every row's
//! arithmetic is independent of the others ([`kernels`]) and every request draws from its own
//! random stream. A request's tokens and log-probabilities are therefore the same bits alone, in
//! any batch, with any number of threads.

pub(crate) mod kernels;

use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{DType, Result, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::choice::{logprob_of, sample_token, Request, SampleConfig, Sampled};
use crate::model::{Gpt, Positions};
use kernels::Isa;

/// Sequences one worker decodes at once: a step's products have this many rows (more when new
/// prompts are read), and each slot holds `context × d` keys and values a layer.
pub const MAX_SLOTS: usize = 64;

/// Layer norms' epsilon, as the model's (`crate::model`).
const LN_EPS: f64 = 1e-5;

/// One request to continue, with how to choose its tokens and the random stream to draw from.
pub(crate) struct Job<'a> {
    pub request: &'a Request,
    pub sampling: SampleConfig,
    /// `ChaCha8Rng::seed_from_u64(seed)` on stream `stream`.
    pub seed: u64,
    pub stream: u64,
}

impl Job<'_> {
    pub fn rng(&self) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(self.stream);
        rng
    }
}

/// The instructions the CPU's sampling kernels run with (`avx512`, `avx2` or `baseline`): the
/// widest this CPU has, or the narrower one `SELFPLAY_CPU_ISA` asks for; an error names a value
/// that cannot be had.
pub fn sampling_isa() -> std::result::Result<&'static str, String> {
    Isa::requested().map(Isa::name)
}

/// Whether [`run`] serves `model`: an `f32` model on the CPU.
pub(crate) fn serves(model: &Gpt) -> bool {
    model.device().is_cpu() && model.dtype() == DType::F32
}

/// Continues every job; the result is in the jobs' order. Prompts must be non-empty and fit the
/// context (the caller checks).
pub(crate) fn run(model: &Gpt, jobs: &[Job]) -> Result<Vec<Sampled>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let weights = Weights::of(model)?;
    let workers = rayon::current_num_threads().clamp(1, jobs.len());
    let width = jobs.len().div_ceil(workers).min(MAX_SLOTS);
    let next = AtomicUsize::new(0);
    let isa = Isa::detect();
    use rayon::prelude::*;
    let done: Vec<Vec<(usize, Sampled)>> = (0..workers)
        .into_par_iter()
        .map(|_| {
            isa.run(
                #[inline(always)]
                |isa| Worker::new(&weights, width, isa).drain(jobs, &next),
            )
        })
        .collect();
    let mut out: Vec<Option<Sampled>> = (0..jobs.len()).map(|_| None).collect();
    for (i, s) in done.into_iter().flatten() {
        out[i] = Some(s);
    }
    out.into_iter()
        .enumerate()
        .map(|(i, s)| s.ok_or_else(|| candle_core::Error::Msg(format!("request {i} was never sampled"))))
        .collect()
}

/// A linear layer: its weight transposed to `[in, out]`, and its bias.
struct Linear {
    wt: Vec<f32>,
    b: Vec<f32>,
}

impl Linear {
    /// `out = x · w + b` for `rows` rows of `x` (`out += …` with `accumulate`: the residual).
    #[inline(always)]
    fn apply(&self, isa: Isa, out: &mut [f32], x: &[f32], rows: usize, accumulate: bool) {
        let outer = self.b.len();
        let shape = (rows, self.wt.len() / outer, outer);
        kernels::matmul(isa, out, x, &self.wt, Some(&self.b), shape, accumulate);
    }
}

/// A layer norm's weight and bias.
struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Norm {
    #[inline(always)]
    fn apply(&self, x: &[f32], y: &mut [f32]) {
        crate::ops::ln_forward_rows(x, &self.w, &self.b, y, self.w.len(), LN_EPS);
    }
}

/// One block's parameters.
struct Layer {
    ln_1: Norm,
    attn: Linear,
    attn_proj: Linear,
    ln_2: Norm,
    fc: Linear,
    mlp_proj: Linear,
}

/// A model's parameters as plain rows.
struct Weights {
    d: usize,
    heads: usize,
    context: usize,
    vocab: usize,
    /// `[vocab, d]`, and transposed `[d, vocab]` for the tied output head.
    wte: Vec<f32>,
    head: Vec<f32>,
    wpe: Option<Vec<f32>>,
    /// Rotary `cos` and `sin`, `[context, dh/2]`, as the model computed them.
    rope: Option<(Vec<f32>, Vec<f32>)>,
    layers: Vec<Layer>,
    ln_f: Norm,
}

impl Weights {
    fn of(model: &Gpt) -> Result<Self> {
        let vars: std::collections::HashMap<String, Tensor> =
            model.named_vars().into_iter().map(|(name, var)| (name, var.as_tensor().clone())).collect();
        let param = |name: &str| -> Result<Tensor> {
            let t = vars.get(name).ok_or_else(|| candle_core::Error::Msg(format!("no parameter {name}")))?;
            t.to_dtype(DType::F32)
        };
        let get = |name: &str| -> Result<Vec<f32>> { param(name)?.flatten_all()?.to_vec1() };
        let transposed =
            |name: &str| -> Result<Vec<f32>> { param(name)?.t()?.contiguous()?.flatten_all()?.to_vec1() };
        let norm = |prefix: &str| -> Result<Norm> {
            Ok(Norm { w: get(&format!("{prefix}.weight"))?, b: get(&format!("{prefix}.bias"))? })
        };
        let linear = |prefix: &str| -> Result<Linear> {
            Ok(Linear { wt: transposed(&format!("{prefix}.weight"))?, b: get(&format!("{prefix}.bias"))? })
        };
        let cfg = model.config();
        let layers = (0..cfg.layers)
            .map(|i| {
                let p = format!("h.{i}");
                Ok(Layer {
                    ln_1: norm(&format!("{p}.ln_1"))?,
                    attn: linear(&format!("{p}.attn.c_attn"))?,
                    attn_proj: linear(&format!("{p}.attn.c_proj"))?,
                    ln_2: norm(&format!("{p}.ln_2"))?,
                    fc: linear(&format!("{p}.mlp.c_fc"))?,
                    mlp_proj: linear(&format!("{p}.mlp.c_proj"))?,
                })
            })
            .collect::<Result<_>>()?;
        let rope = match model.rotary_tables() {
            Some((cos, sin)) => Some((
                cos.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                sin.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            )),
            None => None,
        };
        Ok(Weights {
            d: cfg.d_model,
            heads: cfg.heads,
            context: cfg.context,
            vocab: cfg.vocab,
            wte: get("wte.weight")?,
            head: transposed("wte.weight")?,
            wpe: match cfg.positions {
                Positions::Learned => Some(get("wpe.weight")?),
                Positions::Rotary => None,
            },
            rope,
            layers,
            ln_f: norm("ln_f")?,
        })
    }
}

/// A sequence being decoded.
struct Slot {
    job: usize,
    /// The prompt, then every token sampled.
    tokens: Vec<u32>,
    /// Positions already in the cache.
    fed: usize,
    /// Most new tokens: the request's, capped by the context.
    max_new: usize,
    out: Sampled,
    rng: ChaCha8Rng,
}

/// One thread's slots, their KV caches and the step's scratch rows.
struct Worker<'w> {
    w: &'w Weights,
    isa: Isa,
    slots: Vec<Option<Slot>>,
    /// Per layer, `[slots, context, d]`: position `p` of slot `s` at `(s · context + p) · d`.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    /// Per row of the step: its slot and position.
    rows: Vec<(usize, usize)>,
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    y: Vec<f32>,
    wide: Vec<f32>,
    scores: Vec<f32>,
}

impl<'w> Worker<'w> {
    fn new(w: &'w Weights, width: usize, isa: Isa) -> Self {
        let cache = || vec![0f32; width * w.context * w.d];
        Worker {
            w,
            isa,
            slots: (0..width).map(|_| None).collect(),
            keys: w.layers.iter().map(|_| cache()).collect(),
            values: w.layers.iter().map(|_| cache()).collect(),
            rows: Vec::new(),
            x: Vec::new(),
            h: Vec::new(),
            qkv: Vec::new(),
            y: Vec::new(),
            wide: Vec::new(),
            scores: vec![0f32; w.context],
        }
    }

    /// Decodes jobs taken from `next` until none is left; returns them with their indices.
    /// (`drain`, `step` and `attend` are inlined into [`Isa::run`]'s wrapper, so that their loops
    /// are compiled for the CPU's vector width.)
    #[inline(always)]
    fn drain(mut self, jobs: &[Job], next: &AtomicUsize) -> Vec<(usize, Sampled)> {
        let mut finished = Vec::new();
        let mut queue_open = true;
        loop {
            // Free slots take the next requests; one with nothing to sample ends at once.
            for s in 0..self.slots.len() {
                while queue_open && self.slots[s].is_none() {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else {
                        queue_open = false;
                        break;
                    };
                    let r = job.request;
                    let max_new = r.max_new.min(self.w.context.saturating_sub(r.prompt.len()));
                    let out = Sampled { tokens: Vec::new(), logprobs: Vec::new(), stopped: false };
                    if max_new == 0 {
                        finished.push((i, out));
                        continue;
                    }
                    self.slots[s] =
                        Some(Slot { job: i, tokens: r.prompt.clone(), fed: 0, max_new, out, rng: job.rng() });
                }
            }
            if self.slots.iter().all(Option::is_none) {
                return finished;
            }
            let logits = self.step();
            let vocab = self.w.vocab;
            let mut at = 0;
            for entry in self.slots.iter_mut() {
                let Some(slot) = entry else { continue };
                let row = &logits[at * vocab..(at + 1) * vocab];
                at += 1;
                let job = &jobs[slot.job];
                let token = sample_token(row, &job.sampling, &mut slot.rng);
                slot.out.tokens.push(token as u32);
                slot.out.logprobs.push(logprob_of(row, token));
                slot.tokens.push(token as u32);
                let stopped = job.request.stop == Some(token as u32);
                if stopped || slot.out.tokens.len() == slot.max_new {
                    let mut slot = entry.take().expect("the slot is running");
                    slot.out.stopped = stopped;
                    finished.push((slot.job, slot.out));
                }
            }
        }
    }

    /// Feeds every running slot what it has not fed; returns the next-token logits of each, in
    /// slot order, `[running, vocab]`.
    #[inline(always)]
    fn step(&mut self) -> Vec<f32> {
        let (w, isa) = (self.w, self.isa);
        let d = w.d;
        self.rows.clear();
        for (s, slot) in self.slots.iter().enumerate() {
            if let Some(slot) = slot {
                self.rows.extend((slot.fed..slot.tokens.len()).map(|p| (s, p)));
            }
        }
        let n = self.rows.len();
        self.x.clear();
        for &(s, p) in &self.rows {
            let token = self.slots[s].as_ref().expect("a row's slot runs").tokens[p] as usize;
            self.x.extend_from_slice(&w.wte[token * d..(token + 1) * d]);
            if let Some(wpe) = &w.wpe {
                let at = self.x.len() - d;
                self.x[at..].iter_mut().zip(&wpe[p * d..(p + 1) * d]).for_each(|(x, &e)| *x += e);
            }
        }
        self.h.resize(n * d, 0.0);
        self.qkv.resize(n * 3 * d, 0.0);
        self.y.resize(n * d, 0.0);
        self.wide.resize(n * 4 * d, 0.0);
        for (l, layer) in w.layers.iter().enumerate() {
            layer.ln_1.apply(&self.x, &mut self.h);
            layer.attn.apply(isa, &mut self.qkv, &self.h, n, false);
            self.attend(l);
            layer.attn_proj.apply(isa, &mut self.x, &self.y, n, true);
            layer.ln_2.apply(&self.x, &mut self.h);
            layer.fc.apply(isa, &mut self.wide, &self.h, n, false);
            self.wide.iter_mut().for_each(|v| *v = crate::ops::gelu_y(*v));
            layer.mlp_proj.apply(isa, &mut self.x, &self.wide, n, true);
        }
        // Only each slot's last row predicts a token.
        let mut last = Vec::new();
        for (r, &(s, p)) in self.rows.iter().enumerate() {
            let slot = self.slots[s].as_mut().expect("a row's slot runs");
            if p + 1 == slot.tokens.len() {
                last.extend_from_slice(&self.x[r * d..(r + 1) * d]);
                slot.fed = slot.tokens.len();
            }
        }
        let running = last.len() / d;
        let mut normed = vec![0f32; last.len()];
        w.ln_f.apply(&last, &mut normed);
        let mut logits = vec![0f32; running * w.vocab];
        kernels::matmul(isa, &mut logits, &normed, &w.head, None, (running, d, w.vocab), false);
        logits
    }

    /// Rotates the step's queries and keys (rotary positions), writes its keys and values into
    /// the caches of layer `l`, and attends each row over its own sequence up to its position.
    #[inline(always)]
    fn attend(&mut self, l: usize) {
        let w = self.w;
        let (d, heads, context) = (w.d, w.heads, w.context);
        let dh = d / heads;
        if let Some((cos, sin)) = &w.rope {
            let half = dh / 2;
            for (r, &(_, p)) in self.rows.iter().enumerate() {
                let (cos, sin) = (&cos[p * half..(p + 1) * half], &sin[p * half..(p + 1) * half]);
                // Queries and keys, head by head: pairs `(x_i, x_{i+dh/2})` turned by the angle.
                for part in self.qkv[r * 3 * d..r * 3 * d + 2 * d].chunks_exact_mut(dh) {
                    let (x1, x2) = part.split_at_mut(half);
                    for i in 0..half {
                        let (a, b) = (x1[i], x2[i]);
                        x1[i] = a * cos[i] - b * sin[i];
                        x2[i] = b * cos[i] + a * sin[i];
                    }
                }
            }
        }
        let (keys, values) = (&mut self.keys[l], &mut self.values[l]);
        for (r, &(s, p)) in self.rows.iter().enumerate() {
            let at = (s * context + p) * d;
            let row = &self.qkv[r * 3 * d..(r + 1) * 3 * d];
            keys[at..at + d].copy_from_slice(&row[d..2 * d]);
            values[at..at + d].copy_from_slice(&row[2 * d..]);
        }
        let scale = 1.0 / (dh as f32).sqrt();
        for (r, &(s, p)) in self.rows.iter().enumerate() {
            let base = s * context * d;
            for h in 0..heads {
                let q = &self.qkv[r * 3 * d + h * dh..r * 3 * d + (h + 1) * dh];
                let (k, v) = (&keys[base + h * dh..], &values[base + h * dh..]);
                let y = &mut self.y[r * d + h * dh..r * d + (h + 1) * dh];
                kernels::attend(q, k, v, d, p + 1, scale, &mut self.scores, y);
            }
        }
    }
}
