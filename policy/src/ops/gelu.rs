//! GELU (tanh form) with a vectorizable `tanh`, one node each way.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::*;

/// GELU, tanh form (GPT-2's): `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
///
/// candle's `gelu` has the same forward, but its backward builds a dozen graph nodes (two
/// `powf`, a `tanh`, scalar products, sums), each allocating a tensor of the MLP's width: the
/// largest activations of the model. Here it is one node each way, with a branch-free `tanh`
/// the compiler vectorizes.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return x.gelu();
    }
    x.contiguous()?.apply_op1(Gelu)
}

struct Gelu;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_A: f64 = 0.044_715;

/// GELU of one value (also the CPU decoder's).
#[inline(always)]
pub(crate) fn gelu_y<T: FastFloat>(x: T) -> T {
    let (c, a, half) = (T::from(SQRT_2_OVER_PI).unwrap(), T::from(GELU_A).unwrap(), T::from(0.5).unwrap());
    half * x * (T::one() + (c * x * (T::one() + a * x * x)).tanh_fast())
}

/// `dy/dx = ½(1 + t) + ½x(1 − t²) · c(1 + 3a·x²)`, `t = tanh(c(x + a·x³))`.
#[inline(always)]
fn gelu_dy<T: FastFloat>(x: T) -> T {
    let (c, a, half) = (T::from(SQRT_2_OVER_PI).unwrap(), T::from(GELU_A).unwrap(), T::from(0.5).unwrap());
    let three = T::from(3.0).unwrap();
    let t = (c * x * (T::one() + a * x * x)).tanh_fast();
    half * (T::one() + t) + half * x * (T::one() - t * t) * c * (T::one() + three * a * x * x)
}

fn gelu_forward<T: FastFloat>(x: &[T]) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    map_into(x, &[], &mut y, |x, _| gelu_y(x));
    y
}

fn gelu_backward<T: FastFloat>(x: &[T], gy: &[T]) -> Vec<T> {
    let mut dx = vec![T::zero(); x.len()];
    map_into(x, gy, &mut dx, |x, g| g * gelu_dy(x));
    dx
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = float_dtype!(s.dtype(), "gelu", |T| T::to_cpu_storage_owned(gelu_forward(slice::<T>(s, l)?)));
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        fn typed<T: FastFloat + candle_core::WithDType>(x: &Tensor, gy: &Tensor) -> Result<Tensor> {
            Tensor::from_vec(read([x, gy], |[x, gy]| gelu_backward::<T>(x, gy))?, x.shape(), x.device())
        }
        let dx = float_dtype!(x.dtype(), "gelu backward", |T| typed::<T>(x, gy)?);
        Ok(Some(dx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{assert_close, numeric_grad, randn};
    use candle_core::{Device, Var};

    #[test]
    fn gelu_gradients_match_finite_differences() -> Result<()> {
        let x = (randn(&[3, 5, 8], 9) * 2.0)?;
        let r = randn(&[3, 5, 8], 10);
        let loss = |x: &Tensor| gelu(x)?.mul(&r)?.sum_all();
        let xv = Var::from_tensor(&x)?;
        let grads = loss(xv.as_tensor())?.backward()?;
        let analytic: Vec<f64> = grads.get(xv.as_tensor()).unwrap().flatten_all()?.to_vec1()?;
        let numeric = numeric_grad(&x, &|x| loss(x)?.to_scalar())?;
        assert_close(&analytic, &numeric, 1e-6, "gelu dx");
        let diff = (gelu(&x)? - x.gelu()?)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(diff < 1e-12, "{diff}");
        Ok(())
    }

    #[test]
    fn fast_f32_gelu_agrees_with_candles_and_f64() -> Result<()> {
        // Over the range activations take and beyond, in f32: the fast tanh against libm's,
        // forward and gradient, and both parallel chunks and the single-threaded tail.
        let n = 3 * CHUNK + 17;
        let v: Vec<f32> = (0..n).map(|i| -12.0 + 24.0 * i as f32 / n as f32).collect();
        let x = Tensor::from_vec(v.clone(), n, &Device::Cpu)?;
        let ours: Vec<f32> = gelu(&x)?.to_vec1()?;
        let candle: Vec<f32> = x.gelu()?.to_vec1()?;
        for ((a, b), x) in ours.iter().zip(&candle).zip(&v) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "gelu({x}): {a} vs candle {b}");
        }
        let exact = |x: f64| gelu_dy::<f64>(x);
        let xv = Var::from_tensor(&x)?;
        let grads = gelu(xv.as_tensor())?.sum_all()?.backward()?;
        let dx: Vec<f32> = grads.get(xv.as_tensor()).unwrap().to_vec1()?;
        for (d, x) in dx.iter().zip(&v) {
            let e = exact(f64::from(*x));
            // `1 + t` for t near −1 keeps f32's absolute precision, about 1e-6 of 1.
            assert!((f64::from(*d) - e).abs() <= 2e-6 * e.abs().max(1.0), "gelu'({x}): {d} vs {e}");
        }
        for u in [-100.0f32, -20.0, -1.0, -1e-3, -1e-30, 0.0, 1e-30, 1e-3, 0.5, 3.0, 100.0] {
            // Absolute error, a few ulp of 1: GELU and its gradient use `1 + t` and `1 − t²`.
            let (a, b) = (tanh_f32(u), u.tanh());
            assert!((a - b).abs() <= 3e-7, "tanh({u}): {a} vs {b}");
        }
        Ok(())
    }
}
