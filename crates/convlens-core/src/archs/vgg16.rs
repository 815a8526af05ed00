//! VGG16, configuration D of Simonyan & Zisserman (2014): 13 3x3 convs in 5 blocks, 3 FC.

use super::{Net, Weights};
use crate::error::Result;
use crate::graph::{Graph, Preprocess};

/// Channels per conv, block by block.
const BLOCKS: [&[usize]; 5] = [&[64, 64], &[128, 128], &[256, 256, 256], &[512, 512, 512], &[512, 512, 512]];

pub fn vgg16(weights: Weights) -> Result<Graph> {
    let mut n = Net::new(weights);
    let input = n.b.input("data", vec![1, 3, 224, 224])?;
    let mut x = input;
    for (bi, block) in BLOCKS.iter().enumerate() {
        for (ci, &ch) in block.iter().enumerate() {
            x = n.conv(&format!("conv{}_{}", bi + 1, ci + 1), x, ch, 3, 1, 1, true)?;
        }
        x = n.max_pool(&format!("pool{}", bi + 1), x, 2, 2, 0, false)?;
    }
    x = n.flatten("flatten", x)?;
    x = n.fc("fc6", x, 4096, true)?;
    x = n.dropout("drop6", x)?;
    x = n.fc("fc7", x, 4096, true)?;
    x = n.dropout("drop7", x)?;
    x = n.fc("fc8", x, 1000, false)?;
    Ok(n.finish("VGG16 (built-in)", input, vec![x], Preprocess::imagenet_rgb()))
}
