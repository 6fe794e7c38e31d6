//! Softmax over the last dimension, plain and (for attention weights) scaled and masked.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType, D};
use num_traits::Float;

use super::cpu::*;

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::softmax(x, D::Minus1);
    }
    x.contiguous()?.apply_op1(Softmax)
}

struct Softmax;

fn softmax_forward<T: Float>(x: &[T], d: usize) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        let max = xr.iter().fold(T::neg_infinity(), |a, &v| a.max(v));
        let mut sum = T::zero();
        for i in 0..d {
            // A row of -inf only (a fully masked row) gives zeros, not NaN.
            let e = if max == T::neg_infinity() { T::zero() } else { (xr[i] - max).exp() };
            yr[i] = e;
            sum = sum + e;
        }
        if sum > T::zero() {
            let inv = sum.recip();
            yr.iter_mut().for_each(|v| *v = *v * inv);
        }
    }
    y
}

/// `dx = y ⊙ (dy − Σ dy ⊙ y)` row by row.
fn softmax_backward<T: Float>(y: &[T], gy: &[T], d: usize) -> Vec<T> {
    let mut dx = vec![T::zero(); y.len()];
    for ((yr, gr), dxr) in y.chunks_exact(d).zip(gy.chunks_exact(d)).zip(dx.chunks_exact_mut(d)) {
        let dot = yr.iter().zip(gr).fold(T::zero(), |a, (&y, &g)| a + y * g);
        for i in 0..d {
            dxr[i] = yr[i] * (gr[i] - dot);
        }
    }
    dx
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, _, _, d) = rows(l)?;
        let y = float_dtype!(s.dtype(), "softmax", |T| T::to_cpu_storage_owned(softmax_forward(
            slice::<T>(s, l)?,
            d
        )));
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        fn typed<T: Float + candle_core::WithDType>(y: &Tensor, gy: &Tensor) -> Result<Tensor> {
            let d = y.dim(D::Minus1)?;
            Tensor::from_vec(read([y, gy], |[y, gy]| softmax_backward::<T>(y, gy, d))?, y.shape(), y.device())
        }
        let dx = float_dtype!(y.dtype(), "softmax backward", |T| typed::<T>(y, gy)?);
        Ok(Some(dx))
    }
}

/// `softmax(scale · scores + mask)` over the last dimension: attention weights from raw scores
/// `[B, H, T, K]` and an additive mask `[B|1, 1, T, K]` (no gradient flows to the mask).
///
/// One node where the composition is three (a scalar product, a broadcast add whose backward
/// also fills a gradient for the mask, the softmax), each the size of the attention matrix.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, _, t, k) = scores.dims4()?;
    let (mb, mh, mt, mk) = mask.dims4()?;
    if !(mb == 1 || mb == b) || mh != 1 || mt != t || mk != k {
        candle_core::bail!("masked softmax: mask {:?} does not fit scores {:?}", mask.dims(), scores.dims());
    }
    let mask = mask.to_dtype(scores.dtype())?.detach();
    if !scores.device().is_cpu() {
        return candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(&mask)?, D::Minus1);
    }
    scores.contiguous()?.apply_op2(&mask.contiguous()?, MaskedSoftmax { scale })
}

struct MaskedSoftmax {
    scale: f64,
}

fn masked_softmax_forward<T: Float>(
    x: &[T],
    mask: &[T],
    heads: usize,
    t: usize,
    k: usize,
    scale: f64,
) -> Vec<T> {
    let scale = T::from(scale).unwrap();
    let mut z = vec![T::zero(); x.len()];
    let per_batch = heads * t * k;
    for (i, (xr, zr)) in x.chunks_exact(k).zip(z.chunks_exact_mut(k)).enumerate() {
        let (batch, row) = (i * k / per_batch, i % t);
        let m = if mask.len() == t * k {
            &mask[row * k..(row + 1) * k]
        } else {
            let at = (batch * t + row) * k;
            &mask[at..at + k]
        };
        zr.iter_mut().zip(xr).zip(m).for_each(|((z, &x), &m)| *z = x * scale + m);
    }
    softmax_forward(&z, k)
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "fused-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sm: &CpuStorage,
        lm: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = lx.shape().dims();
        let (heads, t, k) = (dims[1], dims[2], dims[3]);
        let y = float_dtype!(sx.dtype(), "masked softmax", |T| T::to_cpu_storage_owned(
            masked_softmax_forward(slice::<T>(sx, lx)?, slice(sm, lm)?, heads, t, k, self.scale)
        ));
        Ok((y, lx.shape().clone()))
    }

    /// `d scores = scale · y ⊙ (g − Σ g ⊙ y)`; none for the mask.
    fn bwd(
        &self,
        _x: &Tensor,
        _mask: &Tensor,
        y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        fn typed<T: Float + candle_core::WithDType>(y: &Tensor, gy: &Tensor, scale: f64) -> Result<Tensor> {
            let d = y.dim(D::Minus1)?;
            let scale = T::from(scale).unwrap();
            let dx: Vec<T> = read([y, gy], |[y, gy]| softmax_backward::<T>(y, gy, d))?
                .into_iter()
                .map(|v| v * scale)
                .collect();
            Tensor::from_vec(dx, y.shape(), y.device())
        }
        let dx = float_dtype!(y.dtype(), "masked softmax backward", |T| typed::<T>(y, gy, self.scale)?);
        Ok((Some(dx), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{assert_close, numeric_grad, randn};
    use candle_core::{Device, Var};

    #[test]
    fn softmax_gradients_match_finite_differences() -> Result<()> {
        let x = randn(&[2, 3, 5], 5);
        let r = randn(&[2, 3, 5], 6);
        let loss = |x: &Tensor| softmax_last_dim(x)?.mul(&r)?.sum_all();
        let xv = Var::from_tensor(&x)?;
        let grads = loss(xv.as_tensor())?.backward()?;
        let analytic: Vec<f64> = grads.get(xv.as_tensor()).unwrap().flatten_all()?.to_vec1()?;
        let numeric = numeric_grad(&x, &|x| loss(x)?.to_scalar())?;
        assert_close(&analytic, &numeric, 1e-6, "softmax dx");
        let reference = candle_nn::ops::softmax(&x, D::Minus1)?;
        let diff = (softmax_last_dim(&x)? - reference)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(diff < 1e-12, "{diff}");
        Ok(())
    }

    #[test]
    fn f32_agrees_with_f64_and_masked_rows_are_finite() -> Result<()> {
        let x = randn(&[4, 7], 8);
        let y64: Vec<f64> = softmax_last_dim(&x)?.flatten_all()?.to_vec1()?;
        let y32: Vec<f32> = softmax_last_dim(&x.to_dtype(DType::F32)?)?.flatten_all()?.to_vec1()?;
        for (a, b) in y64.iter().zip(&y32) {
            assert!((a - f64::from(*b)).abs() < 1e-6);
        }
        let masked =
            Tensor::new(&[[f32::NEG_INFINITY, f32::NEG_INFINITY], [0.0, f32::NEG_INFINITY]], &Device::Cpu)?;
        assert_eq!(softmax_last_dim(&masked)?.to_vec2::<f32>()?, vec![vec![0.0, 0.0], vec![1.0, 0.0]]);
        Ok(())
    }

    #[test]
    fn masked_softmax_gradients_match_finite_differences() -> Result<()> {
        // A mask per sequence (left padding) and one shared by the batch (causal).
        let scores = randn(&[2, 3, 4, 4], 16);
        let r = randn(&[2, 3, 4, 4], 17);
        let causal = Tensor::from_vec(
            (0..16).map(|i| if i % 4 > i / 4 { -1e9 } else { 0.0 }).collect::<Vec<f64>>(),
            (1, 1, 4, 4),
            &Device::Cpu,
        )?;
        let padded = Tensor::cat(&[&causal, &(causal.clone() + randn(&[1, 1, 4, 4], 18))?], 0)?;
        for mask in [causal, padded] {
            let loss = |x: &Tensor| masked_softmax(x, &mask, 0.7)?.mul(&r)?.sum_all();
            let xv = Var::from_tensor(&scores)?;
            let grads = loss(xv.as_tensor())?.backward()?;
            let analytic: Vec<f64> = grads.get(xv.as_tensor()).unwrap().flatten_all()?.to_vec1()?;
            let numeric = numeric_grad(&scores, &|x| loss(x)?.to_scalar())?;
            assert_close(&analytic, &numeric, 1e-6, "masked softmax dx");
            let reference = candle_nn::ops::softmax(&(&scores * 0.7)?.broadcast_add(&mask)?, D::Minus1)?;
            let diff =
                (masked_softmax(&scores, &mask, 0.7)? - reference)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-12, "{diff}");
        }
        let wrong = Tensor::zeros((1, 1, 4, 3), DType::F64, &Device::Cpu)?;
        assert!(masked_softmax(&scores, &wrong, 1.0).unwrap_err().to_string().contains("does not fit"));
        Ok(())
    }
}
