//! The module contract.
