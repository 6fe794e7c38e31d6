//! The AdamW update of one parameter in one pass, and the sum of squares the clipping reads.

use candle_core::{DType, Result, Tensor};
use num_traits::Float;

use super::cpu::*;

/// One AdamW step's constants: the gradient's clipping `scale`, the moments' decay rates and
/// bias corrections (`1 − βᵗ`), the learning rate, `eps`, and the weight decay (0 where none).
pub struct AdamStep {
    pub scale: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub correction1: f64,
    pub correction2: f64,
    pub lr: f64,
    pub eps: f64,
    pub decay: f64,
}

/// `Σ x²` in f64, in eight independent partial sums (vectorizable, like [`dot`]).
#[inline(always)]
fn squares<T: Copy>(xs: &[T], wide: impl Fn(T) -> f64) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(0.0, |s, &x| s + wide(x) * wide(x));
    for c in chunks {
        for l in 0..8 {
            acc[l] += wide(c[l]) * wide(c[l]);
        }
    }
    acc.iter().fold(tail, |s, &a| s + a)
}

/// `Σ g²` of a tensor, in f64.
pub fn sum_of_squares(g: &Tensor) -> Result<f64> {
    if !g.device().is_cpu() {
        return g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>();
    }
    float_dtype!(g.dtype(), "sum of squares", |T| read::<T, _, 1>([g], |[g]| {
        simd(
            #[inline(always)]
            || squares(g, f64::from),
        )
    }))
}

/// One AdamW update of parameter `p` with gradient `g` and moments `m`, `v`: returns the new
/// parameter and moments. `g ← scale·g`, `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p·(1 − lr·decay) − lr · (m/c₁) / (√(v/c₂) + eps)`. One pass over the four tensors
/// where the composition of candle ops takes a dozen, each allocating.
pub fn adam_step(
    p: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    s: &AdamStep,
) -> Result<(Tensor, Tensor, Tensor)> {
    if !p.device().is_cpu() {
        let g = (g * s.scale)?;
        let m = ((m * s.beta1)? + (&g * (1.0 - s.beta1))?)?;
        let v = ((v * s.beta2)? + (g.sqr()? * (1.0 - s.beta2))?)?;
        let update = ((&m / s.correction1)? / ((&v / s.correction2)?.sqrt()? + s.eps)?)?;
        let next = ((p * (1.0 - s.lr * s.decay))? - (update * s.lr)?)?;
        return Ok((next.detach(), m, v));
    }
    fn typed<T: Float + candle_core::WithDType>(
        p: &Tensor,
        g: &Tensor,
        m: &Tensor,
        v: &Tensor,
        s: &AdamStep,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let c = |x: f64| T::from(x).unwrap();
        let (scale, b1, b2, nb1, nb2) =
            (c(s.scale), c(s.beta1), c(s.beta2), c(1.0 - s.beta1), c(1.0 - s.beta2));
        let (c1, c2, eps, lr, keep) =
            (c(s.correction1), c(s.correction2), c(s.eps), c(s.lr), c(1.0 - s.lr * s.decay));
        let (next, m, v) = read::<T, _, 4>([p, g, m, v], |[p, g, m, v]| {
            use rayon::prelude::*;
            let n = p.len();
            let (mut next, mut m2, mut v2) = (vec![T::zero(); n], vec![T::zero(); n], vec![T::zero(); n]);
            next.par_chunks_mut(CHUNK)
                .zip(m2.par_chunks_mut(CHUNK))
                .zip(v2.par_chunks_mut(CHUNK))
                .enumerate()
                .for_each(|(k, ((next, m2), v2))| {
                    let r = k * CHUNK..k * CHUNK + next.len();
                    simd(
                        #[inline(always)]
                        || {
                            let inputs = p[r.clone()].iter().zip(&g[r.clone()]).zip(&m[r.clone()]).zip(&v[r]);
                            let outputs = next.iter_mut().zip(m2.iter_mut()).zip(v2.iter_mut());
                            for ((((&p, &g), &m), &v), ((next, m2), v2)) in inputs.zip(outputs) {
                                let g = g * scale;
                                let mi = m * b1 + g * nb1;
                                let vi = v * b2 + g * g * nb2;
                                *next = p * keep - lr * ((mi / c1) / ((vi / c2).sqrt() + eps));
                                *m2 = mi;
                                *v2 = vi;
                            }
                        },
                    )
                });
            (next, m2, v2)
        })?;
        let (shape, dev) = (p.shape(), p.device());
        Ok((
            Tensor::from_vec(next, shape, dev)?,
            Tensor::from_vec(m, shape, dev)?,
            Tensor::from_vec(v, shape, dev)?,
        ))
    }
    float_dtype!(p.dtype(), "adam step", |T| typed::<T>(p, g, m, v, s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::randn;

    #[test]
    fn adam_step_agrees_with_the_composition() -> Result<()> {
        let (p, g, m) = (randn(&[3, 5], 40), randn(&[3, 5], 41), randn(&[3, 5], 42));
        let v = randn(&[3, 5], 43).abs()?;
        let s = AdamStep {
            scale: 0.7,
            beta1: 0.9,
            beta2: 0.95,
            correction1: 0.19,
            correction2: 0.0975,
            lr: 1e-2,
            eps: 1e-8,
            decay: 0.1,
        };
        let (next, m2, v2) = adam_step(&p, &g, &m, &v, &s)?;
        let gs = (&g * s.scale)?;
        let em = ((&m * s.beta1)? + (&gs * (1.0 - s.beta1))?)?;
        let ev = ((&v * s.beta2)? + (gs.sqr()? * (1.0 - s.beta2))?)?;
        let update = ((&em / s.correction1)? / ((&ev / s.correction2)?.sqrt()? + s.eps)?)?;
        let enext = ((&p * (1.0 - s.lr * s.decay))? - (update * s.lr)?)?;
        for (a, b, what) in [(next, enext, "p"), (m2, em, "m"), (v2, ev, "v")] {
            let diff = (a - b)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-15, "{what}: {diff}");
        }
        let sq = sum_of_squares(&g.to_dtype(DType::F32)?)?;
        let expected = g.sqr()?.sum_all()?.to_scalar::<f64>()?;
        assert!((sq - expected).abs() < 1e-5 * expected, "{sq} vs {expected}");
        Ok(())
    }
}
