//! The size limit that every shape a file or a config declares is checked against.
//!
//! A declared shape is a promise about memory: `[4000000000, 4000000000]` asks for more
//! elements than fit in a `usize`, and a tensor library asked to build it panics. Shapes
//! are therefore multiplied out with checked arithmetic and refused above
//! [`MAX_TENSOR_ELEMENTS`] before anything is allocated.

use std::fmt;

/// The most elements one tensor may have: 2^31 (8 GiB of float32). Far above any
/// tensor this library's modules and tasks use, and far below the point where the
/// element count itself overflows.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 31;

/// A shape with more than [`MAX_TENSOR_ELEMENTS`] elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// The shape asked for.
    pub dims: Vec<usize>,
    /// Its element count, or `None` when it does not fit in a `usize`.
    pub elements: Option<usize>,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shape {:?}: expected at most {MAX_TENSOR_ELEMENTS} (2^31) elements, got ",
            self.dims
        )?;
        match self.elements {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "more than 2^64"),
        }
    }
}

/// The number of elements of `dims` if it is at most [`MAX_TENSOR_ELEMENTS`].
///
/// # Errors
///
/// [`TooLarge`] when the product is larger, or overflows a `usize`.
pub fn check_elements(dims: &[usize]) -> Result<usize, TooLarge> {
    let product = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match product {
        Some(n) if n <= MAX_TENSOR_ELEMENTS => Ok(n),
        elements => Err(TooLarge {
            dims: dims.to_vec(),
            elements,
        }),
    }
}

/// Like [`check_elements`], but a zero dimension does not excuse the others: the
/// product of the non-zero dimensions must fit too. An empty tensor of shape
/// `[0, 4000000000, 4000000000]` holds nothing, yet any operation that broadcasts or
/// reduces over its other dimensions would size its result by them.
///
/// # Errors
///
/// [`TooLarge`] (with the product of the non-zero dimensions) when it is larger than
/// [`MAX_TENSOR_ELEMENTS`] or overflows.
pub fn check_extent(dims: &[usize]) -> Result<usize, TooLarge> {
    let nonzero: Vec<usize> = dims.iter().copied().filter(|&d| d != 0).collect();
    check_elements(&nonzero).map_err(|e| TooLarge {
        dims: dims.to_vec(),
        elements: e.elements,
    })?;
    Ok(dims.iter().product())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_the_limit() {
        assert_eq!(check_elements(&[]), Ok(1));
        assert_eq!(check_elements(&[2, 3]), Ok(6));
        assert_eq!(
            check_elements(&[MAX_TENSOR_ELEMENTS]),
            Ok(MAX_TENSOR_ELEMENTS)
        );
        assert_eq!(check_extent(&[0, 7]), Ok(0));
    }

    #[test]
    fn refuses_above_the_limit_and_on_overflow() {
        let e = check_elements(&[MAX_TENSOR_ELEMENTS + 1]).unwrap_err();
        assert_eq!(e.elements, Some(MAX_TENSOR_ELEMENTS + 1));
        let e = check_elements(&[12_000_000_000, 4_000_000_000]).unwrap_err();
        assert_eq!(e.elements, None);
        assert_eq!(
            e.to_string(),
            "shape [12000000000, 4000000000]: expected at most 2147483648 (2^31) elements, \
             got more than 2^64"
        );
        // Zero elements, but the other dimensions still count.
        let e = check_extent(&[0, 1 << 20, 1 << 20]).unwrap_err();
        assert_eq!(e.elements, Some(1 << 40));
    }
}
