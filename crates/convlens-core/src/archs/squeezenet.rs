//! SqueezeNet 1.1 (Iandola et al.; the 1.1 revision from the authors' repository).

use super::{Net, Weights};
use crate::error::Result;
use crate::graph::{Graph, Preprocess, ValueId};

fn fire(n: &mut Net, name: &str, x: ValueId, squeeze: usize, expand: usize) -> Result<ValueId> {
    let s = n.conv(&format!("{name}/squeeze1x1"), x, squeeze, 1, 1, 0, true)?;
    let e1 = n.conv(&format!("{name}/expand1x1"), s, expand, 1, 1, 0, true)?;
    let e3 = n.conv(&format!("{name}/expand3x3"), s, expand, 3, 1, 1, true)?;
    n.concat(&format!("{name}/concat"), vec![e1, e3])
}

pub fn squeezenet1_1(weights: Weights) -> Result<Graph> {
    let mut n = Net::new(weights);
    let input = n.b.input("data", vec![1, 3, 224, 224])?;
    let mut x = n.conv("conv1", input, 64, 3, 2, 0, true)?;
    x = n.max_pool("pool1", x, 3, 2, 0, true)?;
    x = fire(&mut n, "fire2", x, 16, 64)?;
    x = fire(&mut n, "fire3", x, 16, 64)?;
    x = n.max_pool("pool3", x, 3, 2, 0, true)?;
    x = fire(&mut n, "fire4", x, 32, 128)?;
    x = fire(&mut n, "fire5", x, 32, 128)?;
    x = n.max_pool("pool5", x, 3, 2, 0, true)?;
    for (i, (s, e)) in [(48, 192), (48, 192), (64, 256), (64, 256)].into_iter().enumerate() {
        x = fire(&mut n, &format!("fire{}", i + 6), x, s, e)?;
    }
    x = n.dropout("drop9", x)?;
    x = n.conv("conv10", x, 1000, 1, 1, 0, true)?;
    x = n.global_avg_pool("pool10", x)?;
    x = n.flatten("flatten", x)?;
    Ok(n.finish("SqueezeNet 1.1 (built-in)", input, vec![x], Preprocess::imagenet_rgb()))
}
