//! Where the models run: `cpu` (default) or `cuda[:N]` when built with the `cuda` feature.

use candle_core::{DType, Device, Tensor};

/// Parses `cpu`, `cuda` or `cuda:N` into a device.
pub fn parse(spec: &str) -> Result<Device, String> {
    let cuda_index = match spec {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => return Err(format!("device {spec:?} is not one of cpu, cuda, cuda:N")),
        },
    };
    if !cfg!(feature = "cuda") {
        return Err(format!(
            "device {spec:?} needs CUDA, but this selfplay was built without it (rebuild with --features cuda)"
        ));
    }
    // One explicit stream for every thread: candle's `new_cuda` gives each host thread CUDA's
    // per-thread default stream, and kernels queued from two threads on two streams are not
    // ordered against each other (a gradient summed before the worker that computes it is done).
    Device::new_cuda_with_stream(cuda_index).map_err(|e| format!("device {spec:?}: {e}"))
}

/// The values of scalar tensors, as `f64`, read back in one transfer.
///
/// On a GPU every read-back waits for all the work queued before it; a training step reads its
/// loss, gradient norm and statistics once, together, instead of one wait per value.
pub fn read_scalars(scalars: &[Tensor]) -> candle_core::Result<Vec<f64>> {
    if scalars.is_empty() {
        return Ok(Vec::new());
    }
    let wide = scalars
        .iter()
        .map(|s| {
            if s.elem_count() != 1 {
                candle_core::bail!("read_scalars: a tensor of shape {:?} is not a scalar", s.dims());
            }
            s.to_dtype(DType::F64)?.reshape(1)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::cat(&wide, 0)?.to_vec1::<f64>()
}

/// Keeps freed memory in the process instead of handing it back to the kernel at once.
///
/// Training allocates and frees the same few hundred tensors every step, many above glibc's
/// default 128 KiB `mmap` threshold or big enough to trim the heap when freed: each step then
/// maps, zero-fills and unmaps the same pages again (a quarter of a training step, measured in
/// `bench/NOTES.md`). Raising the thresholds lets the allocator reuse them. Call once, early;
/// does nothing where the allocator is not glibc's.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; it is called before any other thread is
    // started by the caller, and with values glibc documents (32 MiB is its largest mmap
    // threshold on 64-bit targets).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// Fixes the process's threads: `RAYON_NUM_THREADS` if set, else one per physical core (candle's
/// own default), written to `RAYON_NUM_THREADS`; and candle's element-wise ops on the calling
/// thread (`CANDLE_NUM_THREADS=1` unless set).
///
/// candle looks the count up for every matrix product and, without the variable, reads
/// `/proc/cpuinfo` each time to count physical cores: a file read per product, which a decoding
/// step of a small model notices. Training runs parts of a batch side by side
/// ([`crate::grads_in_parallel`]); candle's element-wise pool serves one caller at a time, so
/// with it the parts would queue for it (measured: 50 ms a step on the element-wise ops' own
/// threads against 130 ms through the pool, `bench/NOTES.md`). Call once, at the start of `main`,
/// before any thread exists (setting a variable while another thread reads the environment is
/// undefined behaviour).
pub fn fix_thread_count() {
    let set = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
    if set("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", num_cpus::get_physical().max(1).to_string());
    }
    if set("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_read_in_order_and_exactly() {
        let dev = Device::Cpu;
        let a = Tensor::new(0.1f32, &dev).unwrap();
        let b = Tensor::new(&[[2.5f64]], &dev).unwrap();
        let c = Tensor::new(&[-3i64], &dev).unwrap();
        let values = read_scalars(&[a, b, c]).unwrap();
        assert_eq!(values, vec![f64::from(0.1f32), 2.5, -3.0]);
        assert!(read_scalars(&[]).unwrap().is_empty());
        let wide = Tensor::new(&[1f32, 2.0], &dev).unwrap();
        assert!(read_scalars(&[wide]).unwrap_err().to_string().contains("not a scalar"));
    }

    #[test]
    fn device_specs() {
        assert!(parse("cpu").unwrap().is_cpu());
        assert!(parse("gpu").unwrap_err().contains("not one of cpu, cuda, cuda:N"));
        assert!(parse("cuda:x").is_err());
        if !cfg!(feature = "cuda") {
            assert!(parse("cuda:1").unwrap_err().contains("built without it"));
        }
    }
}
