//! With the `cuda` feature: compiles `kernels/*.cu` to PTX with nvcc (which candle's own CUDA
//! kernels need too), for `nn::softplus` to load. Without it, nothing.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: [&str; 1] = ["softplus"];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    println!("cargo::rerun-if-env-changed=CUDA_HOME");
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let nvcc = std::env::var_os("CUDA_HOME")
        .map(|home| PathBuf::from(home).join("bin").join("nvcc"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    // PTX for this compute capability JIT-compiles on this GPU and every later one:
    // CUDA_COMPUTE_CAP ("80" or "8.0") as candle's kernels take it, else the oldest GPU
    // nvidia-smi reports, else 75 (Turing, the oldest CUDA 13 supports). On an older GPU the
    // kernel fails to load and `nn::softplus` falls back to candle's element-wise ops.
    let cap = match std::env::var("CUDA_COMPUTE_CAP") {
        Ok(cap) => cap.replace('.', ""),
        Err(_) => oldest_gpu_capability().unwrap_or_else(|| "75".into()),
    };
    for name in KERNELS {
        let src = format!("kernels/{name}.cu");
        println!("cargo::rerun-if-changed={src}");
        let out = out_dir.join(format!("{name}.ptx"));
        let status = Command::new(&nvcc)
            .args(["--ptx", "-O3", &format!("--gpu-architecture=compute_{cap}")])
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{} failed on {src} ({s})", nvcc.display()),
            Err(e) => panic!(
                "cannot run {} for {src}: {e} (the cuda feature needs the CUDA toolkit; set CUDA_HOME)",
                nvcc.display()
            ),
        }
    }
}

/// The lowest compute capability of this machine's GPUs (`nvidia-smi`), e.g. "86".
fn oldest_gpu_capability() -> Option<String> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=compute_cap", "--format=csv,noheader"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines()
        .filter_map(|l| {
            let cap = l.trim().replace('.', "");
            cap.parse::<u32>().ok().map(|n| (n, cap))
        })
        .min()
        .map(|(_, cap)| cap)
}
