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

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType, D,
};
use num_traits::Float;

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

/// Runs `f` compiled for the widest vector instructions this CPU has: AVX-512, else AVX2, else
/// the baseline the crate is built for (SSE2 on x86-64). The loops of the fused ops are written
/// so that the compiler vectorizes them; without this they would use 4 lanes where the CPU has
/// 16. Only the instruction width changes, not the order of any sum, so results are the same
/// on every CPU.
#[inline(always)]
fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features `avx512` is compiled for.
            return unsafe { avx512(f) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

fn slice<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end, _, _) = rows(l)?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// Calls `f` with the elements of each tensor (made contiguous first where it is not), read in
/// place from CPU storage rather than copied out: the backward passes read activations the size
/// of the model's largest. The read locks are held together; nothing writes to activations or
/// gradients in place while a backward pass reads them.
fn read<T: candle_core::WithDType, R, const N: usize>(
    ts: [&Tensor; N],
    f: impl FnOnce([&[T]; N]) -> R,
) -> Result<R> {
    let ts = ts.map(|t| t.contiguous());
    let mut owned = Vec::with_capacity(N);
    for t in ts {
        owned.push(t?);
    }
    let guards: Vec<_> = owned.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices: Vec<&[T]> = Vec::with_capacity(N);
    for (storage, layout) in &guards {
        match &**storage {
            candle_core::Storage::Cpu(s) => slices.push(slice(s, layout)?),
            _ => candle_core::bail!("fused ops read CPU tensors only"),
        }
    }
    let slices: [&[T]; N] = slices.try_into().map_err(|_| candle_core::Error::Msg("tensor count".into()))?;
    Ok(f(slices))
}

// ---------------------------------------------------------------- layer norm

struct LayerNorm {
    eps: f64,
}

fn ln_forward<T: Float>(x: &[T], w: &[T], b: &[T], d: usize, eps: f64) -> Vec<T> {
    simd(
        #[inline(always)]
        || ln_forward_rows(x, w, b, d, eps),
    )
}

#[inline(always)]
fn ln_forward_rows<T: Float>(x: &[T], w: &[T], b: &[T], d: usize, eps: f64) -> Vec<T> {
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

// ---------------------------------------------------------------- linear

/// `x · wᵀ + b` for `x` `[..., in]`, `w` `[out, in]`, `b` `[out]`: one node, the products by gemm.
///
/// The forward pass starts the output from the bias and adds the product into it, reading `wᵀ`
/// copied row-major (gemm repacks a column-major right-hand side on every call: 15% of a
/// training-sized product, 2–4× a decoding-sized one, `bench/NOTES.md`). The backward pass is
/// `dx = dy·w`, `dw = dyᵀ·x`, `db` the column sums of `dy`. Inside a parallel part of a batch
/// ([`crate::grads_in_parallel`]) the products run on their own thread: the parts already fill
/// the cores.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        // cuBLAS reads the transposed weight in place: no copy of it per call.
        return linear_t(x, &w.t()?, b);
    }
    let dims = x.dims();
    let (rows, inner) = (dims[..dims.len() - 1].iter().product::<usize>(), dims[dims.len() - 1]);
    let (out, w_in) = w.dims2()?;
    if w_in != inner || b.dims() != [out] {
        candle_core::bail!("linear: x {:?}, w {:?}, b {:?} do not fit", dims, w.dims(), b.dims());
    }
    let mut shape = dims.to_vec();
    *shape.last_mut().expect("x has a last dimension") = out;
    x.contiguous()?
        .reshape((rows, inner))?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, Linear)?
        .reshape(shape)
}

struct Linear;

/// Parallelism for a product: none inside a rayon task (a part of a batch, a head), both cores
/// otherwise.
fn parallelism() -> gemm::Parallelism {
    match (rayon::current_thread_index(), rayon::current_num_threads()) {
        (None, n) if n > 1 => gemm::Parallelism::Rayon(n),
        _ => gemm::Parallelism::None,
    }
}

/// `c (+)= a · b` for row-major `c` `[m, n]`, `a` given by its strides `(row, column)`, `b` by
/// its; `accumulate` adds to what `c` holds.
///
/// # Safety
/// `a` and `b` must reach every element their shape and strides address.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into<T: Float + 'static>(
    c: &mut [T],
    (m, n, k): (usize, usize, usize),
    a: &[T],
    (a_rs, a_cs): (usize, usize),
    b: &[T],
    (b_rs, b_cs): (usize, usize),
    accumulate: bool,
) {
    assert!(c.len() >= m * n);
    gemm::gemm(
        m,
        n,
        k,
        c.as_mut_ptr(),
        1,
        n as isize,
        accumulate,
        a.as_ptr(),
        a_cs as isize,
        a_rs as isize,
        b.as_ptr(),
        b_cs as isize,
        b_rs as isize,
        T::one(),
        T::one(),
        false,
        false,
        false,
        parallelism(),
    )
}

fn linear_forward<T: Float + 'static>(x: &[T], w: &[T], b: &[T], rows: usize, inner: usize) -> Vec<T> {
    let out = b.len();
    // wᵀ row-major `[in, out]`, in 32 × 32 tiles so that reads and writes both stay in cache.
    const TILE: usize = 32;
    let mut wt = vec![T::zero(); inner * out];
    for j0 in (0..out).step_by(TILE) {
        for l0 in (0..inner).step_by(TILE) {
            for l in l0..(l0 + TILE).min(inner) {
                for j in j0..(j0 + TILE).min(out) {
                    wt[l * out + j] = w[j * inner + l];
                }
            }
        }
    }
    let mut y = Vec::with_capacity(rows * out);
    for _ in 0..rows {
        y.extend_from_slice(b);
    }
    assert!(x.len() >= rows * inner);
    // SAFETY: x is [rows, inner] and wt [inner, out], row-major, as the strides say.
    unsafe { gemm_into(&mut y, (rows, out, inner), x, (inner, 1), &wt, (out, 1), true) };
    y
}

/// `(dx, dw, db)` from `x` `[rows, in]`, `w` `[out, in]`, `dy` `[rows, out]`.
fn linear_backward<T: Float + 'static>(
    x: &[T],
    w: &[T],
    gy: &[T],
    rows: usize,
    inner: usize,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let out = w.len() / inner;
    assert!(x.len() >= rows * inner && gy.len() >= rows * out);
    let mut dx = vec![T::zero(); rows * inner];
    let mut dw = vec![T::zero(); out * inner];
    // SAFETY: dy is [rows, out], w [out, in], x [rows, in], row-major; dyᵀ is dy read with
    // swapped strides.
    unsafe {
        gemm_into(&mut dx, (rows, inner, out), gy, (out, 1), w, (inner, 1), false);
        gemm_into(&mut dw, (out, inner, rows), gy, (1, out), x, (inner, 1), false);
    }
    (dx, dw, column_sums(gy, out))
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "fused-linear"
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
        let (rows, inner) = (lx.shape().dims()[0], lx.shape().dims()[1]);
        let out = lw.shape().dims()[0];
        let y = float_dtype!(sx.dtype(), "linear", |T| T::to_cpu_storage_owned(linear_forward(
            slice::<T>(sx, lx)?,
            slice(sw, lw)?,
            slice(sb, lb)?,
            rows,
            inner,
        )));
        Ok((y, Shape::from((rows, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn typed<T: Float + 'static + candle_core::WithDType>(
            x: &Tensor,
            w: &Tensor,
            b: &Tensor,
            gy: &Tensor,
        ) -> Result<(Tensor, Tensor, Tensor)> {
            let (rows, inner) = x.dims2()?;
            let (dx, dw, db) =
                read::<T, _, 3>([x, w, gy], |[x, w, gy]| linear_backward(x, w, gy, rows, inner))?;
            let dev = x.device();
            Ok((
                Tensor::from_vec(dx, x.shape(), dev)?,
                Tensor::from_vec(dw, w.shape(), dev)?,
                Tensor::from_vec(db, b.shape(), dev)?,
            ))
        }
        let (dx, dw, db) = float_dtype!(x.dtype(), "linear backward", |T| typed::<T>(x, w, b, gy)?);
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// [`linear`] with the weight already transposed: `wt` `[in, out]`.
pub fn linear_t(x: &Tensor, wt: &Tensor, b: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let (rows, inner) = (dims[..dims.len() - 1].iter().product::<usize>(), dims[dims.len() - 1]);
    let y = x.contiguous()?.reshape((rows, inner))?.matmul(wt)?;
    let mut out = dims.to_vec();
    *out.last_mut().expect("x has a last dimension") = wt.dim(1)?;
    add_bias(&y, b)?.reshape(out)
}

/// `x + b` with `b` `[d]` broadcast over the rows of `x` `[..., d]`.
///
/// candle's `broadcast_add` backward sums the gradient over the broadcast dimensions with a
/// generic strided reduction, and adds a zero-filled gradient for the broadcast view first; here
/// the bias gradient is one pass of row sums.
pub fn add_bias(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return x.broadcast_add(b);
    }
    x.contiguous()?.apply_op2(&b.contiguous()?, AddBias)
}

struct AddBias;

fn add_bias_forward<T: Float>(x: &[T], b: &[T]) -> Vec<T> {
    let mut y = x.to_vec();
    for row in y.chunks_exact_mut(b.len()) {
        row.iter_mut().zip(b).for_each(|(y, &b)| *y = *y + b);
    }
    y
}

fn column_sums<T: Float>(g: &[T], d: usize) -> Vec<T> {
    let mut db = vec![T::zero(); d];
    for row in g.chunks_exact(d) {
        db.iter_mut().zip(row).for_each(|(s, &g)| *s = *s + g);
    }
    db
}

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "fused-add-bias"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, _, _, d) = rows(lx)?;
        if lb.shape().elem_count() != d {
            candle_core::bail!("add bias: the bias must have {d} elements, has {}", lb.shape().elem_count());
        }
        let y = float_dtype!(sx.dtype(), "add bias", |T| T::to_cpu_storage_owned(add_bias_forward(
            slice::<T>(sx, lx)?,
            slice(sb, lb)?
        )));
        Ok((y, lx.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        fn typed<T: Float + candle_core::WithDType>(b: &Tensor, gy: &Tensor) -> Result<Tensor> {
            Tensor::from_vec(read([gy], |[g]| column_sums::<T>(g, b.elem_count()))?, b.shape(), b.device())
        }
        let db = float_dtype!(gy.dtype(), "add bias backward", |T| typed::<T>(b, gy)?);
        Ok((Some(gy.clone()), Some(db)))
    }
}

// ---------------------------------------------------------------- attention weights

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

// ---------------------------------------------------------------- causal attention for training

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
        if cos.dims() != [t, dh / 2] || sin.dims() != [t, dh / 2] || dh % 2 != 0 {
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

// ---------------------------------------------------------------- attention for sampling

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

// ---------------------------------------------------------------- AdamW

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

// ---------------------------------------------------------------- GELU

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

/// Elements per parallel chunk of an element-wise op: below it, one thread.
const CHUNK: usize = 1 << 15;

/// `exp(x)` for f32, vectorizable: `2^n · p(r)` with `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, `p` a
/// degree-6 Taylor polynomial (relative error < 2e-7 over the range). Inputs are clamped to
/// [−87, 88] (where f32's `exp` is finite and normal).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    // Adding 1.5·2^23 rounds to the nearest integer and leaves it in the low mantissa bits:
    // plain arithmetic, so the loop vectorizes (`round` is a libm call without SSE4.1).
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + SHIFTER;
    let n = shifted - SHIFTER;
    // ln 2 split in a part exact in f32 and the rest, so that `x − n·ln 2` loses nothing.
    let r = (x - n * 0.693_359_4) + n * 2.121_944_4e-4;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let n = shifted.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    f32::from_bits(((n + 127) << 23) as u32) * p
}

/// `tanh(u) = sign(u) · (1 − e) / (1 + e)` with `e = exp(−2|u|)`, saturating to ±1. Accurate to
/// a few ulp of 1 in absolute terms (not relative near 0, where GELU only uses `1 + tanh`).
#[inline(always)]
fn tanh_f32(u: f32) -> f32 {
    let e = exp_f32(-2.0 * u.abs());
    ((1.0 - e) / (1.0 + e)).copysign(u)
}

/// `exp` and `tanh` in the float type of the data: the vectorizable forms above in f32, libm's
/// in f64 (the precision the gradient tests use).
trait FastFloat: Float + Send + Sync {
    fn exp_fast(self) -> Self;
    fn tanh_fast(self) -> Self;
}

impl FastFloat for f32 {
    #[inline(always)]
    fn exp_fast(self) -> f32 {
        exp_f32(self)
    }

    #[inline(always)]
    fn tanh_fast(self) -> f32 {
        tanh_f32(self)
    }
}

impl FastFloat for f64 {
    #[inline(always)]
    fn exp_fast(self) -> f64 {
        self.exp()
    }

    #[inline(always)]
    fn tanh_fast(self) -> f64 {
        self.tanh()
    }
}

/// `Σ a·b` in eight independent partial sums, so that the compiler can vectorize it (one running
/// sum is a dependency chain it must keep in order).
#[inline(always)]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = ac.remainder().iter().zip(bc.remainder()).fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] = acc[l] + x[l] * y[l];
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

#[inline(always)]
fn gelu_y<T: FastFloat>(x: T) -> T {
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

/// `out[i] = f(a[i], b[i])` (or `f(a[i])` when `b` is empty) over parallel chunks.
fn map_into<T: Copy + Send + Sync>(a: &[T], b: &[T], out: &mut [T], f: impl Fn(T, T) -> T + Sync) {
    use rayon::prelude::*;
    let run = |(i, o): (usize, &mut [T])| {
        simd(
            #[inline(always)]
            || {
                let a = &a[i * CHUNK..i * CHUNK + o.len()];
                if b.is_empty() {
                    o.iter_mut().zip(a).for_each(|(o, &a)| *o = f(a, a));
                } else {
                    let b = &b[i * CHUNK..i * CHUNK + o.len()];
                    o.iter_mut().zip(a).zip(b).for_each(|((o, &a), &b)| *o = f(a, b));
                }
            },
        )
    };
    if out.len() <= CHUNK {
        run((0, out));
    } else {
        out.par_chunks_mut(CHUNK).enumerate().for_each(run);
    }
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

    #[test]
    fn linear_gradients_match_finite_differences() -> Result<()> {
        let (x, w, b) = (randn(&[2, 3, 4], 11), randn(&[5, 4], 12), randn(&[5], 13));
        let r = randn(&[2, 3, 5], 14);
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| linear(x, w, b)?.mul(&r)?.sum_all();
        let (xv, wv, bv) = (Var::from_tensor(&x)?, Var::from_tensor(&w)?, Var::from_tensor(&b)?);
        let grads = loss(xv.as_tensor(), wv.as_tensor(), bv.as_tensor())?.backward()?;
        let g = |v: &Var| -> Result<Vec<f64>> { grads.get(v.as_tensor()).unwrap().flatten_all()?.to_vec1() };
        assert_close(&g(&xv)?, &numeric_grad(&x, &|x| loss(x, &w, &b)?.to_scalar())?, 1e-6, "dx");
        assert_close(&g(&wv)?, &numeric_grad(&w, &|w| loss(&x, w, &b)?.to_scalar())?, 1e-6, "dw");
        assert_close(&g(&bv)?, &numeric_grad(&b, &|b| loss(&x, &w, b)?.to_scalar())?, 1e-6, "db");
        let reference = x.broadcast_matmul(&w.t()?)?.broadcast_add(&b)?;
        let diff = (linear(&x, &w, &b)? - reference)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(diff < 1e-12, "{diff}");
        assert!(add_bias(&x, &randn(&[3], 15)).unwrap_err().to_string().contains("4 elements"));
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
