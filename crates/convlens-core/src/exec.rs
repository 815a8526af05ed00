//! Running a graph on the CPU: the `Backend` trait (scalar reference, packed GEMM, Winograd;
//! `convlens-engine` puts these and the GPU behind one `Engine`), and the session that walks
//! the nodes, frees what nothing reads any more, keeps what was asked for, and times every layer.

use std::collections::HashMap;

use web_time::Instant;

use crate::error::{Error, Result};
use crate::graph::{Graph, Op, ValueId};
use crate::kernels::conv::PreparedConv;
use crate::kernels::fc::PreparedFc;
use crate::kernels::winograd::{self, WinogradConv};
use crate::kernels::{concat, pool, reference_node, simd};
use crate::tensor::{numel, Tensor};

/// One way to run a node. Implementations may prepare (pack weights) when created.
pub trait Backend {
    fn name(&self) -> String;
    fn run_node(&mut self, graph: &Graph, index: usize, inputs: &[&Tensor]) -> Result<Tensor>;
    /// Whether node `index`'s weights were taken in when the backend was made, so `run_node`
    /// never reads its constant inputs (a half-precision FC weight is then not widened).
    fn prepared(&self, _index: usize) -> bool {
        false
    }
    /// Whether `run_node_into` takes node `index`: its output written straight into its part of
    /// a concat's buffer, so the concat copies nothing.
    fn writes_into(&self, _index: usize) -> bool {
        false
    }
    /// Node `index`'s output into `out`, which may be uninitialised. Only for nodes
    /// `writes_into` accepts.
    ///
    /// # Safety
    /// `out` is valid for writes of `len` floats (the node's output size), which nothing else
    /// touches meanwhile; on success every one of them was written, through the pointer.
    unsafe fn run_node_into(&mut self, graph: &Graph, index: usize, _inputs: &[&Tensor], _out: *mut f32, _len: usize) -> Result<()> {
        let node = &graph.nodes[index];
        Err(Error::node(&node.name, &node.op_type, "this backend cannot write a node's output into a concat"))
    }
}

/// What a prepared node gets in place of a constant input it does not read.
static NOT_READ: Tensor = Tensor { shape: Vec::new(), data: Vec::new() };

/// Which CPU backend: named on the command line and in the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKind {
    Reference,
    /// Packed GEMM for every conv (no Winograd): the fast path's baseline.
    Gemm,
    /// Packed GEMM, with Winograd F(2x2,3x3) for 3x3 stride-1 convs: the default.
    Simd,
}

pub fn cpu_backend(kind: CpuKind, graph: &Graph) -> Result<Box<dyn Backend>> {
    Ok(match kind {
        CpuKind::Reference => Box::new(ReferenceBackend),
        CpuKind::Gemm => Box::new(SimdBackend::new(graph, false)?),
        CpuKind::Simd => Box::new(SimdBackend::new(graph, true)?),
    })
}

/// The scalar oracle.
pub struct ReferenceBackend;

impl Backend for ReferenceBackend {
    fn name(&self) -> String {
        "CPU reference (scalar)".into()
    }
    fn run_node(&mut self, graph: &Graph, index: usize, inputs: &[&Tensor]) -> Result<Tensor> {
        reference_node(graph, index, inputs)
    }
}

enum Prepared {
    Conv(PreparedConv),
    Winograd(WinogradConv),
    Fc(PreparedFc),
}

/// Packed GEMM (and Winograd) convolutions, SIMD fully connected layers, separable max
/// pooling and sliding-window LRN; the rest from the reference.
pub struct SimdBackend {
    prepared: HashMap<usize, Prepared>,
    scratch: Vec<f32>,
    winograd: bool,
}

impl SimdBackend {
    pub fn new(graph: &Graph, winograd: bool) -> Result<Self> {
        let mut prepared = HashMap::new();
        for (i, node) in graph.nodes.iter().enumerate() {
            let wrap = |e: Error| Error::node(&node.name, &node.op_type, e.to_string());
            match &node.op {
                Op::Conv { window, group, relu } => {
                    let w = graph.const_data(node.inputs[1]).map_err(wrap)?;
                    let b = node.inputs.get(2).map(|&b| graph.const_data(b)).transpose().map_err(wrap)?;
                    let (m, c) = (w.shape[0], graph.shape(node.inputs[0])[1]);
                    let p = if winograd && winograd::applies(window, *group, c, m) {
                        Prepared::Winograd(WinogradConv::new(&w, b.as_deref(), window, *relu).map_err(wrap)?)
                    } else {
                        Prepared::Conv(PreparedConv::new(&w, b.as_deref(), window, *group, *relu).map_err(wrap)?)
                    };
                    prepared.insert(i, p);
                }
                Op::Gemm { .. } => {
                    if let Some(fc) = crate::prep::fc_weights(graph, node) {
                        prepared.insert(i, Prepared::Fc(PreparedFc::new(fc?)));
                    }
                }
                // The rest run from the reference kernels or the unprepared SIMD ones.
                Op::Relu
                | Op::MaxPool { .. }
                | Op::AveragePool { .. }
                | Op::GlobalAveragePool
                | Op::Lrn { .. }
                | Op::Concat { .. }
                | Op::MatMul
                | Op::Add
                | Op::Mul
                | Op::Reshape
                | Op::Identity
                | Op::Transpose { .. }
                | Op::Clip { .. }
                | Op::Softmax { .. }
                | Op::BatchNorm { .. } => {}
            }
        }
        Ok(SimdBackend { prepared, scratch: Vec::new(), winograd })
    }
}

impl Backend for SimdBackend {
    fn name(&self) -> String {
        let wino = if self.winograd { " + Winograd" } else { "" };
        let t = crate::par::threads();
        let threads = if t > 1 { format!(", {t} threads") } else { String::new() };
        let half = if self.prepared.values().any(|p| matches!(p, Prepared::Fc(f) if f.is_half())) { ", f16 FC weights" } else { "" };
        format!("CPU SIMD ({}{wino}{threads}{half})", simd::simd_label())
    }
    fn prepared(&self, index: usize) -> bool {
        self.prepared.contains_key(&index)
    }
    fn writes_into(&self, index: usize) -> bool {
        matches!(self.prepared.get(&index), Some(Prepared::Conv(_) | Prepared::Winograd(_)))
    }
    unsafe fn run_node_into(&mut self, graph: &Graph, index: usize, inputs: &[&Tensor], out: *mut f32, len: usize) -> Result<()> {
        let node = &graph.nodes[index];
        let r = match self.prepared.get(&index) {
            Some(Prepared::Conv(c)) => c.run_into(inputs[0], &mut self.scratch, out, len),
            Some(Prepared::Winograd(c)) => c.run_into(inputs[0], &mut self.scratch, out, len),
            _ => Err(Error::Unsupported("only a prepared conv writes into a concat".into())),
        };
        r.map_err(|e| Error::node(&node.name, &node.op_type, e.to_string()))
    }
    fn run_node(&mut self, graph: &Graph, index: usize, inputs: &[&Tensor]) -> Result<Tensor> {
        let node = &graph.nodes[index];
        let r = match self.prepared.get(&index) {
            Some(Prepared::Conv(c)) => c.run(inputs[0], &mut self.scratch),
            Some(Prepared::Winograd(c)) => c.run(inputs[0], &mut self.scratch),
            Some(Prepared::Fc(f)) => f.run(inputs[0]),
            None => match &node.op {
                Op::MaxPool { window, ceil } => pool::max_pool(inputs[0], window, *ceil),
                Op::Lrn { size, alpha, beta, bias } => pool::lrn(inputs[0], *size, *alpha, *beta, *bias),
                Op::Concat { axis } => concat::concat(inputs, *axis),
                Op::AveragePool { .. } | Op::GlobalAveragePool => {
                    let window = match &node.op {
                        Op::AveragePool { window, .. } => Some(window),
                        _ => None,
                    };
                    match pool::plane_means(inputs[0], window) {
                        Ok(Some(t)) => Ok(t),
                        // A window that is not the whole map.
                        Ok(None) => return reference_node(graph, index, inputs),
                        Err(e) => Err(e),
                    }
                }
                Op::Conv { .. }
                | Op::Gemm { .. }
                | Op::Relu
                | Op::MatMul
                | Op::Add
                | Op::Mul
                | Op::Reshape
                | Op::Identity
                | Op::Transpose { .. }
                | Op::Clip { .. }
                | Op::Softmax { .. }
                | Op::BatchNorm { .. } => return reference_node(graph, index, inputs),
            },
        };
        r.map_err(|e| Error::node(&node.name, &node.op_type, e.to_string()))
    }
}

/// Which activations a run keeps for the caller.
#[derive(Clone, Debug)]
pub enum Keep {
    /// Every node's output (VGG16 at 224: ~60 MB).
    All,
    /// Only the graph outputs.
    Outputs,
    /// The graph outputs and these values.
    These(Vec<ValueId>),
}

pub struct RunOutput {
    /// Kept activations by value id.
    pub values: HashMap<ValueId, Tensor>,
    /// Milliseconds per node, in node order.
    pub node_ms: Vec<f64>,
    pub total_ms: f64,
    /// Concats whose inputs' nodes wrote straight into them (no copy).
    pub concats_in_place: usize,
}

impl RunOutput {
    pub fn get(&self, id: ValueId) -> Option<&Tensor> {
        self.values.get(&id)
    }
}

/// Runs `graph` on `input`. `progress(done, total)` is called after every node.
pub fn run(
    graph: &Graph,
    backend: &mut dyn Backend,
    input: &Tensor,
    keep: &Keep,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunOutput> {
    let want = graph.shape(graph.input);
    if input.shape != want {
        return Err(Error::Input(format!("input has shape {:?}, the model wants {:?}", input.shape, want)));
    }
    if !all_finite(&input.data) {
        return Err(Error::Input("input tensor contains NaN or infinity".into()));
    }
    if !graph.has_weights() {
        return Err(Error::Input("this model has no weights loaded; it can be inspected but not run".into()));
    }
    let mut kept = vec![false; graph.values.len()];
    for &o in &graph.outputs {
        kept[o] = true;
    }
    match keep {
        Keep::All => kept.iter_mut().for_each(|k| *k = true),
        Keep::Outputs => {}
        Keep::These(ids) => ids.iter().for_each(|&i| kept[i] = true),
    }
    // Last node that reads each value: after it runs, the value can go.
    let mut last_use = vec![None; graph.values.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        for &v in &n.inputs {
            last_use[v] = Some(i);
        }
    }

    let into = concat_targets(graph, backend, &kept);
    // Concat buffers being filled by their inputs' nodes, by concat node.
    let mut filling: HashMap<usize, Vec<std::mem::MaybeUninit<f32>>> = HashMap::new();

    let mut computed: Vec<Option<Tensor>> = vec![None; graph.values.len()];
    computed[graph.input] = Some(input.clone());
    let mut node_ms = Vec::with_capacity(graph.nodes.len());
    let start = Instant::now();
    for (i, node) in graph.nodes.iter().enumerate() {
        let t0 = Instant::now();
        if into.fused[i] {
            // Every input wrote its part (`into.target`), so the buffer is whole.
            let buf = filling.remove(&i).ok_or_else(|| Error::node(&node.name, &node.op_type, "no input wrote this concat"))?;
            // SAFETY: the inputs' nodes each wrote all of their part, and the parts tile the
            // output (`concat_targets`).
            computed[node.output] = Some(unsafe { Tensor::from_written(graph.shape(node.output), buf)? });
            node_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            progress(i + 1, graph.nodes.len());
            continue;
        }
        // A reshape or identity (Dropout) whose input dies here takes the input's buffer: a
        // copy of SqueezeNet's last conv output (676 KB) cost 0.006 ms a pass for nothing.
        if let (Op::Reshape | Op::Identity, Some(&v)) = (&node.op, node.inputs.first()) {
            if last_use[v] == Some(i) && !kept[v] && into.target[i].is_none() && !node.inputs[1..].contains(&v) {
                if let Some(mut t) = computed[v].take() {
                    t.shape = graph.shape(node.output).to_vec();
                    computed[node.output] = Some(t);
                    node_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                    drop_dead_inputs(&mut computed, node, i, &last_use, &kept);
                    progress(i + 1, graph.nodes.len());
                    continue;
                }
            }
        }
        let out = {
            // Half-precision weights of a node the backend did not prepare (the reference's FC),
            // widened for this pass only.
            let widened: Vec<Option<Tensor>> = node
                .inputs
                .iter()
                .map(|&v| graph.values[v].half.as_ref().filter(|_| !backend.prepared(i)).map(|h| h.to_f32()))
                .collect();
            let mut ins: Vec<&Tensor> = Vec::with_capacity(node.inputs.len());
            for (k, &v) in node.inputs.iter().enumerate() {
                let t = match (&graph.values[v].data, &widened[k]) {
                    (Some(c), _) => c.as_ref(),
                    (None, Some(w)) => w,
                    (None, None) if graph.values[v].half.is_some() => &NOT_READ,
                    (None, None) => computed[v].as_ref().ok_or_else(|| {
                        Error::node(&node.name, &node.op_type, format!("input '{}' was not computed", graph.values[v].name))
                    })?,
                };
                ins.push(t);
            }
            match into.target[i] {
                Some((c, offset)) => {
                    let total = numel(graph.shape(graph.nodes[c].output))?;
                    let buf = filling.entry(c).or_insert_with(|| {
                        let mut b = Vec::with_capacity(total);
                        // SAFETY: MaybeUninit needs no initialisation.
                        unsafe { b.set_len(total) };
                        b
                    });
                    let len = numel(graph.shape(node.output))?;
                    // SAFETY: offset + len <= total (`concat_targets`), a part no other node writes.
                    unsafe { backend.run_node_into(graph, i, &ins, buf.as_mut_ptr().add(offset) as *mut f32, len)? };
                    None
                }
                None => Some(backend.run_node(graph, i, &ins)?),
            }
        };
        node_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        computed[node.output] = out;
        drop_dead_inputs(&mut computed, node, i, &last_use, &kept);
        progress(i + 1, graph.nodes.len());
    }
    let total_ms = start.elapsed().as_secs_f64() * 1e3;
    let values = computed.into_iter().enumerate().filter(|(i, s)| kept[*i] && s.is_some()).map(|(i, s)| (i, s.unwrap())).collect();
    Ok(RunOutput { values, node_ms, total_ms, concats_in_place: into.fused.iter().filter(|&&f| f).count() })
}

/// Frees node `i`'s inputs that no later node reads and nobody asked to keep.
fn drop_dead_inputs(computed: &mut [Option<Tensor>], node: &crate::graph::Node, i: usize, last_use: &[Option<usize>], kept: &[bool]) {
    for &v in &node.inputs {
        if last_use[v] == Some(i) && !kept[v] {
            computed[v] = None;
        }
    }
}

/// Whether every value is finite: no exponent field all ones, or-ed over the input without an
/// early exit, which vectorises (with SSE2 alone too); an early-exit `any` checked one float
/// at a time (0.04 ms of a 3 ms SqueezeNet pass).
fn all_finite(x: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000;
    x.iter().fold(0u32, |any, v| any | ((v.to_bits() & EXP == EXP) as u32)) == 0
}

/// Which nodes write straight into a concat's buffer: a channel concat of one image whose
/// every input is a node output that nothing else reads, nobody asked to keep, and the
/// backend can write in place (every Fire and Inception module's last convs). Their values
/// are then never materialised on their own.
struct ConcatTargets {
    /// By node: (the concat node, offset of this node's part in floats).
    target: Vec<Option<(usize, usize)>>,
    /// By node: a concat whose inputs all write into it.
    fused: Vec<bool>,
}

fn concat_targets(graph: &Graph, backend: &dyn Backend, kept: &[bool]) -> ConcatTargets {
    let n = graph.nodes.len();
    let mut out = ConcatTargets { target: vec![None; n], fused: vec![false; n] };
    let mut producer = vec![None; graph.values.len()];
    let mut readers = vec![0usize; graph.values.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        producer[node.output] = Some(i);
        node.inputs.iter().for_each(|&v| readers[v] += 1);
    }
    for (c, node) in graph.nodes.iter().enumerate() {
        let Op::Concat { axis: 1 } = node.op else { continue };
        if node.inputs.is_empty() || graph.shape(node.output).first() != Some(&1) {
            continue;
        }
        let writers: Option<Vec<usize>> = node
            .inputs
            .iter()
            .map(|&v| producer[v].filter(|&p| readers[v] == 1 && !kept[v] && p < c && backend.writes_into(p)))
            .collect();
        let Some(writers) = writers else { continue };
        let mut offset = 0;
        for (&p, &v) in writers.iter().zip(&node.inputs) {
            out.target[p] = Some((c, offset));
            offset += graph.shape(v).iter().product::<usize>();
        }
        out.fused[c] = true;
    }
    out
}

/// Whether the main output is already a probability distribution (ends in Softmax).
pub fn output_kind(graph: &Graph) -> crate::graph::OutputKind {
    output_kind_of(graph, graph.outputs[0])
}

/// Whether the value `output` is already a probability distribution: a Softmax, maybe behind
/// reshapes. Auxiliary heads answer for themselves (GoogLeNet's end in Softmax too).
pub fn output_kind_of(graph: &Graph, output: ValueId) -> crate::graph::OutputKind {
    let producers = graph.producers();
    let mut v = output;
    while let Some(p) = producers[v] {
        match graph.nodes[p].op {
            Op::Softmax { .. } => return crate::graph::OutputKind::Probabilities,
            Op::Reshape | Op::Identity => v = graph.nodes[p].inputs[0],
            _ => break,
        }
    }
    crate::graph::OutputKind::Logits
}
