//! Weights in IEEE half precision: the f16 option for fully connected layers, where VGG16
//! keeps 123.6 M of its 138 M parameters. Half the bytes in memory and half the bytes the FC
//! kernel streams; every product and sum is still f32 (only the weights are rounded).
//!
//! A `HalfTensor` only ever holds finite values (the streaming importer refuses a weight that
//! `to_half` cannot hold), so the SIMD decoders in `kernels::simd` need no infinity or NaN case.

use crate::error::{Error, Result};
use crate::tensor::{transpose, Tensor};

/// Tensors smaller than this stay f32 under the f16 option: biases and conv kernels are a
/// small share of any classic CNN, and an FC layer's rows start at 1000 x 1024.
pub const MIN_ELEMENTS: usize = 1 << 18;

/// The largest finite half: a weight above it cannot be held.
pub const MAX: f32 = 65504.0;

#[derive(Clone, Debug, PartialEq)]
pub struct HalfTensor {
    pub shape: Vec<usize>,
    pub bits: Vec<u16>,
}

/// `v` rounded to the nearest half (ties to even), `None` when it is not finite or beyond
/// `MAX` once rounded.
pub fn to_half(v: f32) -> Option<u16> {
    let h = half::f16::from_f32(v);
    h.is_finite().then_some(h.to_bits())
}

pub fn to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

impl HalfTensor {
    /// The values as f32 (exact: every half is an f32).
    pub fn to_f32(&self) -> Tensor {
        Tensor { shape: self.shape.clone(), data: self.bits.iter().map(|&h| to_f32(h)).collect() }
    }

    /// A 2-D tensor transposed, still in half precision.
    pub fn transposed(&self) -> Result<Self> {
        let [r, c] = self.shape[..] else { return Err(Error::Shape(format!("transposing a tensor of shape {:?}", self.shape))) };
        Ok(HalfTensor { shape: vec![c, r], bits: transpose(&self.bits, r, c) })
    }
}

pub fn out_of_range(name: &str) -> Error {
    Error::Unsupported(format!(
        "weight '{name}' holds a value beyond half precision's range (±{MAX}) or not finite; load this model with f32 weights"
    ))
}
