//! `--device` strings: which Burn backend and which accelerator a command runs on.

use burn::tensor::Device;

/// The backends this build of r1 was compiled with.
pub fn compiled_backends() -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg!(feature = "flex") {
        out.push("cpu");
    }
    if cfg!(feature = "cuda") {
        out.push("cuda[:N]");
    }
    if cfg!(feature = "wgpu") {
        out.push("wgpu");
    }
    if cfg!(feature = "tch") {
        out.push("tch");
        out.push("tch-cuda[:N]");
    }
    out
}

fn missing(feature: &str, name: &str) -> String {
    format!(
        "device `{name}` needs r1 built with the `{feature}` feature (cargo build --release --features {feature}); \
         this build has: {}",
        compiled_backends().join(", ")
    )
}

fn index(name: &str, rest: Option<&str>) -> Result<usize, String> {
    match rest {
        None | Some("") => Ok(0),
        Some(n) => n
            .parse()
            .map_err(|_| format!("device `{name}`: `{n}` is not a device index")),
    }
}

/// Parses `cpu` (Burn's pure-Rust flex backend), `cuda[:N]`, `wgpu`, `tch` or `tch-cuda[:N]`.
pub fn parse_device(name: &str) -> Result<Device, String> {
    let (kind, rest) = match name.split_once(':') {
        Some((k, r)) => (k, Some(r)),
        None => (name, None),
    };
    match kind {
        "cpu" | "flex" => {
            #[cfg(feature = "flex")]
            {
                Ok(Device::flex())
            }
            #[cfg(not(feature = "flex"))]
            {
                Err(missing("flex", name))
            }
        }
        "cuda" => {
            let i = index(name, rest)?;
            #[cfg(feature = "cuda")]
            {
                Ok(Device::cuda(i))
            }
            #[cfg(not(feature = "cuda"))]
            {
                let _ = i;
                Err(missing("cuda", name))
            }
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            {
                Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
            }
            #[cfg(not(feature = "wgpu"))]
            {
                Err(missing("wgpu", name))
            }
        }
        "tch" | "libtorch" | "tch-cuda" => {
            let i = index(name, rest)?;
            #[cfg(feature = "tch")]
            {
                if kind == "tch-cuda" {
                    Ok(Device::libtorch_cuda(i))
                } else {
                    Ok(Device::libtorch())
                }
            }
            #[cfg(not(feature = "tch"))]
            {
                let _ = i;
                Err(missing("tch", name))
            }
        }
        _ => Err(format!(
            "unknown device `{name}`; use one of: {}",
            compiled_backends().join(", ")
        )),
    }
}
