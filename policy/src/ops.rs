//! Fused operations with hand-written backward passes.
//!
//! candle-nn's fast LayerNorm and softmax kernels have no backward pass: gradients silently stop
//! at them. Their differentiable compositions (`layer_norm_slow`, `ops::softmax`) are correct but
//! build a dozen graph nodes each. The ops here are one node each, with a forward and a backward
//! written out, on CPU for `f32` and `f64` (tests check the backward against finite differences in
//! `f64`). On any other device they fall back to the differentiable compositions.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use num_traits::Float;

/// Layer normalization over the last dimension: `(x − mean) / sqrt(var + eps) · weight + bias`.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::layer_norm_slow(x, weight, bias, eps as f32);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNorm { eps })
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return candle_nn::ops::softmax(x, D::Minus1);
    }
    x.contiguous()?.apply_op1(Softmax)
}

fn rows(layout: &Layout) -> Result<(usize, usize, usize, usize)> {
    let dims = layout.shape().dims();
    let d = *dims.last().ok_or_else(|| candle_core::Error::Msg("fused op on a scalar".into()))?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused op on a non-contiguous tensor".into()))?;
    Ok((start, end, (end - start) / d.max(1), d))
}

fn slice<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end, _, _) = rows(l)?;
    Ok(&s.as_slice::<T>()?[start..end])
}

// ---------------------------------------------------------------- layer norm

struct LayerNorm {
    eps: f64,
}

fn ln_forward<T: Float>(x: &[T], w: &[T], b: &[T], d: usize, eps: f64) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
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
    y
}

/// Gradients of layer norm: returns `(dx, dw, db)`.
fn ln_backward<T: Float>(x: &[T], w: &[T], gy: &[T], d: usize, eps: f64) -> (Vec<T>, Vec<T>, Vec<T>) {
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
        let y = match sx.dtype() {
            DType::F32 => CpuStorage::F32(ln_forward(
                slice::<f32>(sx, lx)?,
                slice(sw, lw)?,
                slice(sb, lb)?,
                d,
                self.eps,
            )),
            DType::F64 => CpuStorage::F64(ln_forward(
                slice::<f64>(sx, lx)?,
                slice(sw, lw)?,
                slice(sb, lb)?,
                d,
                self.eps,
            )),
            dt => candle_core::bail!("layer norm: unsupported dtype {dt:?}"),
        };
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
            let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<T>();
            let (dx, dw, db) = ln_backward::<T>(&flat(x)?, &flat(w)?, &flat(gy)?, d, eps);
            let dev = x.device();
            Ok((
                Tensor::from_vec(dx, x.shape(), dev)?,
                Tensor::from_vec(dw, w.shape(), dev)?,
                Tensor::from_vec(db, w.shape(), dev)?,
            ))
        }
        let (dx, dw, db) = match x.dtype() {
            DType::F32 => typed::<f32>(x, w, gy, self.eps)?,
            DType::F64 => typed::<f64>(x, w, gy, self.eps)?,
            dt => candle_core::bail!("layer norm backward: unsupported dtype {dt:?}"),
        };
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

// ---------------------------------------------------------------- softmax

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
        let y = match s.dtype() {
            DType::F32 => CpuStorage::F32(softmax_forward(slice::<f32>(s, l)?, d)),
            DType::F64 => CpuStorage::F64(softmax_forward(slice::<f64>(s, l)?, d)),
            dt => candle_core::bail!("softmax: unsupported dtype {dt:?}"),
        };
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        fn typed<T: Float + candle_core::WithDType>(y: &Tensor, gy: &Tensor) -> Result<Tensor> {
            let d = y.dim(D::Minus1)?;
            let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<T>();
            Tensor::from_vec(softmax_backward::<T>(&flat(y)?, &flat(gy)?, d), y.shape(), y.device())
        }
        let dx = match y.dtype() {
            DType::F32 => typed::<f32>(y, gy)?,
            DType::F64 => typed::<f64>(y, gy)?,
            dt => candle_core::bail!("softmax backward: unsupported dtype {dt:?}"),
        };
        Ok(Some(dx))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::{Device, Var};

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

    fn randn(shape: &[usize], seed: u64) -> Tensor {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..2.0)).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

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
}
