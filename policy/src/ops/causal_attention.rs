//! Causal multi-head self-attention for training: one node from the fused projection to the
//! heads' outputs, its backward recomputing the attention weights.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType, D};
use num_traits::Float;

use super::cpu::*;

/// Causal multi-head self-attention from the fused projection `qkv` `[B, T, 3·d]` (queries, keys,
/// values, each `heads` blocks of `d/heads`) to `y` `[B, T, d]`, heads side by side, positions
/// `0..T` of every sequence; with `rope` (`cos` and `sin` `[T, dh/2]`), queries and keys are
/// rotated first as [`crate::model`] does.
///
/// The composition is a dozen graph nodes — head split and copies, rotations, two batched
/// matrix products of `B·H` small products each, the softmax, the transpose back — each
/// allocating and most with a zero-filled gradient in the backward pass. Here it is one node:
/// each (sequence, head) is computed in cache, the heads in parallel; the backward recomputes
/// the attention weights from `qkv` instead of storing them.
pub fn causal_attention(qkv: &Tensor, heads: usize, rope: Option<(&Tensor, &Tensor)>) -> Result<Tensor> {
    let (_, t, c3) = qkv.dims3()?;
    if c3 % (3 * heads) != 0 {
        candle_core::bail!("causal attention: width {c3} is not 3 × heads {heads} × head width");
    }
    let dh = c3 / 3 / heads;
    if let Some((cos, sin)) = rope {
        if cos.dims() != [t, dh / 2] || sin.dims() != [t, dh / 2] || !dh.is_multiple_of(2) {
            candle_core::bail!(
                "causal attention: rotary tables {:?} do not fit {t} positions of width {dh}",
                cos.dims()
            );
        }
    }
    // The fused op is CPU code: elsewhere the composition, whose every node has a backward there.
    if !qkv.device().is_cpu() {
        return causal_attention_by_composition(qkv, heads, rope);
    }
    let rope = match rope {
        Some((cos, sin)) => {
            let v = |x: &Tensor| x.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>();
            Some((v(cos)?, v(sin)?))
        }
        None => None,
    };
    qkv.contiguous()?.apply_op1(CausalAttention { heads, rope })
}

/// What [`causal_attention`] computes, as a composition of candle's differentiable ops: split,
/// rotate, scaled causal softmax, weighted values, heads side by side. The fused op's path on any
/// device but the CPU, and the reference its tests compare it with.
pub fn causal_attention_by_composition(
    qkv: &Tensor,
    heads: usize,
    rope: Option<(&Tensor, &Tensor)>,
) -> Result<Tensor> {
    let (b, t, c3) = qkv.dims3()?;
    let (d, dh) = (c3 / 3, c3 / 3 / heads);
    let qkv = qkv.reshape((b, t, 3, heads, dh))?.permute((2, 0, 3, 1, 4))?;
    let (mut q, mut k, v) = (qkv.get(0)?.contiguous()?, qkv.get(1)?.contiguous()?, qkv.get(2)?.contiguous()?);
    if let Some((cos, sin)) = rope {
        let rotate = |x: &Tensor| -> Result<Tensor> {
            let half = dh / 2;
            let (x1, x2) = (x.narrow(3, 0, half)?, x.narrow(3, half, half)?);
            let r1 = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
            let r2 = (x2.broadcast_mul(cos)? + x1.broadcast_mul(sin)?)?;
            Tensor::cat(&[&r1, &r2], 3)
        };
        q = rotate(&q)?;
        k = rotate(&k)?;
    }
    let m: Vec<f32> = (0..t * t).map(|i| if i % t > i / t { f32::NEG_INFINITY } else { 0.0 }).collect();
    let mask = Tensor::from_vec(m, (1, 1, t, t), qkv.device())?.to_dtype(qkv.dtype())?;
    let scale = 1.0 / (dh as f64).sqrt();
    let att = candle_nn::ops::softmax(&(q.matmul(&k.t()?)? * scale)?.broadcast_add(&mask)?, D::Minus1)?;
    att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))
}

struct CausalAttention {
    heads: usize,
    /// `cos` and `sin` of positions `0..T`, `[T, dh/2]` row-major.
    rope: Option<(Vec<f64>, Vec<f64>)>,
}

/// One (sequence, head): its queries, keys and values `[T, dh]`, rotated.
struct Head<T> {
    q: Vec<T>,
    k: Vec<T>,
    v: Vec<T>,
}

impl CausalAttention {
    fn dims(&self, l: &Layout) -> (usize, usize, usize, usize) {
        let d = l.shape().dims();
        (d[0], d[1], d[2] / 3, d[2] / 3 / self.heads)
    }

    /// Rotates `x` `[T, dh]` in place by each row's angles (`sign` −1: the inverse rotation,
    /// which is the backward pass of the rotation).
    #[inline(always)]
    fn rotate<T: Float>(&self, x: &mut [T], dh: usize, sign: f64) {
        let Some((cos, sin)) = &self.rope else { return };
        let half = dh / 2;
        for (row, xr) in x.chunks_exact_mut(dh).enumerate() {
            for i in 0..half {
                let (c, s) =
                    (T::from(cos[row * half + i]).unwrap(), T::from(sign * sin[row * half + i]).unwrap());
                let (a, b) = (xr[i], xr[i + half]);
                xr[i] = a * c - b * s;
                xr[i + half] = b * c + a * s;
            }
        }
    }

    #[inline(always)]
    fn head<T: Float>(&self, qkv: &[T], bh: usize, t: usize, d: usize, dh: usize) -> Head<T> {
        let (b, h) = (bh / self.heads, bh % self.heads);
        let part = |which: usize| -> Vec<T> {
            let mut out = Vec::with_capacity(t * dh);
            for i in 0..t {
                let at = (b * t + i) * 3 * d + which * d + h * dh;
                out.extend_from_slice(&qkv[at..at + dh]);
            }
            out
        };
        let (mut q, mut k) = (part(0), part(1));
        self.rotate(&mut q, dh, 1.0);
        self.rotate(&mut k, dh, 1.0);
        Head { q, k, v: part(2) }
    }

    /// The attention weights `P` `[T, T]` of one head: `softmax(scale · q·kᵀ)` over keys `0..=i`
    /// in row `i`, zero beyond.
    #[inline(always)]
    fn weights<T: FastFloat + 'static>(head: &Head<T>, t: usize, dh: usize, scale: T) -> Vec<T> {
        let mut p = vec![T::zero(); t * t];
        small_matmul(&mut p, &head.q, &head.k, (t, t, dh), (false, true));
        for (i, row) in p.chunks_exact_mut(t).enumerate() {
            let max = row[..=i].iter().fold(T::neg_infinity(), |m, &s| m.max(s));
            let mut sum = T::zero();
            for s in row[..=i].iter_mut() {
                *s = ((*s - max) * scale).exp_fast();
                sum = sum + *s;
            }
            let inv = sum.recip();
            row[..=i].iter_mut().for_each(|s| *s = *s * inv);
            row[i + 1..].iter_mut().for_each(|s| *s = T::zero());
        }
        p
    }

    fn forward<T: FastFloat + 'static>(&self, qkv: &[T], l: &Layout) -> Vec<T> {
        use rayon::prelude::*;
        let (b, t, d, dh) = self.dims(l);
        let scale = T::from(1.0 / (dh as f64).sqrt()).unwrap();
        let heads: Vec<Vec<T>> = (0..b * self.heads)
            .into_par_iter()
            .map(|bh| {
                simd(
                    #[inline(always)]
                    || {
                        let head = self.head(qkv, bh, t, d, dh);
                        let p = Self::weights(&head, t, dh, scale);
                        let mut y = vec![T::zero(); t * dh];
                        small_matmul(&mut y, &p, &head.v, (t, dh, t), (false, false));
                        y
                    },
                )
            })
            .collect();
        let mut y = vec![T::zero(); b * t * d];
        for (bh, yh) in heads.iter().enumerate() {
            let (bi, h) = (bh / self.heads, bh % self.heads);
            for (i, row) in yh.chunks_exact(dh).enumerate() {
                let at = (bi * t + i) * d + h * dh;
                y[at..at + dh].copy_from_slice(row);
            }
        }
        y
    }

    /// `dqkv` from `dy`: with `P` recomputed, `dV = Pᵀ·dY`, `dP = dY·Vᵀ`,
    /// `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, `dQ = scale·dS·K`, `dK = scale·dSᵀ·Q`, then the
    /// rotations undone.
    fn backward<T: FastFloat + 'static>(&self, qkv: &[T], gy: &[T], l: &Layout) -> Vec<T> {
        use rayon::prelude::*;
        let (b, t, d, dh) = self.dims(l);
        let scale = T::from(1.0 / (dh as f64).sqrt()).unwrap();
        let grads: Vec<Head<T>> = (0..b * self.heads)
            .into_par_iter()
            .map(|bh| {
                simd(
                    #[inline(always)]
                    || {
                        let head = self.head(qkv, bh, t, d, dh);
                        let (bi, h) = (bh / self.heads, bh % self.heads);
                        let mut gyh = Vec::with_capacity(t * dh);
                        for i in 0..t {
                            let at = (bi * t + i) * d + h * dh;
                            gyh.extend_from_slice(&gy[at..at + dh]);
                        }
                        let p = Self::weights(&head, t, dh, scale);
                        let zeros = || vec![T::zero(); t * dh];
                        let mut g = Head { q: zeros(), k: zeros(), v: zeros() };
                        small_matmul(&mut g.v, &p, &gyh, (t, dh, t), (true, false));
                        let mut ds = vec![T::zero(); t * t];
                        small_matmul(&mut ds, &gyh, &head.v, (t, t, dh), (false, true));
                        for (pr, dr) in p.chunks_exact(t).zip(ds.chunks_exact_mut(t)) {
                            let row = pr.iter().zip(dr.iter()).fold(T::zero(), |a, (&p, &d)| a + p * d);
                            dr.iter_mut().zip(pr).for_each(|(d, &p)| *d = p * (*d - row) * scale);
                        }
                        small_matmul(&mut g.q, &ds, &head.k, (t, dh, t), (false, false));
                        small_matmul(&mut g.k, &ds, &head.q, (t, dh, t), (true, false));
                        self.rotate(&mut g.q, dh, -1.0);
                        self.rotate(&mut g.k, dh, -1.0);
                        g
                    },
                )
            })
            .collect();
        let mut dqkv = vec![T::zero(); b * t * 3 * d];
        for (bh, g) in grads.iter().enumerate() {
            let (bi, h) = (bh / self.heads, bh % self.heads);
            for (which, part) in [&g.q, &g.k, &g.v].into_iter().enumerate() {
                for (i, row) in part.chunks_exact(dh).enumerate() {
                    let at = (bi * t + i) * 3 * d + which * d + h * dh;
                    dqkv[at..at + dh].copy_from_slice(row);
                }
            }
        }
        dqkv
    }
}

/// `c = a · b` for small row-major matrices, `(m, n, k)` the shape (`a` `[m, k]`, `b` `[k, n]`,
/// `c` `[m, n]`), on this thread (f32 and f64: what gemm multiplies); `transposed.0`: `a` is stored as its transpose `[k, m]`,
/// `transposed.1`: `b` as `[n, k]`. One head's attention products: the heads already run in
/// parallel.
#[inline(always)]
fn small_matmul<T: Float + 'static>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    shape: (usize, usize, usize),
    transposed: (bool, bool),
) {
    let (m, n, k) = shape;
    assert!(
        c.len() >= m * n && a.len() >= m * k && b.len() >= k * n,
        "small_matmul: slices shorter than {m}×{n}×{k}"
    );
    let (a_rs, a_cs) = if transposed.0 { (1, m) } else { (k, 1) };
    let (b_rs, b_cs) = if transposed.1 { (1, k) } else { (n, 1) };
    let one = T::one();
    // SAFETY: the slices hold the m×k, k×n and m×n elements the strides reach (checked above);
    // `c` is written, not read (`read_dst` false).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            one,
            one,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

impl CustomOp1 for CausalAttention {
    fn name(&self) -> &'static str {
        "fused-causal-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, t, d, _) = self.dims(l);
        let y = float_dtype!(s.dtype(), "causal attention", |T| T::to_cpu_storage_owned(
            self.forward(slice::<T>(s, l)?, l)
        ));
        Ok((y, Shape::from((b, t, d))))
    }

    fn bwd(&self, qkv: &Tensor, _y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        let layout = Layout::contiguous(qkv.shape());
        let dqkv = float_dtype!(qkv.dtype(), "causal attention backward", |T| {
            let g = read([qkv, gy], |[qkv, gy]| self.backward::<T>(qkv, gy, &layout))?;
            Tensor::from_vec(g, qkv.shape(), qkv.device())?
        });
        Ok(Some(dqkv))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{assert_close, numeric_grad, randn};
    use candle_core::{Device, Var};

    #[test]
    fn causal_attention_matches_the_composition_and_finite_differences() -> Result<()> {
        let (b, t, heads, dh) = (2, 5, 2, 4);
        let qkv = randn(&[b, t, 3 * heads * dh], 30);
        let r = randn(&[b, t, heads * dh], 31);
        let angles: Vec<f64> =
            (0..t * dh / 2).map(|i| (i / (dh / 2)) as f64 * 0.3f64.powi((i % (dh / 2)) as i32)).collect();
        let angles = Tensor::from_vec(angles, (t, dh / 2), &Device::Cpu)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        for rope in [None, Some((&cos, &sin))] {
            let ours = causal_attention(&qkv, heads, rope)?;
            let reference = causal_attention_by_composition(&qkv, heads, rope)?;
            let diff = (&ours - reference)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-12, "forward differs by {diff}");
            let loss = |x: &Tensor| causal_attention(x, heads, rope)?.mul(&r)?.sum_all();
            let xv = Var::from_tensor(&qkv)?;
            let grads = loss(xv.as_tensor())?.backward()?;
            let analytic: Vec<f64> = grads.get(xv.as_tensor()).unwrap().flatten_all()?.to_vec1()?;
            assert_close(&analytic, &numeric_grad(&qkv, &|x| loss(x)?.to_scalar())?, 1e-6, "dqkv");
            // f32 agrees with f64.
            let y32: Vec<f32> =
                causal_attention(&qkv.to_dtype(DType::F32)?, heads, rope)?.flatten_all()?.to_vec1()?;
            for (a, b) in y32.iter().zip(ours.flatten_all()?.to_vec1::<f64>()?) {
                assert!((f64::from(*a) - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
        assert!(causal_attention(&qkv, 5, None).unwrap_err().to_string().contains("not 3 × heads"));
        Ok(())
    }
}
