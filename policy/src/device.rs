//! Where the models run: `cpu` (default) or `cuda[:N]` when built with the `cuda` feature.

use candle_core::Device;

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
    Device::new_cuda(cuda_index).map_err(|e| format!("device {spec:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
