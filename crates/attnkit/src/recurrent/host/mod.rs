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
//! - kept for the backward pass: `[D, B, L, saved_len]` (see [`cells`]).
//!
//! Work is split into tasks of one direction and a block of sequences, so that both
//! directions (and, with one direction, halves of the batch) run on different threads;
//! each task steps its block through time with one packed product per step.

pub(crate) mod cells;
pub(crate) mod gemm;

use rayon::prelude::*;

use self::cells::saved_len;
use self::gemm::{MR, Panels, multiply, pack_rows};
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

    /// Numbers kept for the backward pass per (direction, sequence, step).
    pub(crate) fn saved_len(&self) -> usize {
        saved_len(self.kind, self.hidden)
    }

    /// One direction and a block of sequences per task: at least as many tasks as
    /// threads when the batch allows, blocks in (direction, first sequence) order.
    fn tasks(&self) -> Vec<(usize, usize, usize)> {
        let threads = rayon::current_num_threads().max(1);
        let per_dir = threads.div_ceil(self.dirs).clamp(1, self.batch.max(1));
        let rows = self.batch.div_ceil(per_dir).max(1);
        let mut tasks = Vec::new();
        for d in 0..self.dirs {
            let mut first = 0;
            while first < self.batch {
                let n = rows.min(self.batch - first);
                tasks.push((d, first, n));
                first += n;
            }
        }
        tasks
    }

    /// Position of step `k` of sequence `b` in direction `d`, if it has one: forward
    /// runs 0..len, reverse from its last real token down to 0.
    #[inline(always)]
    fn position(&self, d: usize, len_b: usize, k: usize) -> Option<usize> {
        (k < len_b).then(|| if d == 1 { len_b - 1 - k } else { k })
    }
}

/// What the forward pass gives: the output and, when asked, the kept numbers.
pub(crate) struct ScanForward {
    /// `[B, L + S, D·H]`.
    pub(crate) output: Vec<f32>,
    /// `[D, B, L, saved_len]`, empty when not kept.
    pub(crate) saved: Vec<f32>,
}

/// One task's share of the forward outputs.
struct ForwardPart<'a> {
    dir: usize,
    first: usize,
    rows: usize,
    /// `[rows, L, H]`.
    out: &'a mut [f32],
    /// `[rows, L, saved_len]` or empty.
    saved: &'a mut [f32],
    /// `[rows, H]` each.
    h_last: &'a mut [f32],
    c_last: &'a mut [f32],
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
    let gw = shape.gate_width();
    let s = shape.saved_len();
    let panels: Vec<Panels> = (0..dirs)
        .map(|d| Panels::transposed(&w_hh[d * gw * h..(d + 1) * gw * h], gw, h))
        .collect();
    let biases: Vec<Vec<f32>> = (0..dirs)
        .map(|d| {
            let mut v = b_hh[d * gw..(d + 1) * gw].to_vec();
            v.resize(panels[d].padded_n(), 0.0);
            v
        })
        .collect();
    let mut out = vec![0.0f32; dirs * b * l * h];
    let mut saved = vec![0.0f32; if keep { dirs * b * l * s } else { 0 }];
    let mut h_last = vec![0.0f32; dirs * b * h];
    let mut c_last = vec![0.0f32; dirs * b * h];
    let mut parts = Vec::new();
    {
        let (mut o, mut sv, mut hl, mut cl) = (
            &mut out[..],
            &mut saved[..],
            &mut h_last[..],
            &mut c_last[..],
        );
        for (dir, first, rows) in shape.tasks() {
            let (po, ro) = o.split_at_mut(rows * l * h);
            let (ps, rs) = sv.split_at_mut(if keep { rows * l * s } else { 0 });
            let (ph, rh) = hl.split_at_mut(rows * h);
            let (pc, rc) = cl.split_at_mut(rows * h);
            (o, sv, hl, cl) = (ro, rs, rh, rc);
            parts.push(ForwardPart {
                dir,
                first,
                rows,
                out: po,
                saved: ps,
                h_last: ph,
                c_last: pc,
            });
        }
    }
    let arch = pulp::Arch::new();
    parts.into_par_iter().for_each(|part| {
        let d = part.dir;
        arch.dispatch(ForwardTask {
            shape,
            x_proj,
            weights: &panels[d],
            bias: &biases[d],
            lengths,
            part,
        });
    });
    // [D, B, L, H] and the final states → [B, L + S, D·H].
    let rows_out = l + shape.final_rows();
    let mut output = vec![0.0f32; b * rows_out * dirs * h];
    for d in 0..dirs {
        for i in 0..b {
            for t in 0..l {
                let from = ((d * b + i) * l + t) * h;
                let to = ((i * rows_out + t) * dirs + d) * h;
                output[to..to + h].copy_from_slice(&out[from..from + h]);
            }
            let from = (d * b + i) * h;
            let to = ((i * rows_out + l) * dirs + d) * h;
            output[to..to + h].copy_from_slice(&h_last[from..from + h]);
            if shape.final_rows() == 2 {
                let to = ((i * rows_out + l + 1) * dirs + d) * h;
                output[to..to + h].copy_from_slice(&c_last[from..from + h]);
            }
        }
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
    weights: &'a Panels,
    bias: &'a [f32],
    lengths: &'a [usize],
    part: ForwardPart<'a>,
}

impl pulp::WithSimd for ForwardTask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        forward_task(self);
    }
}

/// One task: its block of sequences through every step of one direction.
#[inline(always)]
fn forward_task(task: ForwardTask<'_>) {
    let ForwardTask {
        shape,
        x_proj,
        weights,
        bias,
        lengths,
        part,
    } = task;
    let (l, dirs, h) = (shape.len, shape.dirs, shape.hidden);
    let (gw, s) = (shape.gate_width(), shape.saved_len());
    let ForwardPart {
        dir,
        first,
        rows,
        out,
        saved,
        h_last,
        c_last,
    } = part;
    let padded = rows.div_ceil(MR) * MR;
    let ldc = weights.padded_n();
    let mut hs = vec![0.0f32; padded * h];
    let mut cs = vec![0.0f32; padded * h];
    let mut packed = vec![0.0f32; padded * h];
    let mut hp = vec![0.0f32; padded * ldc];
    let mut scratch = vec![0.0f32; s];
    let lens = &lengths[first..first + rows];
    let steps = lens.iter().copied().max().unwrap_or(0);
    for k in 0..steps {
        pack_rows(&hs, h, padded, h, &mut packed);
        multiply(&packed, padded, weights, Some(bias), &mut hp, ldc);
        for (r, &len_r) in lens.iter().enumerate() {
            let Some(t) = shape.position(dir, len_r, k) else {
                continue;
            };
            let at = ((first + r) * l + t) * dirs + dir;
            let xp = &x_proj[at * gw..(at + 1) * gw];
            let keep = if saved.is_empty() {
                &mut scratch[..]
            } else {
                &mut saved[(r * l + t) * s..(r * l + t + 1) * s]
            };
            cells::step(
                shape.kind,
                xp,
                &hp[r * ldc..r * ldc + gw],
                &mut hs[r * h..(r + 1) * h],
                &mut cs[r * h..(r + 1) * h],
                keep,
            );
            out[(r * l + t) * h..(r * l + t + 1) * h].copy_from_slice(&hs[r * h..(r + 1) * h]);
        }
    }
    h_last.copy_from_slice(&hs[..rows * h]);
    c_last.copy_from_slice(&cs[..rows * h]);
}

/// What the backward pass gives; the weight and bias gradients are
/// `dhpᵀ·h_prev` and `Σ dhp` per direction, left to the caller's matrix product.
pub(crate) struct ScanBackward {
    /// ∂L/∂x_proj, `[B, L, D·G·H]` (zero at padding).
    pub(crate) grad_x_proj: Vec<f32>,
    /// ∂L/∂(W_hh·h + b_hh) at every step, `[D, B·L, G·H]` (zero at padding).
    pub(crate) grad_h_proj: Vec<f32>,
    /// The state each step started from, `[D, B·L, H]`.
    pub(crate) h_prev: Vec<f32>,
}

/// One task's share of the backward outputs.
struct BackwardPart<'a> {
    dir: usize,
    first: usize,
    rows: usize,
    /// `[rows, L, G·H]` each.
    dx: &'a mut [f32],
    dhp: &'a mut [f32],
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
    let panels: Vec<Panels> = (0..dirs)
        .map(|d| Panels::rows(&w_hh[d * gw * h..(d + 1) * gw * h], gw, h))
        .collect();
    let mut dx = vec![0.0f32; dirs * b * l * gw];
    let gru = shape.kind == RecurrentKind::Gru;
    // LSTM and RNN: ∂L/∂hp is ∂L/∂xp; only the GRU needs its own buffer.
    let mut dhp = vec![0.0f32; if gru { dirs * b * l * gw } else { 0 }];
    let mut parts = Vec::new();
    {
        let (mut x, mut p) = (&mut dx[..], &mut dhp[..]);
        for (dir, first, rows) in shape.tasks() {
            let (px, rx) = x.split_at_mut(rows * l * gw);
            let (pp, rp) = p.split_at_mut(if gru { rows * l * gw } else { 0 });
            (x, p) = (rx, rp);
            parts.push(BackwardPart {
                dir,
                first,
                rows,
                dx: px,
                dhp: pp,
            });
        }
    }
    let arch = pulp::Arch::new();
    parts.into_par_iter().for_each(|part| {
        let d = part.dir;
        let saved = &saved[(d * b + part.first) * l * s..(d * b + part.first + part.rows) * l * s];
        arch.dispatch(BackwardTask {
            shape,
            grad,
            saved,
            weights: &panels[d],
            lengths,
            part,
        });
    });
    let mut grad_x_proj = vec![0.0f32; b * l * dirs * gw];
    for d in 0..dirs {
        for i in 0..b {
            for t in 0..l {
                let from = ((d * b + i) * l + t) * gw;
                let to = ((i * l + t) * dirs + d) * gw;
                grad_x_proj[to..to + gw].copy_from_slice(&dx[from..from + gw]);
            }
        }
    }
    let mut h_prev = vec![0.0f32; dirs * b * l * h];
    for (row, kept) in h_prev.chunks_exact_mut(h).zip(saved.chunks_exact(s)) {
        row.copy_from_slice(&kept[s - h..]);
    }
    ScanBackward {
        grad_x_proj,
        grad_h_proj: if gru { dhp } else { dx },
        h_prev,
    }
}

/// One backward task, dispatched as [`ForwardTask`] is.
struct BackwardTask<'a> {
    shape: &'a ScanShape,
    grad: &'a [f32],
    saved: &'a [f32],
    weights: &'a Panels,
    lengths: &'a [usize],
    part: BackwardPart<'a>,
}

impl pulp::WithSimd for BackwardTask<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        backward_task(self);
    }
}

/// One task backward: its block of sequences from the last step to the first.
#[inline(always)]
fn backward_task(task: BackwardTask<'_>) {
    let BackwardTask {
        shape,
        grad,
        saved,
        weights,
        lengths,
        part,
    } = task;
    let (l, dirs, h) = (shape.len, shape.dirs, shape.hidden);
    let (gw, s) = (shape.gate_width(), shape.saved_len());
    let rows_out = l + shape.final_rows();
    let BackwardPart {
        dir,
        first,
        rows,
        dx,
        dhp,
    } = part;
    let padded = rows.div_ceil(MR) * MR;
    let ldc = weights.padded_n();
    let at = |i: usize, t: usize| ((i * rows_out + t) * dirs + dir) * h;
    // Gradients reaching h and c from later steps: first those of h_n and c_n.
    let mut dh = vec![0.0f32; padded * h];
    let mut dc = vec![0.0f32; padded * h];
    for r in 0..rows {
        let i = first + r;
        dh[r * h..(r + 1) * h].copy_from_slice(&grad[at(i, l)..at(i, l) + h]);
        if shape.final_rows() == 2 {
            dc[r * h..(r + 1) * h].copy_from_slice(&grad[at(i, l + 1)..at(i, l + 1) + h]);
        }
    }
    let mut rows_dhp = vec![0.0f32; padded * gw];
    let mut packed = vec![0.0f32; padded * gw];
    let mut through_w = vec![0.0f32; padded * ldc];
    let mut own_dhp = vec![0.0f32; if dhp.is_empty() { 0 } else { gw }];
    let lens = &lengths[first..first + rows];
    let steps = lens.iter().copied().max().unwrap_or(0);
    for k in (0..steps).rev() {
        for (r, &len_r) in lens.iter().enumerate() {
            let row = &mut rows_dhp[r * gw..(r + 1) * gw];
            let Some(t) = shape.position(dir, len_r, k) else {
                row.fill(0.0);
                continue;
            };
            let dh_r = &mut dh[r * h..(r + 1) * h];
            let g = &grad[at(first + r, t)..at(first + r, t) + h];
            for (a, &b) in dh_r.iter_mut().zip(g) {
                *a += b;
            }
            let x = &mut dx[(r * l + t) * gw..(r * l + t + 1) * gw];
            let kept = &saved[(r * l + t) * s..(r * l + t + 1) * s];
            if dhp.is_empty() {
                cells::step_backward(shape.kind, kept, dh_r, &mut dc[r * h..(r + 1) * h], x, row);
            } else {
                cells::step_backward(
                    shape.kind,
                    kept,
                    dh_r,
                    &mut dc[r * h..(r + 1) * h],
                    x,
                    &mut own_dhp,
                );
                row.copy_from_slice(&own_dhp);
                dhp[(r * l + t) * gw..(r * l + t + 1) * gw].copy_from_slice(&own_dhp);
            }
        }
        pack_rows(&rows_dhp, gw, padded, gw, &mut packed);
        multiply(&packed, padded, weights, None, &mut through_w, ldc);
        for r in 0..rows {
            for (a, &b) in dh[r * h..(r + 1) * h]
                .iter_mut()
                .zip(&through_w[r * ldc..r * ldc + h])
            {
                *a += b;
            }
        }
    }
}
