//! Where each operand's `[B, H, L, D]` elements lie in its flat buffer.

/// Where the `[B, H, L, D]` elements of an operand lie in a flat slice: element
/// (b, h, l, c) is at `offset + b·batch + h·head + l·row + c` (the last axis is
/// contiguous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadLayout {
    pub offset: usize,
    pub batch: usize,
    pub head: usize,
    pub row: usize,
}

impl HeadLayout {
    /// Token-major rows `[B, L, width]` with the heads side by side from column
    /// `column`, each `dim` wide (a projection's output, or one third of a fused
    /// Q/K/V projection's).
    pub(crate) fn token_major(len: usize, width: usize, column: usize, dim: usize) -> Self {
        HeadLayout {
            offset: column,
            batch: len * width,
            head: dim,
            row: width,
        }
    }

    /// Contiguous `[B, H, L, dim]`.
    pub(crate) fn head_major(heads: usize, len: usize, dim: usize) -> Self {
        HeadLayout {
            offset: 0,
            batch: heads * len * dim,
            head: len * dim,
            row: dim,
        }
    }

    #[inline(always)]
    pub(super) fn start(&self, b: usize, h: usize, l: usize) -> usize {
        self.offset + b * self.batch + h * self.head + l * self.row
    }
}
