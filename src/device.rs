//! Choosing the candle device for the embedding networks.

use candle_core::Device;

/// The device candle runs on: a CUDA or Metal GPU when the binary was built with the
/// `cuda`/`metal` feature and one is present (unless `force_cpu`), else the CPU.
pub fn select_device(force_cpu: bool) -> Device {
    if force_cpu {
        return Device::Cpu;
    }
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = Device::new_metal(0) {
        return d;
    }
    Device::Cpu
}

/// A short description such as `CPU (2 threads)` or `CUDA GPU 0`.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!("CPU ({} threads)", candle_core::utils::get_num_threads()),
        Device::Cuda(_) => "CUDA GPU 0".to_string(),
        Device::Metal(_) => "Metal GPU 0".to_string(),
    }
}
