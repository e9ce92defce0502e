//! The kernels' error type (no `thiserror`: this crate has no dependencies).

use core::fmt;

/// What a kernel refuses, with what it expected and what it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelError {
    /// A buffer has the wrong number of elements for the dimensions given.
    Length {
        /// Which buffer.
        what: &'static str,
        /// Elements implied by the dimensions.
        expected: usize,
        /// Elements the buffer has.
        got: usize,
    },
    /// A dimension or option is not usable (zero heads, a head count that does not
    /// divide the embedding, ...).
    Invalid {
        /// Which argument.
        what: &'static str,
        /// Why it is refused.
        why: &'static str,
    },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Length {
                what,
                expected,
                got,
            } => write!(f, "`{what}`: expected {expected} elements, got {got}"),
            KernelError::Invalid { what, why } => write!(f, "`{what}`: {why}"),
        }
    }
}

impl core::error::Error for KernelError {}

/// Checks that `buf` has `expected` elements.
pub(crate) fn check_len<T>(
    what: &'static str,
    buf: &[T],
    expected: usize,
) -> Result<(), KernelError> {
    if buf.len() == expected {
        Ok(())
    } else {
        Err(KernelError::Length {
            what,
            expected,
            got: buf.len(),
        })
    }
}
