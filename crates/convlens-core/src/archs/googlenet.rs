//! GoogLeNet as in Szegedy et al. (2014), Table 1, with both auxiliary classifiers (Sec. 5).

use super::{Net, Weights};
use crate::error::Result;
use crate::graph::{Graph, Preprocess, ValueId};

/// #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj (Table 1).
type Inception = (usize, usize, usize, usize, usize, usize);

fn inception(n: &mut Net, name: &str, x: ValueId, c: Inception) -> Result<ValueId> {
    let b1 = n.conv(&format!("{name}/1x1"), x, c.0, 1, 1, 0, true)?;
    let r3 = n.conv(&format!("{name}/3x3_reduce"), x, c.1, 1, 1, 0, true)?;
    let b3 = n.conv(&format!("{name}/3x3"), r3, c.2, 3, 1, 1, true)?;
    let r5 = n.conv(&format!("{name}/5x5_reduce"), x, c.3, 1, 1, 0, true)?;
    let b5 = n.conv(&format!("{name}/5x5"), r5, c.4, 5, 1, 2, true)?;
    let p = n.max_pool(&format!("{name}/pool"), x, 3, 1, 1, false)?;
    let bp = n.conv(&format!("{name}/pool_proj"), p, c.5, 1, 1, 0, true)?;
    n.concat(&format!("{name}/output"), vec![b1, b3, b5, bp])
}

/// Auxiliary head: 5x5/3 average pool, 1x1 conv 128, FC 1024, dropout 70%, FC 1000, softmax.
fn aux(n: &mut Net, name: &str, x: ValueId) -> Result<ValueId> {
    let p = n.avg_pool(&format!("{name}/ave_pool"), x, 5, 3, false)?;
    let c = n.conv(&format!("{name}/conv"), p, 128, 1, 1, 0, true)?;
    let f = n.flatten(&format!("{name}/flatten"), c)?;
    let f = n.fc(&format!("{name}/fc"), f, 1024, true)?;
    let f = n.dropout(&format!("{name}/drop_fc"), f)?;
    let f = n.fc(&format!("{name}/classifier"), f, 1000, false)?;
    n.softmax(&format!("{name}/prob"), f)
}

pub fn googlenet(weights: Weights, with_aux: bool) -> Result<Graph> {
    let mut n = Net::new(weights);
    let input = n.b.input("data", vec![1, 3, 224, 224])?;
    let mut x = n.conv("conv1/7x7_s2", input, 64, 7, 2, 3, true)?;
    x = n.max_pool("pool1/3x3_s2", x, 3, 2, 0, true)?;
    x = n.lrn("pool1/norm1", x)?;
    x = n.conv("conv2/3x3_reduce", x, 64, 1, 1, 0, true)?;
    x = n.conv("conv2/3x3", x, 192, 3, 1, 1, true)?;
    x = n.lrn("conv2/norm2", x)?;
    x = n.max_pool("pool2/3x3_s2", x, 3, 2, 0, true)?;
    x = inception(&mut n, "inception_3a", x, (64, 96, 128, 16, 32, 32))?;
    x = inception(&mut n, "inception_3b", x, (128, 128, 192, 32, 96, 64))?;
    x = n.max_pool("pool3/3x3_s2", x, 3, 2, 0, true)?;
    x = inception(&mut n, "inception_4a", x, (192, 96, 208, 16, 48, 64))?;
    let aux1_from = x;
    x = inception(&mut n, "inception_4b", x, (160, 112, 224, 24, 64, 64))?;
    x = inception(&mut n, "inception_4c", x, (128, 128, 256, 24, 64, 64))?;
    x = inception(&mut n, "inception_4d", x, (112, 144, 288, 32, 64, 64))?;
    let aux2_from = x;
    x = inception(&mut n, "inception_4e", x, (256, 160, 320, 32, 128, 128))?;
    x = n.max_pool("pool4/3x3_s2", x, 3, 2, 0, true)?;
    x = inception(&mut n, "inception_5a", x, (256, 160, 320, 32, 128, 128))?;
    x = inception(&mut n, "inception_5b", x, (384, 192, 384, 48, 128, 128))?;
    x = n.avg_pool("pool5/7x7_s1", x, 7, 1, false)?;
    x = n.dropout("pool5/drop_7x7_s1", x)?;
    x = n.flatten("pool5/flatten", x)?;
    x = n.fc("loss3/classifier", x, 1000, false)?;
    x = n.softmax("prob", x)?;
    let mut outputs = vec![x];
    if with_aux {
        outputs.push(aux(&mut n, "loss1", aux1_from)?);
        outputs.push(aux(&mut n, "loss2", aux2_from)?);
    }
    let name = if with_aux { "GoogLeNet (built-in, with auxiliary heads)" } else { "GoogLeNet (built-in)" };
    Ok(n.finish(name, input, outputs, Preprocess::caffe_bgr()))
}
