//! Fusions made at import: ReLU into the Conv or Gemm before it, an inference BatchNorm into
//! its Conv's weights. The fused node remembers the value it no longer writes, so the whole
//! original graph can still be read (`Graph::unfused`).

use std::sync::Arc;

use super::proto::NodeProto;
use super::Importer;
use crate::error::{Error, Result};
use crate::graph::{FusedRelu, Op};

impl Importer<'_> {
    /// Folds ReLU (node `relu_name`) into the Conv or Gemm that produced `x` when nothing else
    /// reads `x`.
    pub(super) fn try_fuse_relu(&mut self, x: &str, out_name: &str, relu_name: &str) -> bool {
        if self.uses.get(x).copied().unwrap_or(0) != 1 {
            return false;
        }
        let Some(id) = self.b.lookup(x) else { return false };
        let Some(node) = self.b.last_node_mut().filter(|n| n.output == id) else { return false };
        match &mut node.op {
            Op::Conv { relu, .. } | Op::Gemm { relu, .. } if !*relu => *relu = true,
            _ => return false,
        }
        node.op_type.push_str("+Relu");
        node.fused_relu = Some(FusedRelu { node: relu_name.to_string(), input: x.to_string() });
        self.b.rename(id, out_name);
        true
    }

    /// Folds an inference BatchNormalization into the preceding Conv's weights and bias.
    pub(super) fn try_fold_batchnorm(&mut self, node: &NodeProto, eps: f32, out_name: &str) -> Result<bool> {
        let x = node.input[0].as_str();
        if self.uses.get(x).copied().unwrap_or(0) != 1 || !(1..5).all(|i| self.const_input(node, i).is_some()) {
            return Ok(false);
        }
        let Some(id) = self.b.lookup(x) else { return Ok(false) };
        let params: Vec<Arc<Vec<f32>>> = (1..5).map(|i| self.const_input(node, i).unwrap().as_f32()).collect();
        let (scale, shift, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
        let Some(conv) = self.b.nodes().last().filter(|n| n.output == id && matches!(n.op, Op::Conv { relu: false, .. })) else {
            return Ok(false);
        };
        let (w_id, b_id) = (conv.inputs[1], conv.inputs.get(2).copied());
        let m = self.b.shape(w_id)[0];
        if [scale, shift, mean, var].iter().any(|p| p.len() != m) {
            return Err(Error::node(node.name(), node.op_type(), format!("parameters do not match {m} channels")));
        }
        let Some(w) = self.b.value(w_id).data.clone() else { return Ok(false) };
        let per = w.len() / m;
        let mut w2 = w.data.clone();
        let mut b2 = match b_id.and_then(|b| self.b.value(b).data.clone()) {
            Some(b) => b.data.clone(),
            None => vec![0.0; m],
        };
        let (k, t) = crate::prep::batchnorm_affine(scale, shift, mean, var, eps);
        for c in 0..m {
            w2[c * per..(c + 1) * per].iter_mut().for_each(|v| *v *= k[c]);
            b2[c] = b2[c] * k[c] + t[c];
        }
        let w_name = format!("{}_bnfolded", self.b.value(w_id).name);
        let w_shape = self.b.shape(w_id).to_vec();
        let new_w = self.b.constant(&w_name, w_shape, Some(Arc::new(w2)))?;
        let new_b = self.b.constant(&format!("{}_bias_bnfolded", node.name()), vec![m], Some(Arc::new(b2)))?;
        let conv = self.b.last_node_mut().unwrap();
        conv.inputs = vec![conv.inputs[0], new_w, new_b];
        conv.op_type.push_str("+BatchNormalization");
        self.b.rename(id, out_name);
        Ok(true)
    }
}
