//! The fused CPU form of the Aaren layer, for inference.
//!
//! Burn's forms pay per operation: the iterative cell launches a handful of tensor
//! operations per token, the parallel scan ⌈log₂ L⌉ whole-sequence passes that each
//! read and write every element. On a CPU the recurrence itself is cheap — per token and
//! head, d multiply-adds and one exponential — so the fused form computes scores and
//! values with two matrix products, then runs the exact recurrence
//! ([`scan_head`]) once over each (sequence, head)'s contiguous scores and values, the
//! pairs spread over threads. Memory traffic is one read of each input and one write of
//! each output.

use attnkit_kernels::aaren::scan_head;
use attnkit_kernels::real::Real;
use burn::prelude::*;
use burn::tensor::{DType, Element};
use rayon::prelude::*;

use super::state::AarenState;
use crate::error::{AttnError, Result};

fn host<T: Element, const D: usize>(t: Tensor<D>) -> Result<Vec<T>> {
    t.try_into_vec_as::<T>()
        .map_err(|e| AttnError::Config(format!("reading a tensor back: {e:?}")))
}

/// Runs the recurrence for every (b, h) pair on the host in precision `T`.
///
/// - `s`: `[B, H, L]` scores (−inf where masked); `v`: `[B, H, L, d]`
/// - returns outputs `[B, H, L, d]` and the state after the last token
fn run<T: Real + Element + Send + Sync>(
    s: Tensor<3>,
    v: Tensor<4>,
    state: AarenState,
) -> Result<(Tensor<4>, AarenState)> {
    let device = s.device();
    let [b, h, l] = s.dims();
    let d = v.dims()[3];
    let scores = host::<T, 3>(s)?;
    let values = host::<T, 4>(v)?;
    let (m, c, a) = (
        host::<T, 2>(state.m)?,
        host::<T, 2>(state.c)?,
        host::<T, 3>(state.a)?,
    );
    let mut states: Vec<T> = Vec::with_capacity(b * h * (d + 2));
    for i in 0..b * h {
        states.push(m[i]);
        states.push(c[i]);
        states.extend_from_slice(&a[i * d..(i + 1) * d]);
    }
    let mut out = vec![T::ZERO; b * h * l * d];
    if l > 0 && d > 0 {
        out.par_chunks_mut(l * d)
            .zip(states.par_chunks_mut(d + 2))
            .enumerate()
            .try_for_each(|(i, (o, st))| {
                scan_head(
                    &scores[i * l..(i + 1) * l],
                    &values[i * l * d..(i + 1) * l * d],
                    st,
                    o,
                )
            })
            .map_err(|e| AttnError::Config(format!("fused Aaren scan: {e:?}")))?;
    }
    let (mut m, mut c, mut a) = (Vec::new(), Vec::new(), Vec::new());
    for st in states.chunks_exact(d + 2) {
        m.push(st[0]);
        c.push(st[1]);
        a.extend_from_slice(&st[2..]);
    }
    let state = AarenState {
        m: Tensor::from_data(TensorData::new(m, [b, h]), &device),
        c: Tensor::from_data(TensorData::new(c, [b, h]), &device),
        a: Tensor::from_data(TensorData::new(a, [b, h, d]), &device),
    };
    Ok((
        Tensor::from_data(TensorData::new(out, [b, h, l, d]), &device),
        state,
    ))
}

/// Every prefix output of scores `s` `[B, H, L]` and values `v` `[B, H, L, d]`, masked
/// positions (`mask` `[B, L]`, `true` = padding) skipped, continuing from `state`.
pub(crate) fn scan_fused(
    s: Tensor<3>,
    v: Tensor<4>,
    mask: Option<&Tensor<2, Bool>>,
    state: AarenState,
) -> Result<(Tensor<4>, AarenState)> {
    if s.is_tracked() || v.is_tracked() {
        return Err(AttnError::Config(
            "Aaren mode `fused` computes on the host and carries no gradients; train with \
             `parallel` (or `iterative`) and switch to `fused` for inference"
                .into(),
        ));
    }
    let [b, h, l] = s.dims();
    let s = match mask {
        Some(mask) => {
            let m = mask.clone().unsqueeze_dim::<3>(1).expand([b, h, l]);
            s.mask_fill(m, f32::NEG_INFINITY)
        }
        None => s,
    };
    if s.dtype() == DType::F64 {
        run::<f64>(s, v, state)
    } else {
        run::<f32>(s, v, state)
    }
}
