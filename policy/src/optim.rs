//! AdamW with linear warmup and cosine decay, global-norm gradient clipping, and a guard that
//! keeps non-finite losses and gradients away from the weights.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Optimizer and schedule settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate, reached after warmup.
    pub lr: f64,
    /// Learning rate at the end of the cosine decay.
    pub min_lr: f64,
    pub warmup_steps: u64,
    /// Steps over which the cosine decays; the rate stays at `min_lr` after.
    pub decay_steps: u64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices (not to biases or layer-norm gains).
    pub weight_decay: f64,
    /// Gradients are scaled down to this global L2 norm when above it (0: no clipping).
    pub grad_clip: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            lr: 1e-3,
            min_lr: 1e-4,
            warmup_steps: 100,
            decay_steps: 10_000,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
        }
    }
}

impl OptimConfig {
    /// The learning rate at `step` (0-based): linear warmup to `lr`, then cosine to `min_lr`.
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let t = (step - self.warmup_steps) as f64 / self.decay_steps.max(1) as f64;
        if t >= 1.0 {
            return self.min_lr;
        }
        self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * t).cos())
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        let checks = [
            ("lr", self.lr > 0.0),
            ("min_lr", self.min_lr >= 0.0 && self.min_lr <= self.lr),
            ("beta1", (0.0..1.0).contains(&self.beta1)),
            ("beta2", (0.0..1.0).contains(&self.beta2)),
            ("eps", self.eps > 0.0),
            ("weight_decay", self.weight_decay >= 0.0),
            ("grad_clip", self.grad_clip >= 0.0),
        ];
        match checks.iter().find(|(_, ok)| !ok) {
            Some((name, _)) => Err(format!("{name} is out of range")),
            None => Ok(()),
        }
    }
}

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
    /// True when the loss or a gradient was not finite and the update was skipped.
    pub skipped: bool,
}

/// AdamW over a fixed, named set of parameters.
pub struct AdamW {
    cfg: OptimConfig,
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
    skipped: u64,
}

impl AdamW {
    /// An optimizer for `params` (named, in a stable order).
    pub fn new(params: Vec<(String, Var)>, cfg: OptimConfig) -> Result<Self> {
        let zeros = |p: &Var| p.zeros_like();
        let m = params.iter().map(|(_, p)| zeros(p)).collect::<Result<_>>()?;
        let v = params.iter().map(|(_, p)| zeros(p)).collect::<Result<_>>()?;
        Ok(AdamW { cfg, params, m, v, step: 0, skipped: 0 })
    }

    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// Updates taken so far (skipped ones excluded).
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Updates skipped for a non-finite loss or gradient.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Backpropagates `loss` and takes one step, unless the loss or the gradient norm is not
    /// finite: then nothing changes but the skip count.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<StepReport> {
        let grads = loss.backward()?;
        self.step_with(&grads, loss)
    }

    /// One step from computed gradients of the scalar `loss`, unless the loss or the gradient
    /// norm is not finite: then nothing changes but the skip count.
    pub fn step_with(&mut self, grads: &GradStore, loss: &Tensor) -> Result<StepReport> {
        Ok(self.step_with_stats(grads, loss, &[])?.0)
    }

    /// [`AdamW::step_with`], reading back `stats` (scalar tensors: what the caller wants to
    /// report of the step) together with the loss and the gradient norm.
    ///
    /// On a GPU a value read back waits for every kernel queued before it: the loss, the norm
    /// (which decides the clipping) and the statistics are read in one transfer, once per step.
    /// On the CPU the norm is the fused `f64` sum of squares.
    pub fn step_with_stats(
        &mut self,
        grads: &GradStore,
        loss: &Tensor,
        stats: &[Tensor],
    ) -> Result<(StepReport, Vec<f64>)> {
        let lr = self.cfg.lr_at(self.step);
        let gradients = || self.params.iter().filter_map(|(_, p)| grads.get(p.as_tensor()));
        let mut scalars = vec![loss.clone()];
        let on_cpu = loss.device().is_cpu();
        if !on_cpu {
            let mut sq = Tensor::zeros((), DType::F64, loss.device())?;
            for g in gradients() {
                sq = (sq + g.sqr()?.sum_all()?.to_dtype(DType::F64)?)?;
            }
            scalars.push(sq);
        }
        scalars.extend(stats.iter().cloned());
        let mut values = crate::device::read_scalars(&scalars)?;
        let loss = values.remove(0);
        let device_sq = if on_cpu { None } else { Some(values.remove(0)) };
        if !loss.is_finite() {
            self.skipped += 1;
            return Ok((StepReport { loss, grad_norm: f64::NAN, lr, skipped: true }, values));
        }
        let sq = match device_sq {
            Some(sq) => sq,
            None => gradients()
                .try_fold(0.0, |sq, g| Ok::<_, candle_core::Error>(sq + crate::ops::sum_of_squares(g)?))?,
        };
        let norm = sq.sqrt();
        if !norm.is_finite() {
            self.skipped += 1;
            return Ok((StepReport { loss, grad_norm: norm, lr, skipped: true }, values));
        }
        self.apply(grads, norm, lr)?;
        Ok((StepReport { loss, grad_norm: norm, lr, skipped: false }, values))
    }

    /// The AdamW update of every parameter with a gradient, clipped by the global `norm`.
    fn apply(&mut self, grads: &GradStore, norm: f64, lr: f64) -> Result<()> {
        let scale = if self.cfg.grad_clip > 0.0 && norm > self.cfg.grad_clip {
            self.cfg.grad_clip / norm
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for (i, (name, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p.as_tensor()) else { continue };
            let decays = p.rank() >= 2 && !name.contains("ln_");
            let step = crate::ops::AdamStep {
                scale,
                beta1: b1,
                beta2: b2,
                correction1: c1,
                correction2: c2,
                lr,
                eps: self.cfg.eps,
                decay: if decays { self.cfg.weight_decay } else { 0.0 },
            };
            let (next, m, v) = crate::ops::adam_step(p.as_tensor(), g, &self.m[i], &self.v[i], &step)?;
            self.m[i] = m;
            self.v[i] = v;
            p.set(&next)?;
        }
        Ok(())
    }

    /// The optimizer's state as named tensors (`m.NAME`, `v.NAME`) and its counters.
    pub fn state(&self) -> (HashMap<String, Tensor>, u64, u64) {
        let mut tensors = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            tensors.insert(format!("m.{name}"), self.m[i].clone());
            tensors.insert(format!("v.{name}"), self.v[i].clone());
        }
        (tensors, self.step, self.skipped)
    }

    /// Restores state written by [`AdamW::state`]; every tensor must be there with its shape.
    pub fn restore(&mut self, tensors: &HashMap<String, Tensor>, step: u64, skipped: u64) -> Result<()> {
        for (i, (name, p)) in self.params.iter().enumerate() {
            for (slot, key) in [(&mut self.m[i], format!("m.{name}")), (&mut self.v[i], format!("v.{name}"))]
            {
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| candle_core::Error::Msg(format!("optimizer state has no {key}")))?;
                if t.shape() != p.shape() {
                    candle_core::bail!(
                        "optimizer state {key} has shape {:?}, the parameter {:?}",
                        t.shape(),
                        p.shape()
                    );
                }
                *slot = t.to_dtype(p.dtype())?.to_device(p.device())?;
            }
        }
        self.step = step;
        self.skipped = skipped;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_warms_up_then_decays() {
        let c =
            OptimConfig { lr: 1.0, min_lr: 0.1, warmup_steps: 10, decay_steps: 100, ..Default::default() };
        assert!((c.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(9) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(10) - 1.0).abs() < 1e-12);
        assert!((c.lr_at(60) - 0.55).abs() < 1e-12);
        assert!((c.lr_at(110) - 0.1).abs() < 1e-12);
        assert!((c.lr_at(5000) - 0.1).abs() < 1e-12);
        let mut last = f64::INFINITY;
        for s in 10..200 {
            assert!(c.lr_at(s) <= last + 1e-15);
            last = c.lr_at(s);
        }
    }

    #[test]
    fn a_quadratic_goes_down_and_non_finite_steps_are_skipped() -> Result<()> {
        let x = Var::new(&[[3.0f32, -2.0], [1.0, 4.0]], &Device::Cpu)?;
        let cfg =
            OptimConfig { lr: 0.1, min_lr: 0.1, warmup_steps: 0, weight_decay: 0.0, ..Default::default() };
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], cfg)?;
        let first = opt.backward_step(&x.as_tensor().sqr()?.sum_all()?)?.loss;
        let mut last = first;
        for _ in 0..300 {
            last = opt.backward_step(&x.as_tensor().sqr()?.sum_all()?)?.loss;
        }
        // Adam at a constant rate circles the minimum at about the rate's scale.
        assert!(last < first * 1e-3, "{first} -> {last}");
        let before = x.as_tensor().to_vec2::<f32>()?;
        let r = opt.backward_step(&(x.as_tensor().sum_all()? * f64::NAN)?)?;
        assert!(r.skipped);
        let r = opt.backward_step(&(x.as_tensor().sum_all()? * f64::INFINITY)?)?;
        assert!(r.skipped);
        assert_eq!(opt.skipped(), 2);
        assert_eq!(x.as_tensor().to_vec2::<f32>()?, before, "skipped steps leave the weights alone");
        Ok(())
    }

    #[test]
    fn grad_norm_is_measured_before_clipping() -> Result<()> {
        let x = Var::new(&[0.0f32, 0.0], &Device::Cpu)?;
        let cfg = OptimConfig {
            lr: 1.0,
            min_lr: 1.0,
            warmup_steps: 0,
            weight_decay: 0.0,
            grad_clip: 1.0,
            ..Default::default()
        };
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], cfg)?;
        let r = opt.backward_step(&(x.as_tensor() * 100.0)?.sum_all()?)?;
        assert!((r.grad_norm - 100.0 * 2f64.sqrt()).abs() < 1e-3);
        Ok(())
    }
}
