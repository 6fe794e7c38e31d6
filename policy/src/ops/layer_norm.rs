//! Layer normalization over the last dimension, one node each way.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType, D};
use num_traits::Float;

use super::cpu::*;

/// Layer normalization over the last dimension: `(x − mean) / sqrt(var + eps) · weight + bias`.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::layer_norm_slow(x, weight, bias, eps as f32);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNorm { eps })
}

struct LayerNorm {
    eps: f64,
}

fn ln_forward<T: Float>(x: &[T], w: &[T], b: &[T], d: usize, eps: f64) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    simd(
        #[inline(always)]
        || ln_forward_rows(x, w, b, &mut y, d, eps),
    );
    y
}

/// Layer normalization of each `d`-wide row of `x` into `y` (also the CPU decoder's).
#[inline(always)]
pub(crate) fn ln_forward_rows<T: Float>(x: &[T], w: &[T], b: &[T], y: &mut [T], d: usize, eps: f64) {
    let n = T::from(d).unwrap();
    let eps = T::from(eps).unwrap();
    for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
        let mean = xr.iter().fold(T::zero(), |a, &v| a + v) / n;
        let var = xr.iter().fold(T::zero(), |a, &v| a + (v - mean) * (v - mean)) / n;
        let rstd = (var + eps).sqrt().recip();
        for i in 0..d {
            yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
        }
    }
}

/// Gradients of layer norm: returns `(dx, dw, db)`.
fn ln_backward<T: Float>(x: &[T], w: &[T], gy: &[T], d: usize, eps: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    simd(
        #[inline(always)]
        || ln_backward_rows(x, w, gy, d, eps),
    )
}

#[inline(always)]
fn ln_backward_rows<T: Float>(x: &[T], w: &[T], gy: &[T], d: usize, eps: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
    let mut dx = vec![T::zero(); x.len()];
    let mut dw = vec![T::zero(); d];
    let mut db = vec![T::zero(); d];
    let n = T::from(d).unwrap();
    let eps = T::from(eps).unwrap();
    let mut xhat = vec![T::zero(); d];
    for ((xr, gr), dxr) in x.chunks_exact(d).zip(gy.chunks_exact(d)).zip(dx.chunks_exact_mut(d)) {
        let mean = xr.iter().fold(T::zero(), |a, &v| a + v) / n;
        let var = xr.iter().fold(T::zero(), |a, &v| a + (v - mean) * (v - mean)) / n;
        let rstd = (var + eps).sqrt().recip();
        let (mut mean_g, mut mean_gx) = (T::zero(), T::zero());
        for i in 0..d {
            xhat[i] = (xr[i] - mean) * rstd;
            let g = gr[i] * w[i];
            mean_g = mean_g + g;
            mean_gx = mean_gx + g * xhat[i];
            dw[i] = dw[i] + gr[i] * xhat[i];
            db[i] = db[i] + gr[i];
        }
        mean_g = mean_g / n;
        mean_gx = mean_gx / n;
        for i in 0..d {
            dxr[i] = rstd * (gr[i] * w[i] - mean_g - xhat[i] * mean_gx);
        }
    }
    (dx, dw, db)
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, _, _, d) = rows(lx)?;
        if lw.shape().elem_count() != d || lb.shape().elem_count() != d {
            candle_core::bail!("layer norm: weight and bias must have {d} elements");
        }
        let y = float_dtype!(sx.dtype(), "layer norm", |T| T::to_cpu_storage_owned(ln_forward(
            slice::<T>(sx, lx)?,
            slice(sw, lw)?,
            slice(sb, lb)?,
            d,
            self.eps,
        )));
        Ok((y, lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn typed<T: Float + candle_core::WithDType>(
            x: &Tensor,
            w: &Tensor,
            gy: &Tensor,
            eps: f64,
        ) -> Result<(Tensor, Tensor, Tensor)> {
            let d = x.dim(D::Minus1)?;
            let (dx, dw, db) = read([x, w, gy], |[x, w, gy]| ln_backward::<T>(x, w, gy, d, eps))?;
            let dev = x.device();
            Ok((
                Tensor::from_vec(dx, x.shape(), dev)?,
                Tensor::from_vec(dw, w.shape(), dev)?,
                Tensor::from_vec(db, w.shape(), dev)?,
            ))
        }
        let (dx, dw, db) =
            float_dtype!(x.dtype(), "layer norm backward", |T| typed::<T>(x, w, gy, self.eps)?);
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{assert_close, numeric_grad, randn};
    use candle_core::Var;

    #[test]
    fn layer_norm_gradients_match_finite_differences() -> Result<()> {
        let (x, w, b) = (randn(&[3, 4, 6], 1), randn(&[6], 2), randn(&[6], 3));
        let r = randn(&[3, 4, 6], 4); // a random linear read-out makes every output count
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| layer_norm(x, w, b, 1e-5)?.mul(&r)?.sum_all();
        let (xv, wv, bv) = (Var::from_tensor(&x)?, Var::from_tensor(&w)?, Var::from_tensor(&b)?);
        let grads = loss(xv.as_tensor(), wv.as_tensor(), bv.as_tensor())?.backward()?;
        let g = |v: &Var| -> Result<Vec<f64>> { grads.get(v.as_tensor()).unwrap().flatten_all()?.to_vec1() };
        let nx = numeric_grad(&x, &|x| loss(x, &w, &b)?.to_scalar())?;
        let nw = numeric_grad(&w, &|w| loss(&x, w, &b)?.to_scalar())?;
        let nb = numeric_grad(&b, &|b| loss(&x, &w, b)?.to_scalar())?;
        assert_close(&g(&xv)?, &nx, 1e-6, "dx");
        assert_close(&g(&wv)?, &nw, 1e-6, "dw");
        assert_close(&g(&bv)?, &nb, 1e-6, "db");
        // And the forward agrees with candle's differentiable composition.
        let slow = candle_nn::ops::layer_norm_slow(&x, &w, &b, 1e-5)?;
        let diff = (layer_norm(&x, &w, &b, 1e-5)? - slow)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(diff < 1e-6, "{diff}");
        Ok(())
    }
}
