//! Fully connected layers at batch 1: one SIMD dot product per output against weight rows
//! kept as [N, K], so VGG16's 411 MB fc6 streams through memory once, in order.

use std::sync::Arc;

use super::simd::{dot, fmax};
use crate::error::{Error, Result};
use crate::prep::FcWeights;
use crate::tensor::Tensor;

pub struct PreparedFc {
    /// Weights as [N, K] rows: the file's own tensor when transB=1, else a transposed copy.
    w: Arc<Tensor>,
    bias: Option<Vec<f32>>,
    alpha: f32,
    relu: bool,
}

impl PreparedFc {
    pub fn new(fc: FcWeights) -> Self {
        PreparedFc { w: fc.rows, bias: fc.bias, alpha: fc.alpha, relu: fc.relu }
    }

    /// x: [1, K] (or any tensor of K values) to [1, N].
    pub fn run(&self, x: &Tensor) -> Result<Tensor> {
        let (n, k) = (self.w.shape[0], self.w.shape[1]);
        if x.len() != k {
            return Err(Error::Shape(format!("fully connected layer wants {k} inputs, got {}", x.len())));
        }
        let mut y = Vec::with_capacity(n);
        for j in 0..n {
            let mut v = self.alpha * dot(&x.data, &self.w.data[j * k..(j + 1) * k]);
            if let Some(b) = &self.bias {
                v += b[j];
            }
            y.push(if self.relu { fmax(v, 0.0) } else { v });
        }
        Tensor::new(vec![1, n], y)
    }
}
