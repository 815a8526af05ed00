//! Fully connected layers at batch 1: one SIMD dot product per output against weight rows
//! kept as [N, K], so VGG16's 411 MB fc6 streams through memory once, in order.

use std::sync::Arc;

use super::simd::{dot, fmax};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

pub struct PreparedFc {
    /// Weights as [N, K] rows: the file's own tensor when transB=1, else a transposed copy.
    w: Arc<Tensor>,
    bias: Option<Vec<f32>>,
    alpha: f32,
    relu: bool,
}

impl PreparedFc {
    /// `c` must already be broadcast to one value per output (or be absent).
    pub fn new(w: &Arc<Tensor>, trans_b: bool, c: Option<&Tensor>, alpha: f32, beta: f32, relu: bool) -> Result<Self> {
        let [k, n] = match w.shape[..] {
            [r, c] if trans_b => [c, r],
            [r, c] => [r, c],
            _ => return Err(Error::Shape(format!("Gemm weight must be 2-D, got {:?}", w.shape))),
        };
        let w = if trans_b {
            Arc::clone(w)
        } else {
            let mut t = vec![0.0; n * k];
            for kk in 0..k {
                for j in 0..n {
                    t[j * k + kk] = w.data[kk * n + j];
                }
            }
            Arc::new(Tensor::new(vec![n, k], t)?)
        };
        let bias = match c {
            None => None,
            Some(c) if c.len() == n => Some(c.data.iter().map(|v| v * beta).collect()),
            Some(c) if c.len() == 1 => Some(vec![c.data[0] * beta; n]),
            Some(c) => return Err(Error::Shape(format!("Gemm C {:?} is not per-output", c.shape))),
        };
        Ok(PreparedFc { w, bias, alpha, relu })
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
