//! The linear layer and the bias add, with their products by gemm.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType};
use num_traits::Float;

use super::cpu::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{assert_close, numeric_grad, randn};
    use candle_core::Var;

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
}
