//! Concatenation on the kernel pool. Every Fire and Inception module ends in one, and as one
//! thread's copy it is serial work the other threads wait through.

use crate::error::Result;
use crate::graph::{shapes, Op};
use crate::par;
use crate::tensor::Tensor;

/// Below this many floats the copy stays on the calling thread: a fork costs more.
const PAR_MIN_FLOATS: usize = 1 << 15;

/// `inputs` joined along `axis`, bit for bit as `reference::concat`.
pub fn concat(inputs: &[&Tensor], axis: usize) -> Result<Tensor> {
    let in_shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape.as_slice()).collect();
    let shape = shapes::infer(&Op::Concat { axis }, &in_shapes)?;
    let outer: usize = shape[..axis].iter().product();
    // The output in order: for each outer index, each input's block.
    let mut pieces: Vec<&[f32]> = Vec::with_capacity(outer * inputs.len());
    for o in 0..outer {
        for t in inputs {
            let chunk: usize = t.shape[axis..].iter().product();
            pieces.push(&t.data[o * chunk..(o + 1) * chunk]);
        }
    }
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let threads = par::threads();
    // Equal runs of the output per task, each copying the parts of the pieces it covers.
    let tasks = if threads > 1 && total >= PAR_MIN_FLOATS { 2 * threads } else { 1 };
    let runs = par::chunks(total, tasks, 16);
    let fill = |out: *mut f32, len: usize| -> Result<()> {
        debug_assert_eq!(len, total);
        // SAFETY: tasks write disjoint runs of the output, which holds `total` floats.
        let out = unsafe { par::SharedMut::from_ptr(out) };
        par::for_each(runs.len(), &|t| {
            let run = &runs[t];
            let mut start = 0;
            for p in &pieces {
                let (lo, hi) = (start.max(run.start), (start + p.len()).min(run.end));
                if lo < hi {
                    let src = &p[lo - start..hi - start];
                    // SAFETY: lo..hi lies in this task's run, inside the output; written through
                    // the pointer, as the output is not initialised yet (`Tensor::filled_by`).
                    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), out.ptr(lo), src.len()) };
                }
                start += p.len();
            }
        });
        Ok(())
    };
    // SAFETY: the runs cover 0..total, every output element, each written once.
    unsafe { Tensor::filled_by(&shape, fill) }
}
