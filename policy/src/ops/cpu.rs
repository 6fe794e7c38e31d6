//! What the CPU kernels share: reading tensors in place, running a loop compiled for the
//! CPU's widest vectors, vectorizable `exp`, `tanh` and dot products, parallel element-wise maps.

use candle_core::{CpuStorage, Layout, Result, Tensor};
use num_traits::Float;

pub(super) fn rows(layout: &Layout) -> Result<(usize, usize, usize, usize)> {
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
pub(super) fn simd<R>(f: impl FnOnce() -> R) -> R {
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
pub(super) unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

pub(super) fn slice<'a, T: candle_core::WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end, _, _) = rows(l)?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// Calls `f` with the elements of each tensor (made contiguous first where it is not), read in
/// place from CPU storage rather than copied out: the backward passes read activations the size
/// of the model's largest. The read locks are held together; nothing writes to activations or
/// gradients in place while a backward pass reads them.
pub(super) fn read<T: candle_core::WithDType, R, const N: usize>(
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

/// Elements per parallel chunk of an element-wise op: below it, one thread.
pub(super) const CHUNK: usize = 1 << 15;

/// `exp(x)` for f32, vectorizable: `2^n · p(r)` with `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, `p` a
/// degree-6 Taylor polynomial (relative error < 2e-7 over the range). Inputs are clamped to
/// [−87, 88] (where f32's `exp` is finite and normal).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
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
pub(super) fn tanh_f32(u: f32) -> f32 {
    let e = exp_f32(-2.0 * u.abs());
    ((1.0 - e) / (1.0 + e)).copysign(u)
}

/// `exp` and `tanh` in the float type of the data: the vectorizable forms above in f32, libm's
/// in f64 (the precision the gradient tests use).
pub(crate) trait FastFloat: Float + Send + Sync {
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
pub(crate) fn dot<T: Float>(a: &[T], b: &[T]) -> T {
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

/// `out[i] = f(a[i], b[i])` (or `f(a[i])` when `b` is empty) over parallel chunks.
pub(super) fn map_into<T: Copy + Send + Sync>(a: &[T], b: &[T], out: &mut [T], f: impl Fn(T, T) -> T + Sync) {
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
