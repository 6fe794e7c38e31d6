//! A small decoder-only transformer (GPT-2 shape), the policy of both players.
//!
//! Pre-LN blocks (`x + attn(ln(x))`, `x + mlp(ln(x))`), causal multi-head attention, learned
//! position embeddings or rotary ones ([`Positions`]), GELU MLP of width 4·d, output head tied to
//! the token embedding. Parameter names follow nanoGPT (`wte`, `h.0.attn.c_attn`, ...), so
//! checkpoints read naturally.
//!
//! Every op on the training path has a backward pass: the fused ops of [`crate::ops`] or plain
//! candle tensor ops.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder, VarMap};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::ops;

/// The shape of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Token ids are `0..vocab`.
    pub vocab: usize,
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    /// Longest sequence (prompt and completion) the model reads.
    pub context: usize,
    /// Dropout probability on attention weights and residual branches while training.
    #[serde(default)]
    pub dropout: f64,
    /// How positions enter the model.
    #[serde(default)]
    pub positions: Positions,
}

/// How a model knows where a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Positions {
    /// A learned embedding per absolute position (`wpe`), added to the token embedding.
    #[default]
    Learned,
    /// Rotary embeddings (RoFormer): queries and keys are rotated by their position, so attention
    /// sees relative positions only and a pattern learnt at one place is the same at another.
    Rotary,
}

impl ModelConfig {
    /// Checks the shape is buildable; the message names the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, v) in [
            ("vocab", self.vocab),
            ("d_model", self.d_model),
            ("layers", self.layers),
            ("heads", self.heads),
            ("context", self.context),
        ] {
            if v == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return Err(format!("d_model {} must be a multiple of heads {}", self.d_model, self.heads));
        }
        if self.positions == Positions::Rotary && !(self.d_model / self.heads).is_multiple_of(2) {
            return Err(format!(
                "rotary positions need an even head width, got {}",
                self.d_model / self.heads
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// Number of parameters.
    pub fn parameters(&self) -> usize {
        let d = self.d_model;
        let block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d);
        let wpe = if self.positions == Positions::Learned { self.context * d } else { 0 };
        self.vocab * d + wpe + self.layers * block + 2 * d
    }
}

/// Additive attention mask value: large enough to zero a weight, finite so that a fully masked
/// row (a padding position) stays finite on every backend.
const MASKED: f64 = -1e9;

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn new(d: usize, vb: VarBuilder) -> Result<Self> {
        Ok(LayerNorm { weight: vb.get(d, "weight")?, bias: vb.get(d, "bias")? })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::layer_norm(x, &self.weight, &self.bias, 1e-5)
    }
}

/// Keys and values of one layer, `[B, H, capacity, dh]`, of which the first `len` positions are
/// filled: a step writes its positions in place instead of copying the whole cache into a longer
/// one. Not `Clone`: copies would share the storage written in place.
struct LayerCache {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl LayerCache {
    /// Appends `k` and `v` `[B, H, T, dh]` (contiguous); returns every position held, as views.
    fn append(
        slot: &mut Option<LayerCache>,
        k: &Tensor,
        v: &Tensor,
        capacity: usize,
    ) -> Result<(Tensor, Tensor)> {
        let (b, h, t, dh) = k.dims4()?;
        let cache = match slot {
            Some(c) if c.len + t <= c.k.dim(2)? => c,
            _ => {
                // First step, or past the capacity (a longer context than the model's): a new
                // buffer, with what was held copied over.
                let held = slot.as_ref().map_or(0, |c| c.len);
                let cap = capacity.max(held + t);
                let (nk, nv) = (
                    Tensor::zeros((b, h, cap, dh), k.dtype(), k.device())?,
                    Tensor::zeros((b, h, cap, dh), v.dtype(), v.device())?,
                );
                if let Some(old) = slot.as_ref() {
                    nk.slice_set(&old.k.narrow(2, 0, held)?.contiguous()?, 2, 0)?;
                    nv.slice_set(&old.v.narrow(2, 0, held)?.contiguous()?, 2, 0)?;
                }
                slot.insert(LayerCache { k: nk, v: nv, len: held })
            }
        };
        cache.k.slice_set(&k.detach().contiguous()?, 2, cache.len)?;
        cache.v.slice_set(&v.detach().contiguous()?, 2, cache.len)?;
        cache.len += t;
        Ok((cache.k.narrow(2, 0, cache.len)?, cache.v.narrow(2, 0, cache.len)?))
    }
}

/// What sampling keeps of one layer between the steps of one batch: its keys and values so far,
/// and its four weight matrices transposed row-major (`c_attn`, `attn.c_proj`, `c_fc`,
/// `mlp.c_proj`), made at the first step: the weights do not change while a batch is sampled, and
/// a product with a row-major right-hand side is 2–4× faster at decoding sizes.
#[derive(Default)]
struct LayerState {
    kv: Option<LayerCache>,
    weights: Option<[Tensor; 4]>,
}

/// The KV cache of a whole model for one batch of sequences.
#[derive(Default)]
pub struct KvCache {
    layers: Vec<LayerState>,
}

impl KvCache {
    pub fn new(layers: usize) -> Self {
        KvCache { layers: (0..layers).map(|_| LayerState::default()).collect() }
    }

    /// Positions held.
    pub fn len(&self) -> usize {
        self.layers.first().and_then(|l| l.kv.as_ref()).map_or(0, |c| c.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the sequences at `rows` (`u32` indices into the batch, in order) and drops the
    /// rest, so that sequences already finished cost nothing in the steps after.
    pub fn retain(&mut self, rows: &Tensor) -> Result<()> {
        for cache in self.layers.iter_mut().filter_map(|l| l.kv.as_mut()) {
            cache.k = cache.k.index_select(rows, 0)?;
            cache.v = cache.v.index_select(rows, 0)?;
        }
        Ok(())
    }
}

/// Dropout driven by the caller's seeded RNG, so that training is reproducible and resumable.
pub struct Dropout<'a> {
    pub p: f64,
    pub rng: &'a mut dyn RngCore,
}

impl Dropout<'_> {
    fn apply(&mut self, x: &Tensor) -> Result<Tensor> {
        if self.p == 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 - self.p;
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| if self.rng.random::<f64>() < keep { (1.0 / keep) as f32 } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}

fn drop(x: Tensor, dropout: &mut Option<Dropout>) -> Result<Tensor> {
    match dropout {
        Some(d) => d.apply(&x),
        None => Ok(x),
    }
}

/// `x · wᵀ + b`: [`ops::linear`], or [`ops::linear_t`] with `wt`, the weight already transposed,
/// when the caller keeps one (sampling).
fn linear_with(layer: &Linear, x: &Tensor, wt: Option<&Tensor>) -> Result<Tensor> {
    let bias = layer.bias().ok_or_else(|| candle_core::Error::Msg("every linear layer has a bias".into()))?;
    match wt {
        Some(wt) => ops::linear_t(x, wt, bias),
        None => ops::linear(x, layer.weight(), bias),
    }
}

fn linear(layer: &Linear, x: &Tensor) -> Result<Tensor> {
    linear_with(layer, x, None)
}

struct Attention {
    c_attn: Linear,
    c_proj: Linear,
    heads: usize,
    /// Positions a KV cache is made for.
    context: usize,
}

impl Attention {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Attention {
            c_attn: candle_nn::linear(d, 3 * d, vb.pp("c_attn"))?,
            c_proj: candle_nn::linear(d, d, vb.pp("c_proj"))?,
            heads: cfg.heads,
            context: cfg.context,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        rope: Option<&Rope>,
        causal: Option<&Causal>,
        cache: Option<(&mut Option<LayerCache>, &[Tensor; 4])>,
        dropout: &mut Option<Dropout>,
    ) -> Result<Tensor> {
        let (b, t, c) = x.dims3()?;
        let (attn_wt, proj_wt) = match &cache {
            Some((_, w)) => (Some(&w[0]), Some(&w[1])),
            None => (None, None),
        };
        let dh = c / self.heads;
        // The fused op where it applies: a causal pass, no dropout on the weights, CPU.
        let no_dropout = dropout.as_ref().is_none_or(|d| d.p == 0.0);
        if let (Some(causal), true, true) = (causal, no_dropout, x.device().is_cpu()) {
            let tables = causal.rope.as_ref().map(|(cos, sin)| (cos, sin));
            let y = ops::causal_attention(&linear(&self.c_attn, x)?, self.heads, tables)?;
            return linear(&self.c_proj, &y);
        }
        let qkv = linear_with(&self.c_attn, x, attn_wt)?
            .reshape((b, t, 3, self.heads, dh))?
            .permute((2, 0, 3, 1, 4))?;
        let mut q = qkv.get(0)?.contiguous()?;
        let (mut k, mut v) = (qkv.get(1)?.contiguous()?, qkv.get(2)?.contiguous()?);
        if let Some(rope) = rope {
            q = rope.rotate(&q)?;
            k = rope.rotate(&k)?;
        }
        // With a cache this is sampling: nothing is differentiated.
        let sampling = cache.is_some();
        if let Some((slot, _)) = cache {
            // The cache is for sampling only: it keeps values, not the graph that made them.
            (k, v) = LayerCache::append(slot, &k, &v, self.context)?;
        }
        let scale = 1.0 / (dh as f64).sqrt();
        let y = if sampling {
            ops::attention(&q, &k, &v, mask, scale)?
        } else {
            drop(ops::masked_softmax(&q.matmul(&k.t()?)?, mask, scale)?, dropout)?.matmul(&v)?
        };
        let y = y.transpose(1, 2)?.reshape((b, t, c))?;
        linear_with(&self.c_proj, &y, proj_wt)
    }
}

/// Rotary angles of the positions of one forward pass: `cos` and `sin`, `[B, 1, T, dh/2]`.
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    /// Rotates each pair `(x_i, x_{i+dh/2})` of `x` `[B, H, T, dh]` by its position's angle
    /// `θ_i = pos · 10000^(−2i/dh)`. Plain tensor ops, so gradients flow through it.
    fn rotate(&self, x: &Tensor) -> Result<Tensor> {
        let half = x.dim(3)? / 2;
        let (x1, x2) = (x.narrow(3, 0, half)?, x.narrow(3, half, half)?);
        let r1 = (x1.broadcast_mul(&self.cos)? - x2.broadcast_mul(&self.sin)?)?;
        let r2 = (x2.broadcast_mul(&self.cos)? + x1.broadcast_mul(&self.sin)?)?;
        Tensor::cat(&[&r1, &r2], 3)
    }
}

/// A pass causal over positions `0..T` of every sequence (training and scoring), which the fused
/// [`ops::causal_attention`] computes: the rotary `cos` and `sin` of those positions, `[T, dh/2]`
/// (none with learned positions).
struct Causal {
    rope: Option<(Tensor, Tensor)>,
}

struct Block {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
}

impl Block {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Block {
            ln_1: LayerNorm::new(d, vb.pp("ln_1"))?,
            attn: Attention::new(cfg, vb.pp("attn"))?,
            ln_2: LayerNorm::new(d, vb.pp("ln_2"))?,
            c_fc: candle_nn::linear(d, 4 * d, vb.pp("mlp.c_fc"))?,
            c_proj: candle_nn::linear(4 * d, d, vb.pp("mlp.c_proj"))?,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        rope: Option<&Rope>,
        causal: Option<&Causal>,
        cache: Option<&mut LayerState>,
        dropout: &mut Option<Dropout>,
    ) -> Result<Tensor> {
        let (kv, weights) = match cache {
            Some(state) => {
                if state.weights.is_none() {
                    let t = |l: &Linear| l.weight().t()?.contiguous();
                    state.weights = Some([
                        t(&self.attn.c_attn)?,
                        t(&self.attn.c_proj)?,
                        t(&self.c_fc)?,
                        t(&self.c_proj)?,
                    ]);
                }
                (Some(&mut state.kv), state.weights.as_ref())
            }
            None => (None, None),
        };
        let attn_cache = kv.zip(weights);
        let a = self.attn.forward(&self.ln_1.forward(x)?, mask, rope, causal, attn_cache, dropout)?;
        let x = (x + drop(a, dropout)?)?;
        let h = linear_with(&self.c_fc, &self.ln_2.forward(&x)?, weights.map(|w| &w[2]))?;
        let m = linear_with(&self.c_proj, &ops::gelu(&h)?, weights.map(|w| &w[3]))?;
        x + drop(m, dropout)?
    }
}

/// The transformer, its parameters in a [`VarMap`].
pub struct Gpt {
    cfg: ModelConfig,
    varmap: VarMap,
    wte: Embedding,
    /// Learned position embeddings ([`Positions::Learned`]).
    wpe: Option<Embedding>,
    /// `cos` and `sin` of every position's rotary angles, `[context, dh/2]`
    /// ([`Positions::Rotary`]).
    rotary: Option<(Tensor, Tensor)>,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    device: Device,
    dtype: DType,
}

impl Gpt {
    /// A model with weights drawn from `seed`: normal(0, 0.02), residual projections scaled by
    /// `1/sqrt(2·layers)`, layer norms at identity. The same seed gives the same weights.
    pub fn new(cfg: &ModelConfig, seed: u64, dtype: DType, device: &Device) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::Msg)?;
        let varmap = VarMap::new();
        let model = Self::build(cfg, varmap, dtype, device)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let resid_std = 0.02 / (2.0 * cfg.layers as f64).sqrt();
        for (name, var) in model.named_vars() {
            let shape = var.shape().clone();
            let t = if name.ends_with("bias") {
                Tensor::zeros(&shape, dtype, device)?
            } else if name.contains("ln_") {
                Tensor::ones(&shape, dtype, device)?
            } else {
                let std = if name.ends_with("c_proj.weight") { resid_std } else { 0.02 };
                let normal = rand_distr_normal(&mut rng, shape.elem_count(), std);
                Tensor::from_vec(normal, &shape, device)?.to_dtype(dtype)?
            };
            var.set(&t)?;
        }
        Ok(model)
    }

    /// Builds the layers over `varmap`, creating any variable it lacks (zeros).
    fn build(cfg: &ModelConfig, varmap: VarMap, dtype: DType, device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_varmap(&varmap, dtype, device);
        let d = cfg.d_model;
        let (wpe, rotary) = match cfg.positions {
            Positions::Learned => (Some(candle_nn::embedding(cfg.context, d, vb.pp("wpe"))?), None),
            Positions::Rotary => {
                let half = d / cfg.heads / 2;
                let mut angles = Vec::with_capacity(cfg.context * half);
                for p in 0..cfg.context {
                    for i in 0..half {
                        let inv_freq = 10_000f64.powf(-(i as f64) / half as f64);
                        angles.push((p as f64 * inv_freq) as f32);
                    }
                }
                let angles = Tensor::from_vec(angles, (cfg.context, half), device)?;
                (None, Some((angles.cos()?.to_dtype(dtype)?, angles.sin()?.to_dtype(dtype)?)))
            }
        };
        Ok(Gpt {
            wte: candle_nn::embedding(cfg.vocab, d, vb.pp("wte"))?,
            wpe,
            rotary,
            blocks: (0..cfg.layers)
                .map(|i| Block::new(cfg, vb.pp(format!("h.{i}"))))
                .collect::<Result<_>>()?,
            ln_f: LayerNorm::new(d, vb.pp("ln_f"))?,
            cfg: cfg.clone(),
            varmap,
            device: device.clone(),
            dtype,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The rotary `cos` and `sin` tables, `[context, dh/2]` ([`Positions::Rotary`]).
    pub(crate) fn rotary_tables(&self) -> Option<(&Tensor, &Tensor)> {
        self.rotary.as_ref().map(|(cos, sin)| (cos, sin))
    }

    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Every parameter with its name, sorted by name: a stable order for optimizers and
    /// checkpoints.
    pub fn named_vars(&self) -> Vec<(String, candle_core::Var)> {
        let data = self.varmap.data().lock().expect("the var map lock is never poisoned");
        let mut vars: Vec<_> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Logits `[B, T, vocab]` for `tokens` `[B, T]` at `positions` `[B, T]`.
    ///
    /// `mask` is added to the attention scores, broadcast to `[B, heads, T, T_keys]`. With a
    /// cache, the keys are the cached positions followed by these. With `dropout`, dropout is
    /// applied (training).
    pub fn forward_with(
        &self,
        tokens: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        cache: Option<&mut KvCache>,
        dropout: Option<Dropout>,
    ) -> Result<Tensor> {
        self.forward_inner(tokens, positions, mask, None, cache, dropout)
    }

    /// [`Gpt::forward_with`], told by `causal` when the pass is causal over positions `0..T`.
    fn forward_inner(
        &self,
        tokens: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        causal: Option<&Causal>,
        mut cache: Option<&mut KvCache>,
        mut dropout: Option<Dropout>,
    ) -> Result<Tensor> {
        let mut x = self.wte.forward(tokens)?;
        if let Some(wpe) = &self.wpe {
            x = (x + wpe.forward(positions)?)?;
        }
        let rope = match &self.rotary {
            Some((cos, sin)) => {
                let (b, t) = positions.dims2()?;
                let at = |table: &Tensor| -> Result<Tensor> {
                    let half = table.dim(1)?;
                    table.index_select(&positions.flatten_all()?, 0)?.reshape((b, 1, t, half))
                };
                Some(Rope { cos: at(cos)?, sin: at(sin)? })
            }
            None => None,
        };
        x = drop(x, &mut dropout)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let slot = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward(&x, mask, rope.as_ref(), causal, slot, &mut dropout)?;
        }
        let x = self.ln_f.forward(&x)?;
        // Output head tied to the token embedding, one product over every position.
        let (b, t, d) = x.dims3()?;
        x.reshape((b * t, d))?.matmul(&self.wte.embeddings().t()?)?.reshape((b, t, ()))
    }

    /// Logits `[B, T, vocab]` for right-padded sequences `[B, T]` starting at position 0, with a
    /// causal mask: the training and scoring path.
    pub fn forward(&self, tokens: &Tensor, dropout: Option<Dropout>) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        if t > self.cfg.context {
            candle_core::bail!("sequence of {t} tokens exceeds the context of {}", self.cfg.context);
        }
        let positions = Tensor::arange(0u32, t as u32, &self.device)?.unsqueeze(0)?.repeat((b, 1))?;
        let mask = self.causal_mask(t, &[0; 0])?;
        let rope = match &self.rotary {
            Some((cos, sin)) => Some((cos.narrow(0, 0, t)?, sin.narrow(0, 0, t)?)),
            None => None,
        };
        self.forward_inner(tokens, &positions, &mask, Some(&Causal { rope }), None, dropout)
    }

    /// [`Gpt::forward`] through the general attention path (additive mask, batched products), as
    /// sampling takes it: what the fused causal attention is checked against.
    #[cfg(test)]
    pub(crate) fn forward_unfused(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, &self.device)?.unsqueeze(0)?.repeat((b, 1))?;
        self.forward_with(tokens, &positions, &self.causal_mask(t, &[0; 0])?, None, None)
    }

    /// Additive mask `[B|1, 1, T, T]`: causal, and with `pads[b]` leading key positions of
    /// sequence `b` masked (left padding). Empty `pads` means no padding.
    pub(crate) fn causal_mask(&self, t: usize, pads: &[usize]) -> Result<Tensor> {
        let rows = pads.len().max(1);
        let mut m = vec![0f32; rows * t * t];
        for r in 0..rows {
            let pad = pads.get(r).copied().unwrap_or(0);
            for i in 0..t {
                for j in 0..t {
                    if j > i || j < pad {
                        m[(r * t + i) * t + j] = MASKED as f32;
                    }
                }
            }
        }
        Tensor::from_vec(m, (rows, 1, t, t), &self.device)?.to_dtype(self.dtype)
    }

    /// Additive mask `[B, 1, 1, K]` for one new position per sequence over `K` keys, `pads[b]`
    /// leading keys masked.
    pub(crate) fn step_mask(&self, keys: usize, pads: &[usize]) -> Result<Tensor> {
        let mut m = vec![0f32; pads.len() * keys];
        for (b, &pad) in pads.iter().enumerate() {
            m[b * keys..b * keys + pad.min(keys)].fill(MASKED as f32);
        }
        Tensor::from_vec(m, (pads.len(), 1, 1, keys), &self.device)?.to_dtype(self.dtype)
    }

    /// Makes a frozen copy (same weights, no shared storage): a reference model for KL.
    pub fn frozen_copy(&self) -> Result<Gpt> {
        let copy = Self::build(&self.cfg, VarMap::new(), self.dtype, &self.device)?;
        let mine: std::collections::HashMap<String, candle_core::Var> =
            self.named_vars().into_iter().collect();
        for (name, var) in copy.named_vars() {
            var.set(&mine[&name].as_tensor().copy()?)?;
        }
        Ok(copy)
    }

    /// Loads weights from a safetensors file into this model; every name and shape must match.
    pub fn load_weights(&mut self, path: &std::path::Path) -> Result<()> {
        self.varmap.load(path)
    }

    /// The weights as one safetensors buffer, by parameter name: what another process needs, with
    /// the config, to build the same model ([`Gpt::from_weights`]).
    pub fn weights_bytes(&self) -> Result<Vec<u8>> {
        let vars = self.named_vars();
        let tensors = vars.iter().map(|(name, var)| (name.as_str(), var.as_tensor()));
        safetensors::serialize(tensors, None)
            .map_err(|e| candle_core::Error::Msg(format!("safetensors: {e}")))
    }

    /// A model of `cfg` holding the weights of [`Gpt::weights_bytes`]; every name and shape must
    /// match.
    pub fn from_weights(cfg: &ModelConfig, bytes: &[u8], dtype: DType, device: &Device) -> Result<Self> {
        let model = Self::empty(cfg, dtype, device)?;
        let loaded = candle_core::safetensors::load_buffer(bytes, device)?;
        let vars = model.named_vars();
        if loaded.len() != vars.len() {
            candle_core::bail!("{} tensors for a model of {} parameters", loaded.len(), vars.len());
        }
        for (name, var) in vars {
            let t = loaded.get(&name).ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}")))?;
            var.set(&t.to_dtype(dtype)?).map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))?;
        }
        Ok(model)
    }

    /// Builds an empty model of `cfg` for [`Gpt::load_weights`].
    pub fn empty(cfg: &ModelConfig, dtype: DType, device: &Device) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::Msg)?;
        Self::build(cfg, VarMap::new(), dtype, device)
    }

    /// The logits of the last position of `[B, T, V]` logits, as `[B, V]`.
    pub fn last_logits(logits: &Tensor) -> Result<Tensor> {
        let t = logits.dim(1)?;
        logits.narrow(1, t - 1, 1)?.squeeze(1)
    }
}

/// `n` draws from normal(0, std), Box–Muller over the seeded RNG.
fn rand_distr_normal(rng: &mut ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = rng.random();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
        })
        .collect()
}
