//! Static shape inference: every op's output shape from its input shapes, with the checks
//! that turn a graph whose shapes don't chain into a message instead of a crash later.

use super::Op;
use crate::error::{Error, Result};

pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::Shape(format!("cannot broadcast {a:?} with {b:?}"))),
        };
    }
    Ok(out)
}

/// numpy's matmul on shapes: a 1-D A is a row [1, K] and a 1-D B a column [K, 1] (that axis
/// dropped from the result); the axes before the last two broadcast. One [M, K] x [K, N]
/// product per batch entry, with where its A and B start.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulPlan {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub out_shape: Vec<usize>,
    /// (offset of A's matrix, offset of B's matrix), in elements, per output matrix in order.
    pub batch: Vec<(usize, usize)>,
}

impl MatMulPlan {
    pub fn new(a: &[usize], b: &[usize]) -> Result<Self> {
        let bad = || Error::Shape(format!("MatMul cannot multiply {a:?} by {b:?}"));
        if a.is_empty() || b.is_empty() {
            return Err(bad());
        }
        let a2: Vec<usize> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
        let b2: Vec<usize> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
        let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
        let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
        if k != kb {
            return Err(bad());
        }
        let (ab, bb) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
        let batch_shape = broadcast(ab, bb).map_err(|_| bad())?;
        let (oa, ob) = crate::kernels::reference::broadcast_offsets(&batch_shape, ab, bb);
        let batch = oa.iter().zip(&ob).map(|(&i, &j)| (i * m * k, j * k * n)).collect();
        let mut out_shape = batch_shape;
        if a.len() > 1 {
            out_shape.push(m);
        }
        if b.len() > 1 {
            out_shape.push(n);
        }
        Ok(MatMulPlan { m, k, n, out_shape, batch })
    }
}

fn rank4(s: &[usize], what: &str) -> Result<[usize; 4]> {
    match *s {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::Shape(format!("{what} expects a 4-D NCHW input, got {s:?}"))),
    }
}

/// Output shape of `op` for these input shapes. `Op::Reshape` is not handled here: its
/// target comes from the file (see the importer).
// Long but flat: one arm per op, exhaustive, so a new `Op` fails to compile here.
pub fn infer(op: &Op, ins: &[&[usize]]) -> Result<Vec<usize>> {
    let need = |n: usize| -> Result<()> {
        if ins.len() < n {
            Err(Error::Shape(format!("expects {n} inputs, got {}", ins.len())))
        } else {
            Ok(())
        }
    };
    need(1)?;
    match op {
        Op::Conv { window, group, .. } => {
            need(2)?;
            let [n, c, h, w] = rank4(ins[0], "Conv")?;
            let ws = ins[1];
            if ws.len() != 4 {
                return Err(Error::Shape(format!("Conv weight must be 4-D, got {ws:?}")));
            }
            let m = ws[0];
            if *group == 0 || c % group != 0 || m % group != 0 || ws[1] * group != c {
                return Err(Error::Shape(format!(
                    "Conv weight {ws:?} with group {group} does not fit {c} input channels"
                )));
            }
            if [ws[2], ws[3]] != window.kernel {
                return Err(Error::Shape(format!("kernel_shape {:?} disagrees with weight {ws:?}", window.kernel)));
            }
            if let Some(b) = ins.get(2) {
                if b.iter().product::<usize>() != m {
                    return Err(Error::Shape(format!("Conv bias {b:?} does not match {m} output channels")));
                }
            }
            Ok(vec![n, m, window.out_dim(0, h, false)?, window.out_dim(1, w, false)?])
        }
        Op::MaxPool { window, ceil } | Op::AveragePool { window, ceil, .. } => {
            let [n, c, h, w] = rank4(ins[0], "pooling")?;
            Ok(vec![n, c, window.out_dim(0, h, *ceil)?, window.out_dim(1, w, *ceil)?])
        }
        Op::GlobalAveragePool => {
            let [n, c, _, _] = rank4(ins[0], "GlobalAveragePool")?;
            Ok(vec![n, c, 1, 1])
        }
        Op::Lrn { .. } => {
            rank4(ins[0], "LRN")?;
            Ok(ins[0].to_vec())
        }
        Op::Relu | Op::Identity | Op::Clip { .. } => Ok(ins[0].to_vec()),
        Op::Transpose { perm } => {
            let mut seen = vec![false; ins[0].len()];
            if perm.len() != ins[0].len() || !perm.iter().all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true)) {
                return Err(Error::Shape(format!("perm {perm:?} is not a permutation of the {} axes of {:?}", ins[0].len(), ins[0])));
            }
            Ok(perm.iter().map(|&p| ins[0][p]).collect())
        }
        Op::Softmax { axis, .. } => {
            if *axis >= ins[0].len() {
                return Err(Error::Shape(format!("Softmax axis {axis} out of range for {:?}", ins[0])));
            }
            Ok(ins[0].to_vec())
        }
        Op::BatchNorm { .. } => {
            need(5)?;
            let c = *ins[0].get(1).ok_or_else(|| Error::Shape("BatchNormalization needs a channel axis".into()))?;
            for p in &ins[1..5] {
                if p.iter().product::<usize>() != c {
                    return Err(Error::Shape(format!("BatchNormalization parameter {p:?} does not match {c} channels")));
                }
            }
            Ok(ins[0].to_vec())
        }
        Op::Concat { axis } => {
            let first = ins[0];
            if *axis >= first.len() {
                return Err(Error::Shape(format!("Concat axis {axis} out of range for {first:?}")));
            }
            let mut out = first.to_vec();
            for s in &ins[1..] {
                let same_rest = s.len() == first.len() && (0..s.len()).all(|d| d == *axis || s[d] == first[d]);
                if !same_rest {
                    return Err(Error::Shape(format!("Concat inputs {first:?} and {s:?} differ off axis {axis}")));
                }
                out[*axis] += s[*axis];
            }
            Ok(out)
        }
        Op::Gemm { trans_a, trans_b, .. } => {
            need(2)?;
            let (a, b) = (ins[0], ins[1]);
            if a.len() != 2 || b.len() != 2 {
                return Err(Error::Shape(format!("Gemm needs 2-D inputs, got {a:?} and {b:?}")));
            }
            let (m, ka) = if *trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
            let (kb, n) = if *trans_b { (b[1], b[0]) } else { (b[0], b[1]) };
            if ka != kb {
                return Err(Error::Shape(format!("Gemm inner dimensions differ: {a:?} x {b:?}")));
            }
            if let Some(c) = ins.get(2) {
                if broadcast(c, &[m, n])? != [m, n] {
                    return Err(Error::Shape(format!("Gemm C {c:?} does not broadcast to [{m}, {n}]")));
                }
            }
            Ok(vec![m, n])
        }
        Op::MatMul => {
            need(2)?;
            Ok(MatMulPlan::new(ins[0], ins[1])?.out_shape)
        }
        Op::Add | Op::Mul => {
            need(2)?;
            broadcast(ins[0], ins[1])
        }
        Op::Reshape => Err(Error::Shape("Reshape target must come from the file".into())),
    }
}
