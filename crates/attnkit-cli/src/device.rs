//! `--device`: which Burn backend a command computes on.

use anyhow::{Result, anyhow};
use attnkit::device::ComputeDevice;
use burn::prelude::Device;
use clap::Args;

/// The `--device` option of every command that computes.
#[derive(Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Where to compute: `cpu` (Burn's CPU backend with attnkit's kernels), or in a build
    /// with `--features wgpu` / `--features cuda`: `wgpu` (the preferred GPU), `wgpu:N`
    /// (discrete GPU N), `wgpu:cpu` (a software Vulkan device such as lavapipe), `cuda`,
    /// `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: ComputeDevice,
}

impl DeviceArgs {
    /// The Burn device (no autodiff).
    pub fn init(&self) -> Result<Device> {
        self.device.init().map_err(|e| {
            anyhow!(
                "{e}; this build has --device {}",
                ComputeDevice::available().join(", ")
            )
        })
    }

    /// Whether this is the CPU backend.
    pub fn is_cpu(&self) -> bool {
        self.device == ComputeDevice::Cpu
    }
}
