//! .npy files in and out (through npyz), for `run`'s inputs and dumps.

use std::path::Path;

use anyhow::{Context, Result};
use npyz::WriterBuilder;
use convlens_core::Tensor;

pub fn read(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).with_context(|| format!("{} is not an .npy file", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let fortran = npy.order() == npyz::Order::Fortran;
    let data = npy.into_vec::<f32>().with_context(|| format!("{}: expected float32 data", path.display()))?;
    if !fortran {
        return Ok(Tensor::new(shape, data)?);
    }
    // numpy saves a transposed view column-major: its data is the C-order array of the
    // reversed shape, so reversing the axes back gives the array.
    let reversed = Tensor::new(shape.iter().rev().copied().collect(), data)?;
    let perm: Vec<usize> = (0..shape.len()).rev().collect();
    Ok(convlens_core::kernels::reference::transpose(&reversed, &perm)?)
}

pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let shape: Vec<u64> = t.shape.iter().map(|&d| d as u64).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?);
    let mut w = npyz::WriteOptions::<f32>::new().default_dtype().shape(&shape).writer(&mut file).begin_nd()?;
    w.extend(t.data.iter().copied())?;
    w.finish()?;
    Ok(())
}
