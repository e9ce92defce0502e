//! Building blocks shared by the attention modules.

pub mod feed_forward;
pub mod layer_norm;
pub mod linear;

pub use feed_forward::{FeedForward, FeedForwardConfig};
pub use layer_norm::{load_layer_norm, save_layer_norm};
pub use linear::{TorchLinear, TorchLinearConfig};
