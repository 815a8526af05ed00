//! Target shapes of the reshape-like ops (Flatten, Reshape, Squeeze, Unsqueeze, Identity,
//! Dropout): computed once at import, so at run time they move no data.

use super::ops::NodeCx;
use super::Importer;
use crate::error::Result;

impl Importer<'_> {
    // Long but flat: one arm per reshape-like op of the table.
    pub(super) fn reshape_target(&self, cx: &NodeCx, in_shape: &[usize]) -> Result<Vec<usize>> {
        let node = cx.node;
        let op = node.op_type();
        let a = &cx.attrs;
        let err = |msg: String| cx.err(msg);
        match op {
            "Identity" | "Dropout" => {
                Ok(in_shape.to_vec())
            }
            "Flatten" => {
                let axis = a.int("axis", 1);
                let axis = if axis < 0 { axis + in_shape.len() as i64 } else { axis };
                if axis < 0 || axis as usize > in_shape.len() {
                    return Err(err(format!("axis {axis} out of range")));
                }
                let axis = axis as usize;
                Ok(vec![in_shape[..axis].iter().product(), in_shape[axis..].iter().product()])
            }
            "Reshape" => {
                let target = match self.const_input(node, 1) {
                    Some(c) => c.as_i64(),
                    None if node.input.len() < 2 => a.ints("shape").ok_or_else(|| err("no target shape".into()))?,
                    None => return Err(err("the target shape must be a constant".into())),
                };
                let allow_zero = a.int("allowzero", 0) != 0;
                let total: usize = in_shape.iter().product();
                let mut out = Vec::new();
                let mut infer_at = None;
                for (i, &d) in target.iter().enumerate() {
                    out.push(match d {
                        -1 if infer_at.is_none() => {
                            infer_at = Some(i);
                            1
                        }
                        0 if !allow_zero => *in_shape.get(i).ok_or_else(|| err(format!("0 at axis {i} has no input dim to copy")))?,
                        d if d >= 0 => d as usize,
                        _ => return Err(err(format!("invalid target shape {target:?}"))),
                    });
                }
                if let Some(i) = infer_at {
                    let known: usize = out.iter().product();
                    if known == 0 || total % known != 0 {
                        return Err(err(format!("cannot reshape {in_shape:?} to {target:?}")));
                    }
                    out[i] = total / known;
                }
                Ok(out)
            }
            "Squeeze" | "Unsqueeze" => {
                let axes = match (a.ints("axes"), self.const_input(node, 1)) {
                    (Some(v), _) => Some(v),
                    (None, Some(c)) => Some(c.as_i64()),
                    (None, None) if node.input.len() > 1 && !node.input[1].is_empty() => {
                        return Err(err("axes must be a constant".into()))
                    }
                    _ => None,
                };
                if op == "Squeeze" {
                    let rank = in_shape.len() as i64;
                    let axes: Vec<usize> = match axes {
                        Some(v) => v.iter().map(|&x| (if x < 0 { x + rank } else { x }) as usize).collect(),
                        None => (0..in_shape.len()).filter(|&i| in_shape[i] == 1).collect(),
                    };
                    for &x in &axes {
                        if in_shape.get(x) != Some(&1) {
                            return Err(err(format!("cannot squeeze axis {x} of {in_shape:?}")));
                        }
                    }
                    Ok(in_shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect())
                } else {
                    let axes = axes.ok_or_else(|| err("axes are required".into()))?;
                    let rank = (in_shape.len() + axes.len()) as i64;
                    let mut axes: Vec<usize> = axes.iter().map(|&x| (if x < 0 { x + rank } else { x }) as usize).collect();
                    axes.sort();
                    let mut out = Vec::new();
                    let mut src = in_shape.iter();
                    for i in 0..rank as usize {
                        if axes.contains(&i) {
                            out.push(1);
                        } else {
                            out.push(*src.next().ok_or_else(|| err(format!("bad axes {axes:?}")))?);
                        }
                    }
                    Ok(out)
                }
            }
            _ => Err(err(format!("{op} is not a reshape-like op"))),
        }
    }
}
