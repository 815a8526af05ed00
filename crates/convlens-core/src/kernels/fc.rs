//! Fully connected layers at batch 1: one SIMD dot product per output against weight rows
//! kept as [N, K], so VGG16's 411 MB fc6 streams through memory once, in order.

use std::sync::Arc;

use super::simd::{dot, fmax};
use crate::error::{Error, Result};
use crate::par;
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
        let mut y = vec![0.0f32; n];
        let ys = par::SharedMut::new(&mut y);
        // Rows in blocks, so each thread streams its own part of the weights.
        let blocks = par::chunks(n, 4 * par::threads(), 1);
        let run_rows = |rows: std::ops::Range<usize>| {
            for j in rows {
                let mut v = self.alpha * dot(&x.data, &self.w.data[j * k..(j + 1) * k]);
                if let Some(b) = &self.bias {
                    v += b[j];
                }
                // SAFETY: blocks are disjoint.
                unsafe { ys.write(j, if self.relu { fmax(v, 0.0) } else { v }) };
            }
        };
        if n * k < 1 << 18 {
            run_rows(0..n);
        } else {
            par::for_each(blocks.len(), &|i| run_rows(blocks[i].clone()));
        }
        Tensor::new(vec![1, n], y)
    }
}
