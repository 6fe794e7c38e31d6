//! Attention for sampling: the whole of it in one forward-only op.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType};

use super::cpu::*;

/// `softmax(scale · q·kᵀ + mask) · v` for `q` `[B, H, T, dh]`, `k` and `v` `[B, H, K, dh]`, mask
/// `[B|1, 1, T, K]`: the whole of attention in one op, forward only (sampling, where nothing is
/// differentiated; its backward is an error).
///
/// A decoding step asks for one query per head: as batched matrix products that is `2·B·H`
/// products of one row each, and the per-call cost of the matrix library dominates. Here each
/// (sequence, head) is a few dot products, the heads in parallel.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, h, t, dh) = q.dims4()?;
    let (kb, kh, keys, kd) = k.dims4()?;
    let (mb, mh, mt, mk) = mask.dims4()?;
    if (kb, kh, kd) != (b, h, dh)
        || v.dims() != k.dims()
        || !(mb == 1 || mb == b)
        || mh != 1
        || mt != t
        || mk != keys
    {
        candle_core::bail!(
            "attention: q {:?}, k {:?}, v {:?}, mask {:?} do not fit",
            q.dims(),
            k.dims(),
            v.dims(),
            mask.dims()
        );
    }
    if !q.device().is_cpu() {
        // Nothing is differentiated here: candle's fused softmax kernel, which has no backward.
        // The keys and values may be views of a longer cache: the products want them whole.
        let scores = (q.contiguous()?.matmul(&k.contiguous()?.t()?)? * scale)?
            .broadcast_add(&mask.to_dtype(q.dtype())?)?;
        return candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v.contiguous()?);
    }
    let mask: Vec<f64> = mask.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    // Keys and values may be views of a longer cache (`[B, H, capacity, dh]` narrowed): each
    // head's rows contiguous, heads `capacity · dh` apart.
    let heads_apart = |x: &Tensor| -> Result<Tensor> {
        let st = x.stride();
        if st[3] == 1 && st[2] == dh && st[0] == h * st[1] {
            Ok(x.clone())
        } else {
            x.contiguous()
        }
    };
    q.contiguous()?.apply_op3(&heads_apart(k)?, &heads_apart(v)?, Attention { mask, scale })
}

struct Attention {
    mask: Vec<f64>,
    scale: f64,
}

impl Attention {
    /// `k` and `v` start at their first head; heads are `apart` elements apart, `keys` rows each.
    #[allow(clippy::too_many_arguments)]
    fn run<T: FastFloat>(
        &self,
        q: &[T],
        k: &[T],
        v: &[T],
        heads: usize,
        t: usize,
        dh: usize,
        keys: usize,
        apart: usize,
    ) -> Vec<T> {
        use rayon::prelude::*;
        let scale = T::from(self.scale).unwrap();
        let mut y = vec![T::zero(); q.len()];
        y.par_chunks_mut(t * dh).enumerate().for_each(|(bh, yh)| {
            simd(
                #[inline(always)]
                || {
                    let (qh, kh, vh) = (&q[bh * t * dh..], &k[bh * apart..], &v[bh * apart..]);
                    let batch = bh / heads;
                    let mut w = vec![T::zero(); keys];
                    for (i, yr) in yh.chunks_exact_mut(dh).enumerate() {
                        let qr = &qh[i * dh..(i + 1) * dh];
                        let row = if self.mask.len() == t * keys { i } else { batch * t + i };
                        let m = &self.mask[row * keys..(row + 1) * keys];
                        let mut max = T::neg_infinity();
                        for (j, wj) in w.iter_mut().enumerate() {
                            *wj = dot(qr, &kh[j * dh..(j + 1) * dh]) * scale + T::from(m[j]).unwrap();
                            max = max.max(*wj);
                        }
                        let mut sum = T::zero();
                        for wj in w.iter_mut() {
                            *wj = (*wj - max).exp_fast();
                            sum = sum + *wj;
                        }
                        let inv = sum.recip();
                        for (j, &wj) in w.iter().enumerate() {
                            let p = wj * inv;
                            yr.iter_mut().zip(&vh[j * dh..(j + 1) * dh]).for_each(|(y, &v)| *y = *y + p * v);
                        }
                    }
                },
            )
        });
        y
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "attention-no-grad"
    }

    fn cpu_fwd(
        &self,
        sq: &CpuStorage,
        lq: &Layout,
        sk: &CpuStorage,
        lk: &Layout,
        sv: &CpuStorage,
        lv: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = lq.shape().dims();
        let (heads, t, dh) = (dims[1], dims[2], dims[3]);
        let (keys, apart) = (lk.shape().dims()[2], lk.stride()[1]);
        if lv.stride() != lk.stride() {
            candle_core::bail!("attention: keys and values laid out differently");
        }
        // From each one's first element to the end of its storage: heads `apart` elements apart.
        fn from<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
            Ok(&s.as_slice::<T>()?[l.start_offset()..])
        }
        let y = float_dtype!(sq.dtype(), "attention", |T| T::to_cpu_storage_owned(self.run(
            slice::<T>(sq, lq)?,
            from(sk, lk)?,
            from(sv, lv)?,
            heads,
            t,
            dh,
            keys,
            apart,
        )));
        Ok((y, lq.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::randn;
    use candle_core::{Device, Var, D};

    #[test]
    fn sampling_attention_agrees_with_the_composition() -> Result<()> {
        // A causal prefill shared by the batch, a left-padded one per sequence, one decoding step.
        let (b, h, dh) = (2, 3, 4);
        for (t, keys, per_seq) in [(5, 5, false), (5, 5, true), (1, 7, true)] {
            let q = randn(&[b, h, t, dh], 20);
            let (k, v) = (randn(&[b, h, keys, dh], 21), randn(&[b, h, keys, dh], 22));
            let rows = if per_seq { b } else { 1 };
            let m: Vec<f64> = (0..rows * t * keys)
                .map(|i| {
                    let (r, j) = ((i / keys) % t, i % keys);
                    let pad = if per_seq { i / (t * keys) } else { 0 };
                    if j > r + keys - t || j < pad {
                        -1e9
                    } else {
                        0.0
                    }
                })
                .collect();
            let mask = Tensor::from_vec(m, (rows, 1, t, keys), &Device::Cpu)?;
            let reference =
                candle_nn::ops::softmax(&(q.matmul(&k.t()?)? * 0.5)?.broadcast_add(&mask)?, D::Minus1)?
                    .matmul(&v)?;
            let ours = attention(&q, &k, &v, &mask, 0.5)?;
            let diff = (ours - reference)?.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(diff < 1e-12, "t {t}, keys {keys}: {diff}");
        }
        // Keys and values as views of a longer cache, as sampling passes them.
        let (k, v) = (randn(&[b, h, 9, dh], 24), randn(&[b, h, 9, dh], 25));
        let (kn, vn) = (k.narrow(2, 0, 6)?, v.narrow(2, 0, 6)?);
        let q = randn(&[b, h, 1, dh], 26);
        let mask = Tensor::zeros((b, 1, 1, 6), DType::F64, &Device::Cpu)?;
        let reference =
            candle_nn::ops::softmax(&(q.matmul(&kn.t()?)? * 0.5)?.broadcast_add(&mask)?, D::Minus1)?
                .matmul(&vn.contiguous()?)?;
        let diff =
            (attention(&q, &kn, &vn, &mask, 0.5)? - reference)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(diff < 1e-12, "narrowed cache: {diff}");
        // Forward only: differentiating through it is an error, not a silent zero.
        let qv = Var::from_tensor(&q)?;
        let out = attention(qv.as_tensor(), &kn, &vn, &mask, 0.5)?.sum_all()?;
        assert!(out.backward().is_err());
        let q = randn(&[1, 1, 2, 4], 23);
        let mask = Tensor::zeros((1, 1, 2, 3), DType::F64, &Device::Cpu)?;
        assert!(attention(&q, &q, &q, &mask, 1.0).unwrap_err().to_string().contains("do not fit"));
        Ok(())
    }
}
