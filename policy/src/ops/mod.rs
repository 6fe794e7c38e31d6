//! Fused operations with hand-written backward passes: the policy's fast path on CPU.
//!
//! candle-nn's fast LayerNorm and softmax kernels have no backward pass: gradients silently stop
//! at them. Their differentiable compositions (`layer_norm_slow`, `ops::softmax`) are correct but
//! build a dozen graph nodes each, and every node allocates, zero-fills its gradient and adds
//! into it. The ops here are one node each, with a forward and a backward written out, on CPU for
//! `f32` and `f64`: layer norm, softmax (plain, and scaled and masked for attention), GELU, the
//! linear layer, causal self-attention (training and scoring), attention for sampling (forward
//! only), and the AdamW update. Tests check each backward against finite differences in `f64` and
//! each forward against the composition it replaces. On any other device they fall back to the
//! differentiable compositions. Their loops run compiled for the CPU's widest vectors (`simd`).
//! Figures: `bench/NOTES.md`.
//!
//! One module a kernel: `layer_norm`, `softmax` (with the masked softmax of attention weights),
//! `linear` (and the bias add), `causal_attention` (training), `attention` (sampling), `adam`,
//! `gelu`; `cpu` holds what their loops share.

/// `$body` with `$t` the element type of `$dtype` (`f32` or `f64`); any other dtype is an error
/// naming `$what`. Every fused op's forward and backward pass dispatches through it.
macro_rules! float_dtype {
    ($dtype:expr, $what:expr, |$t:ident| $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::F64 => {
                type $t = f64;
                $body
            }
            dt => candle_core::bail!("{}: unsupported dtype {dt:?}", $what),
        }
    };
}

pub mod adam;
pub mod attention;
pub mod causal_attention;
mod cpu;
pub mod gelu;
pub mod layer_norm;
pub mod linear;
pub mod softmax;

pub use adam::{adam_step, sum_of_squares, AdamStep};
pub use attention::attention;
pub use causal_attention::{causal_attention, causal_attention_by_composition};
/// What the CPU decoder shares with the fused ops: `exp`, dot products, GELU and layer norm.
pub(crate) use cpu::{dot, exp_f32};
pub use gelu::gelu;
pub(crate) use gelu::gelu_y;
pub use layer_norm::layer_norm;
pub(crate) use layer_norm::ln_forward_rows;
pub use linear::{add_bias, linear, linear_t};
pub use softmax::{masked_softmax, softmax_last_dim};

#[cfg(test)]
pub(crate) mod tests {
    use candle_core::{Device, Result, Tensor};

    /// Central finite differences of a scalar function of one tensor, in f64.
    pub fn numeric_grad(x: &Tensor, f: &dyn Fn(&Tensor) -> Result<f64>) -> Result<Vec<f64>> {
        let base: Vec<f64> = x.flatten_all()?.to_vec1()?;
        let h = 1e-6;
        (0..base.len())
            .map(|i| {
                let at = |delta: f64| -> Result<f64> {
                    let mut v = base.clone();
                    v[i] += delta;
                    f(&Tensor::from_vec(v, x.shape(), x.device())?)
                };
                Ok((at(h)? - at(-h)?) / (2.0 * h))
            })
            .collect()
    }

    pub fn assert_close(analytic: &[f64], numeric: &[f64], tol: f64, what: &str) {
        assert_eq!(analytic.len(), numeric.len());
        for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
            let scale = a.abs().max(n.abs()).max(1.0);
            assert!((a - n).abs() <= tol * scale, "{what}[{i}]: analytic {a} vs numeric {n}");
        }
    }

    pub fn randn(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }
}
