//! The decoder's arithmetic on plain `f32` rows, each row's result independent of the others.
//!
//! Every output element of [`matmul`] is one chain of fused multiply-adds over the inner
//! dimension in order, started from the bias, whatever the number of rows, the tile the element
//! falls in or the instruction width: so a sequence gets the same bits alone as in any batch, and
//! continuous batching (whose batches depend on which sequences happen to be running) stays
//! reproducible. A general matrix library does not promise that: gemm switches to another kernel
//! for a single row and blocks the inner dimension by the problem's size.

/// Which instructions the kernels were compiled for, chosen once per call at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Baseline,
    Avx2,
    Avx512,
}

impl Isa {
    /// The widest this CPU has, or a narrower one asked for with `SELFPLAY_CPU_ISA` (`avx2`,
    /// `baseline`): how a benchmark measures the AVX2 path on an AVX-512 machine. A value this
    /// CPU cannot run, or none of those, leaves the widest ([`Isa::requested`] says why).
    pub fn detect() -> Isa {
        static CHOSEN: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| Isa::requested().unwrap_or_else(|_| Isa::widest()))
    }

    /// What `SELFPLAY_CPU_ISA` asks for (the widest when unset), or why it cannot be had.
    pub fn requested() -> Result<Isa, String> {
        Isa::parse(std::env::var("SELFPLAY_CPU_ISA").ok().as_deref(), Isa::widest())
    }

    /// [`Isa::requested`] for the variable's value `asked` on a CPU whose widest is `widest`.
    fn parse(asked: Option<&str>, widest: Isa) -> Result<Isa, String> {
        let Some(asked) = asked else { return Ok(widest) };
        let isa = match asked {
            "avx512" => Isa::Avx512,
            "avx2" => Isa::Avx2,
            "baseline" => Isa::Baseline,
            other => return Err(format!("SELFPLAY_CPU_ISA={other:?}: expected avx512, avx2 or baseline")),
        };
        if isa > widest {
            return Err(format!("SELFPLAY_CPU_ISA={asked}: this CPU runs at most {}", widest.name()));
        }
        Ok(isa)
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Baseline => "baseline",
        }
    }

    /// Every ISA this CPU can run, widest first.
    #[cfg(test)]
    pub fn supported() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Baseline].into_iter().filter(|&i| i <= Isa::widest()).collect()
    }

    fn widest() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// Runs `f` compiled for this ISA; `f` must be `#[inline(always)]` for that to reach its loops.
    #[inline(always)]
    pub fn run<R>(self, f: impl FnOnce(Isa) -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        match self {
            // SAFETY: `detect` saw the features these are compiled for.
            Isa::Avx512 => return unsafe { avx512(f) },
            Isa::Avx2 => return unsafe { avx2(f) },
            Isa::Baseline => {}
        }
        f(Isa::Baseline)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn avx512<R>(f: impl FnOnce(Isa) -> R) -> R {
    f(Isa::Avx512)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce(Isa) -> R) -> R {
    f(Isa::Avx2)
}

/// `out[m, n] = bias + a[m, k] · b[k, n]` (or `out += …` with `accumulate`), all row-major; `b`
/// is a weight stored transposed, `[in, out]`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn matmul(
    isa: Isa,
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && out.len() >= m * n);
    assert!(bias.is_none_or(|bias| bias.len() >= n));
    let p = Product { out: out.as_mut_ptr(), a: a.as_ptr(), b: b.as_ptr(), bias, m, k, n, accumulate };
    // SAFETY: the slices hold the shapes asserted above; `Isa::detect` saw the CPU features.
    unsafe {
        let vector_cols = match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::avx512(&p),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => x86::avx2(&p),
            _ => 0,
        };
        p.scalar_columns(vector_cols);
    }
}

/// A product's operands, as raw pointers for the vector kernels.
struct Product<'a> {
    out: *mut f32,
    a: *const f32,
    b: *const f32,
    bias: Option<&'a [f32]>,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
}

impl Product<'_> {
    /// Where element `(i, j)`'s chain of products starts: what `out` holds (accumulating) plus
    /// the bias.
    #[inline(always)]
    unsafe fn start(&self, i: usize, j: usize) -> f32 {
        let base = if self.accumulate { *self.out.add(i * self.n + j) } else { 0.0 };
        base + self.bias.map_or(0.0, |b| b[j])
    }

    /// Columns `from..n`, one element at a time, in the same order as the vector kernels.
    #[inline(always)]
    unsafe fn scalar_columns(&self, from: usize) {
        let (k, n) = (self.k, self.n);
        for i in 0..self.m {
            for j in from..n {
                let mut acc = self.start(i, j);
                for kk in 0..k {
                    acc = (*self.a.add(i * k + kk)).mul_add(*self.b.add(kk * n + j), acc);
                }
                *self.out.add(i * n + j) = acc;
            }
        }
    }
}

/// The vector kernels: tiles of `MR` rows and two registers of columns, held in registers over
/// the whole inner dimension (8 × 32 accumulators are 16 of AVX-512's 32 registers, 6 × 16 are
/// 12 of AVX2's 16). Each returns how many columns it covered; the rest go element by element.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Product;
    use std::arch::x86_64::*;

    macro_rules! kernel {
        ($name:ident, $panel:ident, $tile:ident, $features:literal, $rows:expr, $regs:expr, $lanes:expr,
         $load:ident, $store:ident, $set1:ident, $fmadd:ident, $add:ident, $zero:ident) => {
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(p: &Product) -> usize {
                // Panels of `$regs` registers of columns, then of one, the rest element-wise.
                let wide = p.n / ($regs * $lanes) * ($regs * $lanes);
                let cols = p.n / $lanes * $lanes;
                for j0 in (0..wide).step_by($regs * $lanes) {
                    $panel::<$regs>(p, j0);
                }
                for j0 in (wide..cols).step_by($lanes) {
                    $panel::<1>(p, j0);
                }
                cols
            }

            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn $panel<const C: usize>(p: &Product, j0: usize) {
                let mut i0 = 0;
                while i0 + $rows <= p.m {
                    $tile::<{ $rows }, C>(p, i0, j0);
                    i0 += $rows;
                }
                for i in i0..p.m {
                    $tile::<1, C>(p, i, j0);
                }
            }

            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn $tile<const R: usize, const C: usize>(p: &Product, i0: usize, j0: usize) {
                let (k, n) = (p.k, p.n);
                let mut acc = [[$zero(); C]; R];
                for (r, row_acc) in acc.iter_mut().enumerate() {
                    let row = (i0 + r) * n + j0;
                    for (c, v) in row_acc.iter_mut().enumerate() {
                        if p.accumulate {
                            *v = $load(p.out.add(row + c * $lanes));
                        }
                        if let Some(bias) = p.bias {
                            *v = $add(*v, $load(bias.as_ptr().add(j0 + c * $lanes)));
                        }
                    }
                }
                for kk in 0..k {
                    let b: [_; C] = std::array::from_fn(|c| $load(p.b.add(kk * n + j0 + c * $lanes)));
                    for (r, row_acc) in acc.iter_mut().enumerate() {
                        let av = $set1(*p.a.add((i0 + r) * k + kk));
                        for (v, &bc) in row_acc.iter_mut().zip(&b) {
                            *v = $fmadd(av, bc, *v);
                        }
                    }
                }
                for (r, row_acc) in acc.iter().enumerate() {
                    let row = (i0 + r) * n + j0;
                    for (c, &v) in row_acc.iter().enumerate() {
                        $store(p.out.add(row + c * $lanes), v);
                    }
                }
            }
        };
    }

    kernel!(
        avx512,
        panel512,
        tile512,
        "avx512f,avx2,fma",
        8,
        2,
        16,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_setzero_ps
    );
    kernel!(
        avx2,
        panel256,
        tile256,
        "avx2,fma",
        6,
        2,
        8,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_setzero_ps
    );
}

/// One query's attention over `keys` cached positions of one head: `q` `[dh]`, the keys and
/// values of position `j` at `k[j * stride..][..dh]`; writes `Σ softmax(scale · q·k)_j · v_j`
/// into `y`, using `w` (at least `keys` long) for the weights.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    stride: usize,
    keys: usize,
    scale: f32,
    w: &mut [f32],
    y: &mut [f32],
) {
    let dh = q.len();
    let mut max = f32::NEG_INFINITY;
    for (j, wj) in w[..keys].iter_mut().enumerate() {
        *wj = crate::ops::dot(q, &k[j * stride..j * stride + dh]) * scale;
        max = max.max(*wj);
    }
    let mut sum = 0.0;
    for wj in w[..keys].iter_mut() {
        *wj = crate::ops::exp_f32(*wj - max);
        sum += *wj;
    }
    let inv = sum.recip();
    y.fill(0.0);
    for (j, &wj) in w[..keys].iter().enumerate() {
        let p = wj * inv;
        for (yv, &vv) in y.iter_mut().zip(&v[j * stride..j * stride + dh]) {
            *yv = p.mul_add(vv, *yv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// The product against f64 arithmetic, for shapes that exercise every remainder.
    #[test]
    fn matmul_matches_a_plain_product() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for isa in Isa::supported() {
            for (m, k, n) in [(1, 1, 1), (3, 7, 5), (4, 16, 32), (9, 33, 70), (17, 128, 384)] {
                let (a, b, bias) = (random(m * k, &mut rng), random(k * n, &mut rng), random(n, &mut rng));
                let prior = random(m * n, &mut rng);
                for (with_bias, accumulate) in [(false, false), (true, false), (true, true)] {
                    let mut out = prior.clone();
                    isa.run(
                        #[inline(always)]
                        |isa| {
                            matmul(
                                isa,
                                &mut out,
                                &a,
                                &b,
                                with_bias.then_some(&bias[..]),
                                (m, k, n),
                                accumulate,
                            )
                        },
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let mut want = if accumulate { prior[i * n + j] as f64 } else { 0.0 };
                            if with_bias {
                                want += bias[j] as f64;
                            }
                            want += (0..k).map(|l| a[i * k + l] as f64 * b[l * n + j] as f64).sum::<f64>();
                            let got = out[i * n + j] as f64;
                            assert!(
                                (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                                "{isa:?} {m}x{k}x{n} [{i},{j}]: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A row's result does not depend on the rows beside it: the same bits alone, first, last or
    /// in the middle of a batch of any size.
    #[test]
    fn a_row_is_the_same_in_any_batch() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (k, n) = (128, 70);
        let b = random(k * n, &mut rng);
        let bias = random(n, &mut rng);
        let row = random(k, &mut rng);
        for isa in Isa::supported() {
            let product = |a: &[f32], m: usize| {
                let mut out = vec![0.0; m * n];
                isa.run(
                    #[inline(always)]
                    |isa| matmul(isa, &mut out, a, &b, Some(&bias), (m, k, n), false),
                );
                out
            };
            let alone = product(&row, 1);
            for m in [2, 4, 5, 7, 9, 13] {
                for at in [0, m / 2, m - 1] {
                    let mut a = random(m * k, &mut rng);
                    a[at * k..(at + 1) * k].copy_from_slice(&row);
                    let out = product(&a, m);
                    assert_eq!(&out[at * n..(at + 1) * n], &alone[..], "{isa:?}: row {at} of {m}");
                }
            }
        }
    }

    #[test]
    fn an_isa_is_asked_for_by_name_and_only_as_wide_as_the_cpu() {
        assert_eq!(Isa::parse(None, Isa::Avx2), Ok(Isa::Avx2));
        assert_eq!(Isa::parse(Some("avx2"), Isa::Avx512), Ok(Isa::Avx2));
        assert_eq!(Isa::parse(Some("baseline"), Isa::Avx2), Ok(Isa::Baseline));
        let wider = Isa::parse(Some("avx512"), Isa::Avx2).unwrap_err();
        assert!(wider.contains("at most avx2"), "{wider}");
        let unknown = Isa::parse(Some("sse"), Isa::Avx512).unwrap_err();
        assert!(
            unknown.contains("\"sse\"") && unknown.contains("expected avx512, avx2 or baseline"),
            "{unknown}"
        );
    }

    #[test]
    fn attention_of_one_query_is_a_softmax_average() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (dh, stride, keys) = (8, 24, 5);
        let q = random(dh, &mut rng);
        let (k, v) = (random(keys * stride, &mut rng), random(keys * stride, &mut rng));
        let mut w = vec![0.0; keys];
        let mut y = vec![0.0; dh];
        attend(&q, &k, &v, stride, keys, 0.5, &mut w, &mut y);
        let s: Vec<f64> = (0..keys)
            .map(|j| 0.5 * (0..dh).map(|i| q[i] as f64 * k[j * stride + i] as f64).sum::<f64>())
            .collect();
        let z: f64 = s.iter().map(|x| x.exp()).sum();
        for i in 0..dh {
            let want: f64 = (0..keys).map(|j| s[j].exp() / z * v[j * stride + i] as f64).sum();
            assert!((y[i] as f64 - want).abs() < 1e-5, "{} vs {want}", y[i]);
        }
    }
}
