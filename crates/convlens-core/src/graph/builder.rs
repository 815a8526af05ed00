//! Builds a `Graph` node by node, inferring each shape as it goes; the ONNX importer and the
//! built-in architectures both use it, so a graph is shape-checked however it was made.

use std::collections::HashMap;
use std::sync::Arc;

use super::{shapes, Graph, Node, Op, Preprocess, Value, ValueId};
use crate::error::{Error, Result};
use crate::half::HalfTensor;
use crate::tensor::{numel, Tensor};

#[derive(Default)]
pub struct GraphBuilder {
    values: Vec<Value>,
    nodes: Vec<Node>,
    by_name: HashMap<String, ValueId>,
    folded: Vec<ValueId>,
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn lookup(&self, name: &str) -> Option<ValueId> {
        self.by_name.get(name).copied()
    }

    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id]
    }

    pub fn shape(&self, id: ValueId) -> &[usize] {
        &self.values[id].shape
    }

    fn add_value(&mut self, value: Value) -> ValueId {
        let id = self.values.len();
        self.by_name.insert(value.name.clone(), id);
        self.values.push(value);
        id
    }

    pub fn input(&mut self, name: &str, shape: Vec<usize>) -> Result<ValueId> {
        numel(&shape)?;
        Ok(self.add_value(Value::activation(name, shape)))
    }

    /// A weight or folded constant; `data` is `None` for an analytics-only model.
    pub fn constant(&mut self, name: &str, shape: Vec<usize>, data: Option<Arc<Vec<f32>>>) -> Result<ValueId> {
        let n = numel(&shape)?;
        if let Some(d) = &data {
            if d.len() != n {
                return Err(Error::Shape(format!("constant '{name}' has shape {shape:?} but {} values", d.len())));
            }
        }
        let data = match data {
            Some(d) => Some(Arc::new(Tensor::new(shape.clone(), Arc::unwrap_or_clone(d))?)),
            None => None,
        };
        Ok(self.add_value(Value { name: name.into(), shape, data, half: None, is_const: true }))
    }

    /// A weight held in half precision (the f16 option).
    pub fn half_constant(&mut self, name: &str, data: HalfTensor) -> Result<ValueId> {
        if numel(&data.shape)? != data.bits.len() {
            return Err(Error::Shape(format!("constant '{name}' has shape {:?} but {} values", data.shape, data.bits.len())));
        }
        Ok(self.add_value(Value { name: name.into(), shape: data.shape.clone(), data: None, half: Some(Arc::new(data)), is_const: true }))
    }

    /// Adds a node, inferring its output shape (or taking `shape` for reshape-like ops).
    pub fn node_with_shape(
        &mut self,
        name: &str,
        op_type: &str,
        op: Op,
        inputs: Vec<ValueId>,
        output: &str,
        shape: Option<Vec<usize>>,
    ) -> Result<ValueId> {
        let shape = match shape {
            Some(s) => s,
            None => {
                let ins: Vec<&[usize]> = inputs.iter().map(|&i| self.values[i].shape.as_slice()).collect();
                shapes::infer(&op, &ins).map_err(|e| Error::node(name, op_type, e.to_string()))?
            }
        };
        numel(&shape).map_err(|e| Error::node(name, op_type, e.to_string()))?;
        let out = self.add_value(Value::activation(output, shape));
        self.nodes.push(Node { name: name.into(), op_type: op_type.into(), op, inputs, output: out, fused_relu: None });
        Ok(out)
    }

    pub fn node(&mut self, name: &str, op_type: &str, op: Op, inputs: Vec<ValueId>, output: &str) -> Result<ValueId> {
        self.node_with_shape(name, op_type, op, inputs, output, None)
    }

    /// Mutable access to the last node, for fusions made while importing.
    pub fn last_node_mut(&mut self) -> Option<&mut Node> {
        self.nodes.last_mut()
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Records that constant `id` is the output of nodes of the file folded at import.
    pub fn mark_folded(&mut self, id: ValueId) {
        self.folded.push(id);
    }

    /// Gives a value the name of the op that was fused into its producer (ReLU, BatchNorm),
    /// so the value shows under the name a user sees in other tools; the old name still resolves.
    pub fn rename(&mut self, id: ValueId, name: &str) {
        self.values[id].name = name.to_string();
        self.by_name.insert(name.to_string(), id);
    }

    pub fn finish(
        self,
        name: &str,
        input: ValueId,
        outputs: Vec<ValueId>,
        preprocess: Preprocess,
        untrained: bool,
    ) -> Graph {
        Graph { name: name.into(), values: self.values, nodes: self.nodes, input, outputs, preprocess, untrained, folded: self.folded }
    }
}
