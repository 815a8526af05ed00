//! ONNX tensors as constants the importer can fold: float weights shared (no copies when a
//! Reshape is folded or the graph takes them over), int64 shapes and axes.

use std::sync::Arc;

use super::proto;
use super::proto::tensor_proto::DataType;
use super::proto::TensorProto;
use crate::error::{Error, Result};
use crate::tensor::numel;

#[derive(Clone, Debug)]
pub(super) enum ConstData {
    /// Shared, so folding a Reshape or handing weights to the graph copies no floats.
    F32(Arc<Vec<f32>>),
    I64(Vec<i64>),
    /// Rounded to half precision as it streamed in (the f16 option): finite values only.
    F16(Arc<Vec<u16>>),
}

#[derive(Clone, Debug)]
pub(super) struct Const {
    pub(super) shape: Vec<usize>,
    pub(super) data: ConstData,
}

impl Const {
    pub(super) fn as_i64(&self) -> Vec<i64> {
        match &self.data {
            ConstData::I64(v) => v.clone(),
            ConstData::F32(v) => v.iter().map(|&x| x as i64).collect(),
            ConstData::F16(v) => v.iter().map(|&h| crate::half::to_f32(h) as i64).collect(),
        }
    }

    pub(super) fn as_f32(&self) -> Arc<Vec<f32>> {
        match &self.data {
            ConstData::F32(v) => Arc::clone(v),
            ConstData::I64(v) => Arc::new(v.iter().map(|&x| x as f32).collect()),
            ConstData::F16(v) => Arc::new(v.iter().map(|&h| crate::half::to_f32(h)).collect()),
        }
    }
}

fn dims(t: &TensorProto) -> Result<Vec<usize>> {
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| Error::NotOnnx(format!("tensor '{}' has negative dim {d}", t.name()))))
        .collect::<Result<Vec<_>>>()?;
    numel(&shape)?;
    Ok(shape)
}

/// A float tensor whose raw_data was streamed aside (`StreamImport`), checked as
/// `tensor_const` checks it.
pub(super) fn streamed_const(t: &TensorProto, v: Vec<f32>) -> Result<Const> {
    streamed(t, v, ConstData::F32)
}

/// The same for a tensor the stream rounded to half precision.
pub(super) fn streamed_half(t: &TensorProto, bits: Vec<u16>) -> Result<Const> {
    streamed(t, bits, ConstData::F16)
}

fn streamed<T>(t: &TensorProto, v: Vec<T>, kind: fn(Arc<Vec<T>>) -> ConstData) -> Result<Const> {
    let shape = dims(t)?;
    let n = numel(&shape)?;
    if v.len() != n {
        return Err(Error::NotOnnx(format!("tensor '{}' of shape {shape:?} holds {} values (truncated or corrupt file?)", t.name(), v.len())));
    }
    Ok(Const { shape, data: kind(Arc::new(v)) })
}

// Long but flat: one arm per ONNX data type, each checking its length before reading.
pub(super) fn tensor_const(t: &TensorProto) -> Result<Const> {
    let shape = dims(t)?;
    let n = numel(&shape)?;
    if t.data_location == Some(proto::tensor_proto::DataLocation::External as i32) {
        return Err(Error::Unsupported(format!(
            "tensor '{}' keeps its data in an external file; export the model with weights inside the .onnx",
            t.name()
        )));
    }
    let bad_len = |got: usize| {
        Error::NotOnnx(format!("tensor '{}' of shape {shape:?} holds {got} values (truncated or corrupt file?)", t.name()))
    };
    let raw = t.raw_data.as_deref().unwrap_or(&[]);
    let data = match DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined) {
        DataType::Float => {
            let v: Vec<f32> = if !raw.is_empty() {
                if raw.len() != n * 4 {
                    return Err(bad_len(raw.len() / 4));
                }
                raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            } else {
                t.float_data.clone()
            };
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            ConstData::F32(Arc::new(v))
        }
        DataType::Double => {
            let v: Vec<f32> = if !raw.is_empty() {
                if raw.len() != n * 8 {
                    return Err(bad_len(raw.len() / 8));
                }
                raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32).collect()
            } else {
                t.double_data.iter().map(|&x| x as f32).collect()
            };
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            ConstData::F32(Arc::new(v))
        }
        DataType::Int64 => {
            let v: Vec<i64> = if !raw.is_empty() {
                if raw.len() != n * 8 {
                    return Err(bad_len(raw.len() / 8));
                }
                raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
            } else {
                t.int64_data.clone()
            };
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            ConstData::I64(v)
        }
        DataType::Int32 => {
            let v: Vec<i64> = if !raw.is_empty() {
                if raw.len() != n * 4 {
                    return Err(bad_len(raw.len() / 4));
                }
                raw.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64).collect()
            } else {
                t.int32_data.iter().map(|&x| x as i64).collect()
            };
            if v.len() != n {
                return Err(bad_len(v.len()));
            }
            ConstData::I64(v)
        }
        DataType::Int8 | DataType::Uint8 => {
            return Err(Error::Unsupported(format!(
                "tensor '{}' is int8/uint8: quantized models are not supported; use the fp32 model",
                t.name()
            )))
        }
        other => {
            return Err(Error::Unsupported(format!("tensor '{}' has data type {other:?}; only float32 weights are supported", t.name())))
        }
    };
    Ok(Const { shape, data })
}
