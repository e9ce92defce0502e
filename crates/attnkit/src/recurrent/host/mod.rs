//! The recurrent layers' host kernels: a whole layer (every step, both directions) in
//! one call, forward and backward through time, on f32 buffers.
//!
//! Layouts (B sequences, L steps, D directions, H hidden units, G gates):
//!
//! - input projections `x_proj` `[B, L, D·G·H]`: W_ih·x + b_ih of every direction side
//!   by side, one matrix product for the whole layer;
//! - weights `w_hh` `[D, G·H, H]`, biases `b_hh` `[D, G·H]`;
//! - output `[B, L + S, D·H]`: the hidden state at every position (zero at padding),
//!   then S = 1 (h_n) or 2 (h_n, c_n for LSTM) more rows with the final states — one
//!   tensor, so that autodiff sees one operation;
//! - kept for the backward pass: `[B, D, L, saved_len]` (see [`cells`]).
//!
//! Work is split into tasks of a block of sequences, one per thread; a task steps its
//! block through time in every direction, one packed product per step and direction,
//! and writes straight into its rows of every output (all batch-major, so a block's
//! rows are one slice and nothing is transposed afterwards). Backward, each task also
//! sums its share of ∂L/∂W_hh = Σ_t δ_tᵀ·h_{t−1} and ∂L/∂b_hh = Σ_t δ_t as it goes,
//! so the per-step gradients are never stored.

pub(crate) mod cells;
pub(crate) mod gemm;

use std::sync::Mutex;

use rayon::prelude::*;

use self::cells::saved_len;
use self::gemm::{MR, Panels, Start, multiply, pack_rows};
use crate::recurrent::RecurrentKind;

/// The sizes of one layer's scan.
#[derive(Debug, Clone)]
pub(crate) struct ScanShape {
    pub(crate) kind: RecurrentKind,
    pub(crate) batch: usize,
    pub(crate) len: usize,
    pub(crate) dirs: usize,
    pub(crate) hidden: usize,
}

impl ScanShape {
    /// G·H: the width of one direction's projections.
    pub(crate) fn gate_width(&self) -> usize {
        self.kind.gates() * self.hidden
    }

    /// Rows after the L positions in the output: h_n, and c_n for LSTM.
    pub(crate) fn final_rows(&self) -> usize {
        if self.kind == RecurrentKind::Lstm {
            2
        } else {
            1
        }
    }

    /// Numbers kept for the backward pass per (sequence, direction, step).
    pub(crate) fn saved_len(&self) -> usize {
        saved_len(self.kind, self.hidden)
    }

    /// Sequences per task: one block per thread.
    fn block(&self) -> usize {
        let threads = rayon::current_num_threads().max(1);
        self.batch.div_ceil(threads).max(1)
    }

    /// Position of step `k` of a sequence of length `len_b` in direction `d`, if it has
    /// one: forward runs 0..len, reverse from the last real token down to 0.
    #[inline(always)]
    fn position(&self, d: usize, len_b: usize, k: usize) -> Option<usize> {
        (k < len_b).then(|| if d == 1 { len_b - 1 - k } else { k })
    }
}

/// Buffers of kept numbers whose backward pass is done, for the next forward passes: tens
/// of megabytes per layer and step, which fresh from the allocator pay their page faults
/// again every step (measured: a fifth of a BiLSTM training step went to the kernel
/// zeroing fresh pages).
static SPARE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// Spare buffers kept at most (one per stacked layer in flight, typically).
const SPARES: usize = 8;

/// A buffer of `n` numbers for the kept values. Its contents are whatever a previous
/// pass left: the forward pass writes every (sequence, direction, step) that has a
/// position, and the backward pass reads only those.
fn kept_buffer(n: usize) -> Vec<f32> {
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    let fit = (0..spare.len())
        .filter(|&i| spare[i].capacity() >= n)
        .min_by_key(|&i| spare[i].capacity());
    match fit {
        Some(i) => {
            let mut v = spare.swap_remove(i);
            v.truncate(n);
            v.resize(n, 0.0);
            v
        }
        None => vec![0.0; n],
    }
}

/// Hands a kept buffer back once its backward pass is done.
pub(crate) fn return_kept(v: Vec<f32>) {
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    if spare.len() < SPARES {
        spare.push(v);
    }
}

/// What the forward pass gives: the output and, when asked, the kept numbers.
pub(crate) struct ScanForward {
    /// `[B, L + S, D·H]`.
    pub(crate) output: Vec<f32>,
    /// `[B, D, L, saved_len]`, empty when not kept.
    pub(crate) saved: Vec<f32>,
}

/// Runs a layer forward (see the module docs for the layouts); `lengths` has B entries
/// of at most L.
pub(crate) fn forward(
    shape: &ScanShape,
    x_proj: &[f32],
    w_hh: &[f32],
    b_hh: &[f32],
    lengths: &[usize],
    keep: bool,
) -> ScanForward {
    let (b, l, dirs, h) = (shape.batch, shape.len, shape.dirs, shape.hidden);
    let (gw, s) = (shape.gate_width(), shape.saved_len());
    let weights: Vec<Panels> = (0..dirs)
        .map(|d| Panels::transposed(&w_hh[d * gw * h..(d + 1) * gw * h], gw, h))
        .collect();
    let biases: Vec<Vec<f32>> = (0..dirs)
        .map(|d| {
            let mut v = b_hh[d * gw..(d + 1) * gw].to_vec();
            v.resize(weights[d].padded_n(), 0.0);
            v
        })
        .collect();
    let out_rows = (l + shape.final_rows()) * dirs * h;
    let mut output = vec![0.0f32; b * out_rows];
    let mut saved = if keep {
        kept_buffer(b * dirs * l * s)
    } else {
        Vec::new()
    };
    let block = shape.block();
    let saved_block = if keep { block * dirs * l * s } else { 0 };
    let arch = pulp::Arch::new();
    let run = |(i, (out, kept)): (usize, (&mut [f32], &mut [f32]))| {
        arch.dispatch(ForwardTask {
            shape,
            x_proj,
            weights: &weights,
            biases: &biases,
            lengths,
            first: i * block,
            out,
            saved: kept,
        });
    };
    if keep {
        output
            .par_chunks_mut(block * out_rows)
            .zip(saved.par_chunks_mut(saved_block))
            .enumerate()
            .for_each(run);
    } else {
        output
            .par_chunks_mut(block * out_rows)
            .map(|o| (o, &mut [][..]))
            .enumerate()
            .for_each(run);
    }
    ScanForward { output, saved }
}

/// One forward task, run through `pulp`'s dispatch: a struct rather than a closure so
/// that its body (all `#[inline(always)]`) is compiled with the CPU's vector and FMA
/// instructions — a closure is a function of its own, compiled without them, and its
/// `mul_add` calls become calls to the software `fmaf`.
struct ForwardTask<'a> {
    shape: &'a ScanShape,
    x_proj: &'a [f32],
    weights: &'a [Panels],
    biases: &'a [Vec<f32>],
    lengths: &'a [usize],
    /// The block's first sequence.
    first: usize,
    /// The block's rows of the output, `[rows, L + S, D·H]`.
    out: &'a mut [f32],
    /// Its rows of the kept numbers, `[rows, D, L, saved_len]`, or empty.
    saved: &'a mut [f32],
}

impl pulp::WithSimd for ForwardTask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        forward_task(self);
    }
}

/// One task: its block of sequences through every step of every direction.
#[inline(always)]
fn forward_task(task: ForwardTask<'_>) {
    let ForwardTask {
        shape,
        x_proj,
        weights,
        biases,
        lengths,
        first,
        out,
        saved,
    } = task;
    let (l, dirs, h) = (shape.len, shape.dirs, shape.hidden);
    let (gw, s) = (shape.gate_width(), shape.saved_len());
    let out_rows = l + shape.final_rows();
    let rows = out.len() / (out_rows * dirs * h);
    let padded = rows.div_ceil(MR) * MR;
    let ldc = weights[0].padded_n();
    // Per direction: h and c of every row of the block.
    let mut hs = vec![0.0f32; dirs * padded * h];
    let mut cs = vec![0.0f32; dirs * padded * h];
    let mut packed = vec![0.0f32; padded * h];
    let mut hp = vec![0.0f32; padded * ldc];
    let mut scratch = vec![0.0f32; s];
    let lens = &lengths[first..first + rows];
    let steps = lens.iter().copied().max().unwrap_or(0);
    for k in 0..steps {
        for d in 0..dirs {
            let state = &mut hs[d * padded * h..(d + 1) * padded * h];
            pack_rows(padded, h, |i, p| state[i * h + p], &mut packed);
            multiply(
                &packed,
                padded,
                &weights[d],
                Start::Row(&biases[d]),
                &mut hp,
                ldc,
            );
            for (r, &len_r) in lens.iter().enumerate() {
                let Some(t) = shape.position(d, len_r, k) else {
                    continue;
                };
                let at = ((first + r) * l + t) * dirs + d;
                let keep = if saved.is_empty() {
                    &mut scratch[..]
                } else {
                    let at = ((r * dirs + d) * l + t) * s;
                    &mut saved[at..at + s]
                };
                let h_r = &mut state[r * h..(r + 1) * h];
                cells::step(
                    shape.kind,
                    &x_proj[at * gw..(at + 1) * gw],
                    &hp[r * ldc..r * ldc + gw],
                    h_r,
                    &mut cs[(d * padded + r) * h..(d * padded + r + 1) * h],
                    keep,
                );
                let at = ((r * out_rows + t) * dirs + d) * h;
                out[at..at + h].copy_from_slice(h_r);
            }
        }
    }
    for r in 0..rows {
        for d in 0..dirs {
            let from = (d * padded + r) * h;
            let at = ((r * out_rows + l) * dirs + d) * h;
            out[at..at + h].copy_from_slice(&hs[from..from + h]);
            if shape.final_rows() == 2 {
                let at = ((r * out_rows + l + 1) * dirs + d) * h;
                out[at..at + h].copy_from_slice(&cs[from..from + h]);
            }
        }
    }
}

/// What the backward pass gives.
pub(crate) struct ScanBackward {
    /// ∂L/∂x_proj, `[B, L, D·G·H]` (zero at padding).
    pub(crate) grad_x_proj: Vec<f32>,
    /// ∂L/∂w_hh, `[D, G·H, H]`.
    pub(crate) grad_w_hh: Vec<f32>,
    /// ∂L/∂b_hh, `[D, G·H]`.
    pub(crate) grad_b_hh: Vec<f32>,
}

/// Backpropagation through time: from ∂L/∂output `[B, L + S, D·H]` (the final-state
/// rows included) and the numbers the forward pass kept.
pub(crate) fn backward(
    shape: &ScanShape,
    grad: &[f32],
    saved: &[f32],
    w_hh: &[f32],
    lengths: &[usize],
) -> ScanBackward {
    let (b, l, dirs, h) = (shape.batch, shape.len, shape.dirs, shape.hidden);
    let (gw, s) = (shape.gate_width(), shape.saved_len());
    let weights: Vec<Panels> = (0..dirs)
        .map(|d| Panels::rows(&w_hh[d * gw * h..(d + 1) * gw * h], gw, h))
        .collect();
    let mut grad_x_proj = vec![0.0f32; b * l * dirs * gw];
    let block = shape.block();
    let arch = pulp::Arch::new();
    // Each task's ∂L/∂w_hh `[D, G·H (padded), H (padded)]` and ∂L/∂b_hh `[D, G·H]`.
    let partials: Vec<(Vec<f32>, Vec<f32>)> = grad_x_proj
        .par_chunks_mut(block * l * dirs * gw)
        .enumerate()
        .map(|(i, dx)| {
            let first = i * block;
            let rows = dx.len() / (l * dirs * gw);
            arch.dispatch(BackwardTask {
                shape,
                grad,
                saved: &saved[first * dirs * l * s..(first + rows) * dirs * l * s],
                weights: &weights,
                lengths,
                first,
                dx,
            })
        })
        .collect();
    let (gw_pad, h_pad) = (gw.div_ceil(MR) * MR, weights[0].padded_n());
    let mut grad_w_hh = vec![0.0f32; dirs * gw * h];
    let mut grad_b_hh = vec![0.0f32; dirs * gw];
    for (pw, pb) in &partials {
        for d in 0..dirs {
            for j in 0..gw {
                let from = (d * gw_pad + j) * h_pad;
                let to = (d * gw + j) * h;
                for (a, &v) in grad_w_hh[to..to + h].iter_mut().zip(&pw[from..from + h]) {
                    *a += v;
                }
            }
        }
        for (a, &v) in grad_b_hh.iter_mut().zip(pb) {
            *a += v;
        }
    }
    ScanBackward {
        grad_x_proj,
        grad_w_hh,
        grad_b_hh,
    }
}

/// One backward task, dispatched as [`ForwardTask`] is.
struct BackwardTask<'a> {
    shape: &'a ScanShape,
    grad: &'a [f32],
    /// The block's kept numbers, `[rows, D, L, saved_len]`.
    saved: &'a [f32],
    weights: &'a [Panels],
    lengths: &'a [usize],
    first: usize,
    /// The block's rows of ∂L/∂x_proj, `[rows, L, D·G·H]`.
    dx: &'a mut [f32],
}

impl pulp::WithSimd for BackwardTask<'_> {
    type Output = (Vec<f32>, Vec<f32>);

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> Self::Output {
        backward_task(self)
    }
}

/// One task backward: its block of sequences from the last step to the first. Returns
/// its share of ∂L/∂w_hh (padded, `[D, G·H↑, H↑]`) and ∂L/∂b_hh (`[D, G·H]`).
#[inline(always)]
fn backward_task(task: BackwardTask<'_>) -> (Vec<f32>, Vec<f32>) {
    let BackwardTask {
        shape,
        grad,
        saved,
        weights,
        lengths,
        first,
        dx,
    } = task;
    let (l, dirs, h) = (shape.len, shape.dirs, shape.hidden);
    let (gw, s) = (shape.gate_width(), shape.saved_len());
    let out_rows = l + shape.final_rows();
    let rows = dx.len() / (l * dirs * gw);
    let padded = rows.div_ceil(MR) * MR;
    let gw_pad = gw.div_ceil(MR) * MR;
    let ldc = weights[0].padded_n();
    let at = |i: usize, t: usize, d: usize| ((i * out_rows + t) * dirs + d) * h;
    // Per direction, the gradients reaching h and c from later steps: first those of
    // h_n and c_n.
    let mut dh = vec![0.0f32; dirs * padded * h];
    let mut dc = vec![0.0f32; dirs * padded * h];
    for d in 0..dirs {
        for r in 0..rows {
            let to = (d * padded + r) * h;
            let from = at(first + r, l, d);
            dh[to..to + h].copy_from_slice(&grad[from..from + h]);
            if shape.final_rows() == 2 {
                let from = at(first + r, l + 1, d);
                dc[to..to + h].copy_from_slice(&grad[from..from + h]);
            }
        }
    }
    // This step's ∂L/∂hp per row (zero for rows without a step) and the states it
    // started from: the operands of both products.
    let mut dhp = vec![0.0f32; padded * gw];
    let mut h_prev = Panels::new(padded, h, |_, _| 0.0);
    let mut prev_rows = vec![0.0f32; padded * h];
    let mut packed = vec![0.0f32; padded * gw.max(h)];
    let mut packed_t = vec![0.0f32; gw_pad * padded];
    let mut through_w = vec![0.0f32; padded * ldc];
    let mut grad_w = vec![0.0f32; dirs * gw_pad * ldc];
    let mut grad_b = vec![0.0f32; dirs * gw];
    let lens = &lengths[first..first + rows];
    let steps = lens.iter().copied().max().unwrap_or(0);
    for k in (0..steps).rev() {
        for d in 0..dirs {
            let dh_d = &mut dh[d * padded * h..(d + 1) * padded * h];
            let dc_d = &mut dc[d * padded * h..(d + 1) * padded * h];
            for (r, &len_r) in lens.iter().enumerate() {
                let row = &mut dhp[r * gw..(r + 1) * gw];
                let prev = &mut prev_rows[r * h..(r + 1) * h];
                let Some(t) = shape.position(d, len_r, k) else {
                    row.fill(0.0);
                    prev.fill(0.0);
                    continue;
                };
                let dh_r = &mut dh_d[r * h..(r + 1) * h];
                let g = at(first + r, t, d);
                for (a, &v) in dh_r.iter_mut().zip(&grad[g..g + h]) {
                    *a += v;
                }
                let kept = &saved[((r * dirs + d) * l + t) * s..((r * dirs + d) * l + t + 1) * s];
                let x = ((r * l + t) * dirs + d) * gw;
                cells::step_backward(
                    shape.kind,
                    kept,
                    dh_r,
                    &mut dc_d[r * h..(r + 1) * h],
                    &mut dx[x..x + gw],
                    row,
                );
                prev.copy_from_slice(&kept[s - h..]);
            }
            // ∂L/∂h_{t−1} += δ·W_hh.
            pack_rows(padded, gw, |i, p| dhp[i * gw + p], &mut packed);
            multiply(
                &packed,
                padded,
                &weights[d],
                Start::Zero,
                &mut through_w,
                ldc,
            );
            for r in 0..rows {
                let dh_r = &mut dh_d[r * h..(r + 1) * h];
                for (a, &v) in dh_r.iter_mut().zip(&through_w[r * ldc..r * ldc + h]) {
                    *a += v;
                }
            }
            // ∂L/∂W_hh += δᵀ·h_{t−1}, ∂L/∂b_hh += Σ δ.
            pack_rows(
                gw_pad,
                padded,
                |j, r| if j < gw { dhp[r * gw + j] } else { 0.0 },
                &mut packed_t,
            );
            h_prev.fill(|r, p| prev_rows[r * h + p]);
            let gw_d = &mut grad_w[d * gw_pad * ldc..(d + 1) * gw_pad * ldc];
            multiply(&packed_t, gw_pad, &h_prev, Start::Accumulate, gw_d, ldc);
            for row in dhp.chunks_exact(gw).take(rows) {
                for (a, &v) in grad_b[d * gw..(d + 1) * gw].iter_mut().zip(row) {
                    *a += v;
                }
            }
        }
    }
    (grad_w, grad_b)
}
