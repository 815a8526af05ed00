//! A node's attributes by name: unknown ones refused (so a model is never run with a setting
//! silently ignored), typed getters with ONNX's defaults, window geometry with auto_pad.

use std::collections::HashMap;

use super::proto::{AttributeProto, NodeProto};
use crate::error::{Error, Result};
use crate::graph::Window;

/// Attributes that old exporters (Caffe2, early opsets) write and that change nothing at inference.
const IGNORED_ATTRS: &[&str] = &["is_test", "ratio", "seed", "momentum", "spatial", "broadcast", "consumed_inputs", "training_mode"];

pub(super) struct Attrs<'a> {
    node: &'a NodeProto,
    pub(super) by_name: HashMap<&'a str, &'a AttributeProto>,
}

impl<'a> Attrs<'a> {
    pub(super) fn new(node: &'a NodeProto, known: &[&str]) -> Result<Self> {
        let mut by_name = HashMap::new();
        for a in &node.attribute {
            let name = a.name();
            if !known.contains(&name) && !IGNORED_ATTRS.contains(&name) {
                return Err(Error::node(node.name(), node.op_type(), format!("unsupported attribute '{name}'")));
            }
            by_name.insert(name, a);
        }
        Ok(Attrs { node, by_name })
    }

    pub(super) fn err(&self, msg: impl Into<String>) -> Error {
        Error::node(self.node.name(), self.node.op_type(), msg)
    }

    pub(super) fn int(&self, name: &str, default: i64) -> i64 {
        self.by_name.get(name).and_then(|a| a.i).unwrap_or(default)
    }

    pub(super) fn float(&self, name: &str, default: f32) -> f32 {
        self.by_name.get(name).and_then(|a| a.f).unwrap_or(default)
    }

    pub(super) fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.by_name.get(name).map(|a| a.ints.clone())
    }

    pub(super) fn string(&self, name: &str) -> Option<String> {
        self.by_name.get(name).and_then(|a| a.s.as_ref()).map(|s| String::from_utf8_lossy(s).into_owned())
    }

    pub(super) fn usizes(&self, name: &str, len: usize, default: usize) -> Result<Vec<usize>> {
        match self.ints(name) {
            None => Ok(vec![default; len]),
            Some(v) if v.len() == len && v.iter().all(|&x| x >= 0) => Ok(v.iter().map(|&x| x as usize).collect()),
            Some(v) => Err(self.err(format!("attribute '{name}' = {v:?}: expected {len} non-negative values"))),
        }
    }

    /// Window geometry with ONNX's auto_pad, pads, strides and dilations.
    pub(super) fn window(&self, kernel: [usize; 2], input_hw: [usize; 2]) -> Result<Window> {
        if kernel.contains(&0) {
            return Err(self.err(format!("kernel_shape {kernel:?} has a zero")));
        }
        let s = self.usizes("strides", 2, 1)?;
        let d = self.usizes("dilations", 2, 1)?;
        if s.contains(&0) || d.contains(&0) {
            return Err(self.err("strides and dilations must be positive"));
        }
        let mut window = Window { kernel, strides: [s[0], s[1]], pads: [0; 4], dilations: [d[0], d[1]] };
        let auto_pad = self.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
        match auto_pad.as_str() {
            "NOTSET" => {
                let p = self.usizes("pads", 4, 0)?;
                window.pads = [p[0], p[1], p[2], p[3]];
            }
            "VALID" => {}
            "SAME_UPPER" | "SAME_LOWER" => {
                let k = window.effective_kernel();
                for axis in 0..2 {
                    let out = input_hw[axis].div_ceil(window.strides[axis]);
                    let total = ((out - 1) * window.strides[axis] + k[axis]).saturating_sub(input_hw[axis]);
                    let small = total / 2;
                    let (begin, end) = if auto_pad == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                    window.pads[axis] = begin;
                    window.pads[axis + 2] = end;
                }
            }
            other => return Err(self.err(format!("unknown auto_pad '{other}'"))),
        }
        Ok(window)
    }
}

pub(super) fn normalize_axis(axis: i64, rank: usize, attrs: &Attrs) -> Result<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a as usize >= rank.max(1) {
        return Err(attrs.err(format!("axis {axis} out of range for rank {rank}")));
    }
    Ok(a as usize)
}
