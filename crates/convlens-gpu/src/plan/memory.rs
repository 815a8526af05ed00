//! Where every activation lives on the device. Concat inputs that only the Concat reads are
//! channel slices of its buffer (branches write in place); Reshape/Identity alias their input;
//! logical buffers are then mapped onto device buffers by lifetime (`Residency::Reuse`).

use convlens_core::graph::{Graph, Op, ValueId};

use super::Residency;
use crate::{GpuError, Result};

/// Where a value lives: a buffer and, for Concat inputs, a channel offset inside it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub buffer: usize,
    pub channel_offset: usize,
}

/// The activations' layout: slots pointing at device buffers `0..sizes.len()`.
pub(crate) struct Layout {
    pub slots: Vec<Option<Slot>>,
    /// Per device buffer, its size in bytes.
    pub sizes: Vec<u64>,
    /// Per value: its buffer still holds it after a pass.
    pub readable: Vec<bool>,
}

/// Lays out every activation of `graph`, no binding larger than `max_binding` bytes.
pub(crate) fn layout(graph: &Graph, residency: Residency, max_binding: u64) -> Result<Layout> {
    let mut logical: Vec<u64> = Vec::new();
    let mut new_buffer = |elems: usize, label: &str| -> Result<usize> {
        let size = (elems.max(1) * 4) as u64;
        if size > max_binding {
            return Err(GpuError(format!("{label}: {size} bytes exceed this device's {max_binding}-byte storage binding")));
        }
        logical.push(size);
        Ok(logical.len() - 1)
    };
    let numel = |v: ValueId| graph.shape(v).iter().product::<usize>();
    let mut slots: Vec<Option<Slot>> = vec![None; graph.values.len()];
    let consumers = graph.consumers();
    let producers = graph.producers();

    slots[graph.input] = Some(Slot { buffer: new_buffer(numel(graph.input), "input")?, channel_offset: 0 });
    // Concatenations first: each gets its buffer, and each input that only the Concat reads and
    // that a slice-writing kernel produces becomes a channel slice of it (one image: in a batch
    // an input's channels are not one run of the output).
    for node in &graph.nodes {
        if !(matches!(node.op, Op::Concat { axis: 1 }) && graph.shape(node.output).len() == 4 && graph.shape(node.output)[0] == 1) {
            continue;
        }
        let buffer = new_buffer(numel(node.output), &graph.value(node.output).name)?;
        slots[node.output] = Some(Slot { buffer, channel_offset: 0 });
        let mut offset = 0;
        for &inp in &node.inputs {
            let sole = consumers[inp].len() == 1 && !graph.outputs.contains(&inp);
            let producer_ok = producers[inp].is_some_and(|p| writes_channel_slices(&graph.nodes[p].op));
            if sole && producer_ok && slots[inp].is_none() {
                slots[inp] = Some(Slot { buffer, channel_offset: offset });
            }
            offset += graph.shape(inp)[1];
        }
    }
    // Then every other output: Reshape/Identity alias their input, the rest get a buffer.
    for node in &graph.nodes {
        if slots[node.output].is_some() {
            continue;
        }
        let alias = match &node.op {
            Op::Reshape | Op::Identity => slots[node.inputs[0]].filter(|s| s.channel_offset == 0),
            _ => None,
        };
        let slot = match alias {
            Some(s) => s,
            None => Slot { buffer: new_buffer(numel(node.output), &graph.value(node.output).name)?, channel_offset: 0 },
        };
        slots[node.output] = Some(slot);
    }

    let slot_logical: Vec<Option<usize>> = slots.iter().map(|s| s.map(|s| s.buffer)).collect();
    let lifetimes = lifetimes(graph, &slots, logical.len(), residency);
    let (physical, sizes) = assign_by_lifetime(&logical, &lifetimes);
    for slot in slots.iter_mut().flatten() {
        slot.buffer = physical[slot.buffer];
    }
    // A value can be read after a pass when no later value took its buffer over.
    let mut last_occupant = vec![usize::MAX; sizes.len()];
    for (l, &p) in physical.iter().enumerate() {
        if last_occupant[p] == usize::MAX || lifetimes[l].0 > lifetimes[last_occupant[p]].0 {
            last_occupant[p] = l;
        }
    }
    let readable = slot_logical.iter().map(|l| l.is_some_and(|l| last_occupant[physical[l]] == l)).collect();
    Ok(Layout { slots, sizes, readable })
}

/// Kernels that can write their output into a channel slice of a larger buffer.
fn writes_channel_slices(op: &Op) -> bool {
    match op {
        Op::Conv { .. } | Op::MaxPool { .. } | Op::AveragePool { .. } | Op::GlobalAveragePool => true,
        Op::Relu
        | Op::Clip { .. }
        | Op::Lrn { .. }
        | Op::Concat { .. }
        | Op::Gemm { .. }
        | Op::MatMul
        | Op::Add
        | Op::Mul
        | Op::Reshape
        | Op::Identity
        | Op::Transpose { .. }
        | Op::Softmax { .. }
        | Op::BatchNorm { .. } => false,
    }
}

/// Per logical buffer: (first node writing it, last node reading it); the input starts before
/// node 0, and outputs (or, keeping all, every buffer) live past the last node.
fn lifetimes(graph: &Graph, slots: &[Option<Slot>], n: usize, residency: Residency) -> Vec<(i64, i64)> {
    let end = graph.nodes.len() as i64;
    let mut life = vec![(i64::MAX, -1i64); n];
    let touch = |v: ValueId, at: i64, life: &mut Vec<(i64, i64)>| {
        if let Some(s) = slots[v] {
            let l = &mut life[s.buffer];
            l.0 = l.0.min(at);
            l.1 = l.1.max(at);
        }
    };
    touch(graph.input, -1, &mut life);
    for (i, node) in graph.nodes.iter().enumerate() {
        for &v in &node.inputs {
            touch(v, i as i64, &mut life);
        }
        touch(node.output, i as i64, &mut life);
    }
    for &o in &graph.outputs {
        touch(o, end, &mut life);
    }
    if residency == Residency::KeepAll {
        for l in life.iter_mut() {
            l.1 = end;
        }
    }
    life
}

/// Greedy interval allocation: in order of first write, each logical buffer takes the smallest
/// free device buffer that is big enough (else the largest free one, grown), where free means
/// its last occupant's last reader ran strictly before this buffer's first writer (a kernel
/// never reads and writes the same buffer). Returns the device buffer of each logical one and
/// the device buffers' sizes.
fn assign_by_lifetime(sizes: &[u64], life: &[(i64, i64)]) -> (Vec<usize>, Vec<u64>) {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&l| (life[l].0, l));
    let mut physical = vec![0; sizes.len()];
    let mut phys: Vec<(u64, i64)> = Vec::new(); // (size, busy until)
    for l in order {
        let (start, end) = life[l];
        let free = |p: &(u64, i64)| p.1 < start;
        let fit = (0..phys.len()).filter(|&p| free(&phys[p]) && phys[p].0 >= sizes[l]).min_by_key(|&p| phys[p].0);
        let grow = || (0..phys.len()).filter(|&p| free(&phys[p])).max_by_key(|&p| phys[p].0);
        let p = match fit.or_else(grow) {
            Some(p) => p,
            None => {
                phys.push((0, -2));
                phys.len() - 1
            }
        };
        phys[p] = (phys[p].0.max(sizes[l]), end);
        physical[l] = p;
    }
    (physical, phys.into_iter().map(|p| p.0).collect())
}

#[cfg(test)]
mod tests {
    use super::assign_by_lifetime;

    /// Random lifetimes: buffers sharing a device buffer never overlap (a reader of the old
    /// occupant runs strictly before the new one's first writer) and always fit.
    #[test]
    fn lifetime_assignment_never_overlaps() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..200 {
            let n = 1 + next(40) as usize;
            let sizes: Vec<u64> = (0..n).map(|_| 4 * (1 + next(1000))).collect();
            let life: Vec<(i64, i64)> = (0..n)
                .map(|_| {
                    let a = next(50) as i64 - 1;
                    (a, a + next(10) as i64)
                })
                .collect();
            let (phys, psize) = assign_by_lifetime(&sizes, &life);
            for a in 0..n {
                assert!(psize[phys[a]] >= sizes[a]);
                for b in a + 1..n {
                    if phys[a] == phys[b] {
                        let apart = life[a].1 < life[b].0 || life[b].1 < life[a].0;
                        assert!(apart, "{a} {:?} and {b} {:?} share a buffer", life[a], life[b]);
                    }
                }
            }
            assert!(psize.len() <= n);
        }
    }
}
