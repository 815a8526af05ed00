//! Fully connected layers at batch 1: one SIMD dot product per output against weight rows
//! kept as [N, K], so VGG16's 411 MB fc6 streams through memory once, in order (206 MB with
//! the f16 weights option: the rows widened in registers, the sums in f32).

use super::simd::{dot, dot_f16, fmax};
use crate::error::{Error, Result};
use crate::par;
use crate::prep::{FcRows, FcWeights};
use crate::tensor::Tensor;

pub struct PreparedFc {
    /// Weights as [N, K] rows: the file's own tensor when transB=1, else a transposed copy.
    w: FcRows,
    k: usize,
    n: usize,
    bias: Option<Vec<f32>>,
    alpha: f32,
    relu: bool,
}

impl PreparedFc {
    pub fn new(fc: FcWeights) -> Self {
        PreparedFc { w: fc.rows, k: fc.k, n: fc.n, bias: fc.bias, alpha: fc.alpha, relu: fc.relu }
    }

    pub fn is_half(&self) -> bool {
        matches!(self.w, FcRows::F16(_))
    }

    /// x: [1, K] (or any tensor of K values) to [1, N].
    pub fn run(&self, x: &Tensor) -> Result<Tensor> {
        let (n, k) = (self.n, self.k);
        if x.len() != k {
            return Err(Error::Shape(format!("fully connected layer wants {k} inputs, got {}", x.len())));
        }
        let mut y = vec![0.0f32; n];
        let ys = par::SharedMut::new(&mut y);
        // Rows in blocks, so each thread streams its own part of the weights.
        let blocks = par::chunks(n, 4 * par::threads(), 1);
        let run_rows = |rows: std::ops::Range<usize>| {
            for j in rows {
                let row = j * k..(j + 1) * k;
                let mut v = self.alpha
                    * match &self.w {
                        FcRows::F32(w) => dot(&x.data, &w.data[row]),
                        FcRows::F16(w) => dot_f16(&x.data, &w.bits[row]),
                    };
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
