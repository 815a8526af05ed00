//! Importing an .onnx file as it arrives, without ever holding the whole file: VGG16 is 553 MB,
//! and a browser tab that keeps the file *and* its weights as floats (and prost's copy of each
//! tensor's bytes) needs three times that.
//!
//! Only the framing of three messages is walked by hand (ModelProto > GraphProto >
//! TensorProto): every field except a tensor's `raw_data` is copied into a small skeleton of
//! its message, which prost decodes at the end (protobuf allows a message's fields to be split
//! and concatenated). A float tensor's `raw_data` is streamed straight into the buffer that
//! becomes its weights, so the peak is about one copy of the weights, not three.

use std::collections::HashMap;

use prost::Message;

use super::proto::{tensor_proto::DataType, GraphProto, ModelProto, TensorProto};
use crate::error::{Error, Result};

/// ModelProto.graph, GraphProto.initializer, TensorProto.raw_data.
const MODEL_GRAPH: u64 = 7;
const GRAPH_INITIALIZER: u64 = 5;
const TENSOR_RAW_DATA: u64 = 9;
/// Longest field header: a tag and a length, 10 bytes each at most.
const MAX_HEADER: usize = 20;

enum Mode {
    /// Reading a field's header (tag, and its length or varint value) into `head`.
    Header,
    /// A field's payload, copied into the skeleton of the message it belongs to.
    Copy(u64),
    /// A tensor's raw_data, into `raw`.
    Raw(u64),
}

/// A tensor's raw_data as little-endian 4-byte words, already the `Vec<f32>` its weights will
/// be (bits kept exactly; a non-float tensor is turned back into bytes), or, under the f16
/// option for a large 2-D float tensor (an FC layer's weights), already rounded to halves, so
/// the f32 tensor never exists.
struct Raw {
    sink: Sink,
    bytes: usize,
    /// A word split across chunks, its first bytes.
    pending: [u8; 4],
}

enum Sink {
    F32(Vec<f32>),
    F16 { bits: Vec<u16>, beyond_range: bool },
}

impl Sink {
    fn extend(&mut self, words: impl Iterator<Item = f32>) {
        match self {
            Sink::F32(v) => v.extend(words),
            Sink::F16 { bits, beyond_range } => {
                for w in words {
                    let h = crate::half::to_half(w);
                    *beyond_range |= h.is_none();
                    bits.push(h.unwrap_or(0));
                }
            }
        }
    }
}

/// How the weights are held once imported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightPrecision {
    #[default]
    F32,
    /// Fully connected layers' weights in half precision (2-D float tensors of at least
    /// `half::MIN_ELEMENTS`; widened back to f32 where anything but an FC layer reads them).
    FcF16,
}

/// What a finished stream holds: the ModelProto without its streamed tensors' bytes, and those
/// tensors by initializer name.
pub(super) struct Streamed {
    pub(super) model: ModelProto,
    pub(super) floats: HashMap<String, Vec<f32>>,
    pub(super) halves: HashMap<String, Vec<u16>>,
}

/// Feed it the file's bytes in chunks of any size (`push`), then `finish`.
pub struct StreamImport {
    mode: Mode,
    head: Vec<u8>,
    /// 0: ModelProto, 1: inside its graph, 2: inside an initializer.
    depth: u8,
    graph_left: u64,
    tensor_left: u64,
    saw_graph: bool,
    model_skel: Vec<u8>,
    graph_skel: Vec<u8>,
    tensor_skel: Vec<u8>,
    raw: Option<Raw>,
    tensors: Vec<(Vec<u8>, Option<Raw>)>,
    received: u64,
    /// The file's size when known: a tensor's buffer is sized from its header only when the
    /// header's length fits in it (a corrupt length must not reserve gigabytes).
    total: Option<u64>,
    precision: WeightPrecision,
}

impl Default for StreamImport {
    fn default() -> Self {
        StreamImport {
            mode: Mode::Header,
            head: Vec::with_capacity(MAX_HEADER),
            depth: 0,
            graph_left: 0,
            tensor_left: 0,
            saw_graph: false,
            model_skel: Vec::new(),
            graph_skel: Vec::new(),
            tensor_skel: Vec::new(),
            raw: None,
            tensors: Vec::new(),
            received: 0,
            total: None,
            precision: WeightPrecision::F32,
        }
    }
}

fn corrupt(what: &str) -> Error {
    Error::NotOnnx(format!("cannot decode protobuf ({what}); truncated or not an .onnx file?"))
}

/// A varint at the start of `b`: Some((value, length)) once complete.
fn varint(b: &[u8]) -> Result<Option<(u64, usize)>> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate() {
        if i == 10 {
            return Err(corrupt("a varint longer than 10 bytes"));
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    Ok(None)
}

/// An empty buffer with room for `words` values (of a tensor of `len` bytes).
fn reserved<T>(words: usize, len: u64) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(words).map_err(|_| Error::TooLarge(format!("a tensor of {len} bytes does not fit in memory")))?;
    Ok(v)
}

/// A complete field header in `head`: (field, wire type, length or value).
fn header(head: &[u8]) -> Result<Option<(u64, u64, u64)>> {
    let Some((tag, n)) = varint(head)? else { return Ok(None) };
    let (field, wire) = (tag >> 3, tag & 7);
    if field == 0 {
        return Err(corrupt("field number 0"));
    }
    match wire {
        0 | 2 => Ok(varint(&head[n..])?.map(|(v, m)| (n + m == head.len()).then_some((field, wire, v))).flatten()),
        1 | 5 => Ok(Some((field, wire, 0))),
        _ => Err(corrupt(&format!("wire type {wire}"))),
    }
}

impl StreamImport {
    pub fn new() -> Self {
        Self::default()
    }

    /// For a file of `total` bytes (Content-Length, the file's size).
    pub fn with_total(total: u64) -> Self {
        StreamImport { total: Some(total), ..Self::default() }
    }

    /// Weights held in `precision` once imported.
    pub fn precision(self, precision: WeightPrecision) -> Self {
        StreamImport { precision, ..self }
    }

    /// Whether the tensor whose raw_data of `len` bytes starts now is held in half precision:
    /// under the f16 option, a 2-D float tensor of at least `half::MIN_ELEMENTS` that only
    /// Gemms read, as their B. Its dims and type, and the graph's nodes, come before its data in
    /// every exporter's files (protobuf writes fields in number order); where they did not, the
    /// tensor stays f32, so no other op's weights are ever rounded.
    fn rounds_to_half(&self, len: u64) -> bool {
        if self.precision != WeightPrecision::FcF16 {
            return false;
        }
        let Ok(t) = TensorProto::decode(&self.tensor_skel[..]) else { return false };
        let n: i64 = t.dims.iter().product();
        let large_matrix = t.data_type() == DataType::Float as i32 && t.dims.len() == 2 && n >= crate::half::MIN_ELEMENTS as i64 && len == 4 * n as u64;
        if !large_matrix {
            return false;
        }
        let Ok(graph) = GraphProto::decode(&self.graph_skel[..]) else { return false };
        let mut readers = graph.node.iter().filter(|node| node.input.iter().any(|i| i == t.name())).peekable();
        let a_not_transposed = |node: &super::proto::NodeProto| node.attribute.iter().all(|a| a.name() != "transA" || a.i() == 0);
        readers.peek().is_some()
            && readers.all(|node| node.op_type() == "Gemm" && a_not_transposed(node) && node.input.iter().position(|i| i == t.name()) == Some(1) && node.input.iter().filter(|i| *i == t.name()).count() == 1)
    }

    /// Bytes taken so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    fn skel(&mut self) -> &mut Vec<u8> {
        match self.depth {
            0 => &mut self.model_skel,
            1 => &mut self.graph_skel,
            _ => &mut self.tensor_skel,
        }
    }

    /// `n` bytes of the current message were read: the enclosing messages have that many fewer.
    fn consume(&mut self, n: u64) -> Result<()> {
        if self.depth >= 1 {
            self.graph_left = self.graph_left.checked_sub(n).ok_or_else(|| corrupt("a field runs past its graph"))?;
        }
        if self.depth == 2 {
            self.tensor_left = self.tensor_left.checked_sub(n).ok_or_else(|| corrupt("a field runs past its tensor"))?;
        }
        Ok(())
    }

    /// Leaves the messages whose bytes are all read.
    fn close_frames(&mut self) {
        if self.depth == 2 && self.tensor_left == 0 {
            let skel = std::mem::take(&mut self.tensor_skel);
            self.tensors.push((skel, self.raw.take()));
            self.depth = 1;
        }
        if self.depth == 1 && self.graph_left == 0 {
            self.depth = 0;
        }
    }

    pub fn push(&mut self, mut chunk: &[u8]) -> Result<()> {
        self.received += chunk.len() as u64;
        while !chunk.is_empty() {
            if matches!(self.mode, Mode::Header) {
                self.close_frames();
            }
            match self.mode {
                Mode::Header => {
                    self.head.push(chunk[0]);
                    chunk = &chunk[1..];
                    if self.head.len() > MAX_HEADER {
                        return Err(corrupt("a field header longer than 20 bytes"));
                    }
                    let Some((field, wire, len)) = header(&self.head)? else { continue };
                    let head = std::mem::take(&mut self.head);
                    self.consume(head.len() as u64)?;
                    match (self.depth, field, wire) {
                        (0, MODEL_GRAPH, 2) => {
                            self.depth = 1;
                            self.graph_left = len;
                            self.saw_graph = true;
                        }
                        (1, GRAPH_INITIALIZER, 2) => {
                            self.depth = 2;
                            self.tensor_left = len;
                        }
                        (2, TENSOR_RAW_DATA, 2) if len > 0 && len % 4 == 0 && self.raw.is_none() => {
                            // Sized from the header only when the header's length fits in the file.
                            let words = if self.total.is_some_and(|t| len <= t.saturating_sub(self.received)) { (len / 4) as usize } else { 0 };
                            let sink = if self.rounds_to_half(len) {
                                Sink::F16 { bits: reserved(words, len)?, beyond_range: false }
                            } else {
                                Sink::F32(reserved(words, len)?)
                            };
                            self.raw = Some(Raw { sink, bytes: 0, pending: [0; 4] });
                            self.mode = Mode::Raw(len);
                        }
                        _ => {
                            self.skel().extend_from_slice(&head);
                            self.mode = match wire {
                                2 => Mode::Copy(len),
                                1 => Mode::Copy(8),
                                5 => Mode::Copy(4),
                                _ => Mode::Header,
                            };
                        }
                    }
                    if matches!(self.mode, Mode::Copy(0)) {
                        self.mode = Mode::Header;
                    }
                    self.head = head;
                    self.head.clear();
                }
                Mode::Copy(left) => {
                    let n = (left.min(chunk.len() as u64)) as usize;
                    self.consume(n as u64)?;
                    self.skel().extend_from_slice(&chunk[..n]);
                    chunk = &chunk[n..];
                    self.mode = if left == n as u64 { Mode::Header } else { Mode::Copy(left - n as u64) };
                }
                Mode::Raw(left) => {
                    let n = (left.min(chunk.len() as u64)) as usize;
                    self.consume(n as u64)?;
                    let raw = self.raw.as_mut().expect("raw set with Mode::Raw");
                    let mut bytes = &chunk[..n];
                    // Words as their little-endian values; a word split across chunks is
                    // finished byte by byte.
                    while raw.bytes % 4 != 0 && !bytes.is_empty() {
                        raw.pending[raw.bytes % 4] = bytes[0];
                        raw.bytes += 1;
                        bytes = &bytes[1..];
                        if raw.bytes % 4 == 0 {
                            raw.sink.extend(std::iter::once(f32::from_le_bytes(raw.pending)));
                        }
                    }
                    let whole = bytes.chunks_exact(4);
                    let rest = whole.remainder();
                    raw.sink.extend(whole.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
                    raw.bytes += bytes.len() - rest.len();
                    for &b in rest {
                        raw.pending[raw.bytes % 4] = b;
                        raw.bytes += 1;
                    }
                    chunk = &chunk[n..];
                    self.mode = if left == n as u64 { Mode::Header } else { Mode::Raw(left - n as u64) };
                }
            }
        }
        Ok(())
    }

    /// The whole file has been pushed: its ModelProto, and the float weights streamed aside
    /// (by initializer name; their TensorProtos keep everything but raw_data).
    pub(super) fn finish(mut self) -> Result<Streamed> {
        if self.received == 0 {
            return Err(Error::NotOnnx("the file is empty".into()));
        }
        if matches!(self.mode, Mode::Header) {
            self.close_frames();
        }
        if !matches!(self.mode, Mode::Header) || !self.head.is_empty() || self.depth != 0 {
            return Err(corrupt("the file ends inside a field"));
        }
        let decode_err = |e: prost::DecodeError| corrupt(&e.to_string());
        let mut model = ModelProto::decode(&self.model_skel[..]).map_err(decode_err)?;
        let (mut floats, mut halves) = (HashMap::new(), HashMap::new());
        if !self.saw_graph {
            return Ok(Streamed { model, floats, halves });
        }
        let mut graph = GraphProto::decode(&self.graph_skel[..]).map_err(decode_err)?;
        for (skel, raw) in self.tensors {
            let mut t = TensorProto::decode(&skel[..]).map_err(decode_err)?;
            let named = |t: &TensorProto| floats.contains_key(t.name()) || halves.contains_key(t.name());
            match raw.map(|r| r.sink) {
                None => {}
                Some(Sink::F16 { beyond_range: true, .. }) => return Err(crate::half::out_of_range(t.name())),
                Some(Sink::F16 { bits, .. }) if !named(&t) => {
                    halves.insert(t.name().to_string(), bits);
                }
                Some(Sink::F16 { .. }) => return Err(Error::NotOnnx(format!("two initializers are named '{}'", t.name()))),
                Some(Sink::F32(words)) if t.data_type() == DataType::Float as i32 && !named(&t) => {
                    floats.insert(t.name().to_string(), words);
                }
                // Not weights (shapes, indices): small; back to bytes for the usual path.
                Some(Sink::F32(words)) => t.raw_data = Some(words.iter().flat_map(|w| w.to_bits().to_le_bytes()).collect()),
            }
            graph.initializer.push(t);
        }
        model.graph = Some(graph);
        Ok(Streamed { model, floats, halves })
    }
}
