//! Splitting the embedding into heads and joining them back.

use burn::prelude::*;

use crate::error::{AttnError, Result, check_shape};

/// `[B, L, E]` → `[B, H, L, E/H]`: head h takes features h·E/H .. (h+1)·E/H.
///
/// - `x`: `[B, L, E]` with E divisible by `heads`
/// - returns: `[B, H, L, E/H]`
///
/// # Errors
///
/// [`AttnError::Config`] if `heads` is 0 or does not divide E.
pub fn split_heads(x: Tensor<3>, heads: usize) -> Result<Tensor<4>> {
    let [b, l, e] = x.dims();
    if heads == 0 || e % heads != 0 {
        return Err(AttnError::Config(format!(
            "cannot split an embedding of {e} features into {heads} heads: the head count must divide it"
        )));
    }
    Ok(x.reshape([b, l, heads, e / heads]).swap_dims(1, 2))
}

/// `[B, H, L, D]` → `[B, L, H·D]`, the inverse of [`split_heads`].
///
/// - `x`: `[B, H, L, D]`
/// - returns: `[B, L, H·D]`
pub fn combine_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, l, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, l, h * d])
}

/// Checks that `x` is `[B, L, E]` with the given E.
pub(crate) fn check_embedding(what: &str, x: &Tensor<3>, embed: usize) -> Result<()> {
    check_shape(
        what,
        &x.dims(),
        &[None, None, Some(embed)],
        &["B", "L", "E"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_combine_is_identity_and_heads_take_contiguous_features() {
        let device = Device::flex();
        let x = Tensor::<1, Int>::arange(0..24, &device)
            .float()
            .reshape([1, 2, 12]);
        let heads = split_heads(x.clone(), 3).unwrap();
        assert_eq!(heads.dims(), [1, 3, 2, 4]);
        // Head 1, position 0 holds features 4..8 of token 0.
        let h1: Vec<f32> = heads
            .clone()
            .slice([0..1, 1..2, 0..1, 0..4])
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(h1, [4.0, 5.0, 6.0, 7.0]);
        let back: Vec<f32> = combine_heads(heads).into_data().try_to_vec().unwrap();
        let orig: Vec<f32> = x.into_data().try_to_vec().unwrap();
        assert_eq!(back, orig);
    }

    #[test]
    fn heads_must_divide_the_embedding() {
        let err = split_heads(Tensor::<3>::zeros([1, 2, 10], &Device::flex()), 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: cannot split an embedding of 10 features into 4 heads: the head count must divide it"
        );
    }
}
