//! Where the computation runs: Burn's CPU backend (Flex, always built), its wgpu
//! backend (Vulkan, Metal, DirectX; the `wgpu` feature) or its CUDA backend (the `cuda`
//! feature).
//!
//! attnkit's own CPU operations (the attention softmax with its backward pass, the fused
//! Aaren and recurrent scans, the tiled inference kernels) are written for the CPU
//! backend's f32 tensors. On every other backend, and for other float types, each module
//! takes its composed form instead: the same mathematics from Burn's tensor operations,
//! tested against the fused form within f32 rounding. [`uses_cpu_kernels`] is that
//! choice.
//!
//! ```
//! use attnkit::device::ComputeDevice;
//!
//! let cpu: ComputeDevice = "cpu".parse()?;
//! assert_eq!(cpu, ComputeDevice::Cpu);
//! assert_eq!("cuda:1".parse::<ComputeDevice>()?, ComputeDevice::Cuda(1));
//! assert_eq!("wgpu".parse::<ComputeDevice>()?.to_string(), "wgpu");
//! let device = cpu.init()?;
//! assert!(attnkit::device::is_cpu_backend(&device));
//! # Ok::<(), attnkit::AttnError>(())
//! ```

use burn::backend::DispatchDevice;
#[cfg(feature = "wgpu")]
use burn::prelude::DeviceKind;
use burn::prelude::*;

use crate::error::{AttnError, Result};

/// A device named on the command line: `cpu`, `wgpu`, `wgpu:N`, `wgpu:cpu` or
/// `cuda[:N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ComputeDevice {
    /// Burn's CPU backend (Flex), with attnkit's CPU kernels. The default.
    #[default]
    Cpu,
    /// Burn's wgpu backend on the adapter wgpu prefers (a discrete GPU first).
    Wgpu,
    /// Burn's wgpu backend on discrete GPU number N.
    WgpuDiscrete(usize),
    /// Burn's wgpu backend on a software adapter such as Mesa's lavapipe (Vulkan on the
    /// CPU): wgpu never picks one by itself, so it is named.
    WgpuSoftware,
    /// Burn's CUDA backend on GPU number N.
    Cuda(usize),
}

impl std::fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Cpu => write!(f, "cpu"),
            Self::Wgpu => write!(f, "wgpu"),
            Self::WgpuDiscrete(n) => write!(f, "wgpu:{n}"),
            Self::WgpuSoftware => write!(f, "wgpu:cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl std::str::FromStr for ComputeDevice {
    type Err = AttnError;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            AttnError::Config(format!(
                "device must be `cpu`, `wgpu`, `wgpu:N`, `wgpu:cpu`, `cuda` or `cuda:N`, got `{s}`"
            ))
        };
        let (name, index) = match s.split_once(':') {
            Some((name, index)) => (name, Some(index)),
            None => (s, None),
        };
        let number = |i: &str| i.parse::<usize>().map_err(|_| bad());
        match (name, index) {
            ("cpu", None) => Ok(Self::Cpu),
            ("wgpu", None) => Ok(Self::Wgpu),
            ("wgpu", Some("cpu")) => Ok(Self::WgpuSoftware),
            ("wgpu", Some(i)) => Ok(Self::WgpuDiscrete(number(i)?)),
            ("cuda", None) => Ok(Self::Cuda(0)),
            ("cuda", Some(i)) => Ok(Self::Cuda(number(i)?)),
            _ => Err(bad()),
        }
    }
}

impl ComputeDevice {
    /// The Burn device (without autodiff; training adds it).
    ///
    /// # Errors
    ///
    /// [`AttnError::Config`] when this build lacks the backend: it names the cargo
    /// feature to build with.
    pub fn init(self) -> Result<Device> {
        let missing = |feature: &str| {
            AttnError::Config(format!(
                "device `{self}` needs attnkit built with the `{feature}` feature \
                 (cargo build --release --features {feature})"
            ))
        };
        match self {
            Self::Cpu => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(DeviceKind::DefaultDevice)),
            #[cfg(feature = "wgpu")]
            Self::WgpuDiscrete(n) => Ok(Device::wgpu(DeviceKind::DiscreteGpu(n))),
            #[cfg(feature = "wgpu")]
            Self::WgpuSoftware => Ok(Device::wgpu(DeviceKind::Cpu)),
            #[cfg(not(feature = "wgpu"))]
            Self::Wgpu | Self::WgpuDiscrete(_) | Self::WgpuSoftware => Err(missing("wgpu")),
            #[cfg(feature = "cuda")]
            Self::Cuda(n) => Ok(Device::cuda(n)),
            #[cfg(not(feature = "cuda"))]
            Self::Cuda(_) => Err(missing("cuda")),
        }
    }

    /// The backends this build has, as `--device` spells them.
    pub fn available() -> Vec<&'static str> {
        let mut names = vec!["cpu"];
        if cfg!(feature = "wgpu") {
            names.extend(["wgpu", "wgpu:N", "wgpu:cpu"]);
        }
        if cfg!(feature = "cuda") {
            names.extend(["cuda", "cuda:N"]);
        }
        names
    }
}

/// Whether `device` (with or without autodiff) is Burn's CPU backend, the one attnkit's
/// CPU kernels are registered for.
pub fn is_cpu_backend(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// Whether a computation on `tensor` takes attnkit's CPU kernels (f32 on the CPU
/// backend) rather than the composed form (every other backend and float type).
pub fn uses_cpu_kernels<const D: usize>(tensor: &Tensor<D>) -> bool {
    tensor.dtype() == burn::tensor::DType::F32 && is_cpu_backend(&tensor.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for name in ["cpu", "wgpu", "wgpu:2", "wgpu:cpu", "cuda:0", "cuda:3"] {
            let d: ComputeDevice = name.parse().unwrap();
            assert_eq!(d.to_string(), name);
        }
        assert_eq!(
            "cuda".parse::<ComputeDevice>().unwrap(),
            ComputeDevice::Cuda(0)
        );
        for bad in ["gpu", "cuda:x", "cpu:1", "wgpu:", "", "cuda:-1"] {
            let err = bad.parse::<ComputeDevice>().unwrap_err().to_string();
            assert!(err.contains(&format!("got `{bad}`")), "{err}");
        }
    }

    #[test]
    fn the_cpu_backend_takes_the_kernels_for_f32_only() {
        let device = ComputeDevice::Cpu.init().unwrap();
        assert!(is_cpu_backend(&device));
        assert!(is_cpu_backend(&device.clone().autodiff()));
        let x = Tensor::<2>::zeros([2, 3], &device);
        assert!(uses_cpu_kernels(&x));
        assert!(!uses_cpu_kernels(&x.cast(burn::tensor::DType::F64)));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_missing_backend_names_its_feature() {
        let err = ComputeDevice::Cuda(1).init().unwrap_err().to_string();
        assert!(err.contains("`cuda` feature"), "{err}");
        assert!(err.contains("cuda:1"), "{err}");
    }
}
