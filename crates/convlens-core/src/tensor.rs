//! A dense f32 tensor in row-major (NCHW) order: all the core ever computes with.

use crate::error::{Error, Result};

/// Generic over the element so the reference kernels and their gradients also run in f64,
/// where central differences are exact enough to check a backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorOf<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

pub type Tensor = TensorOf<f32>;

impl<T: Copy> TensorOf<T> {
    /// (N, C, H, W) of a rank-4 tensor.
    pub fn dims4(&self) -> Result<(usize, usize, usize, usize)> {
        match self.shape[..] {
            [n, c, h, w] => Ok((n, c, h, w)),
            _ => Err(Error::Shape(format!("expected a 4-D NCHW tensor, got {:?}", self.shape))),
        }
    }

    pub fn filled(shape: &[usize], v: T) -> Result<Self> {
        Ok(TensorOf { shape: shape.to_vec(), data: vec![v; numel(shape)?] })
    }

    pub fn map<U>(&self, f: impl Fn(T) -> U) -> TensorOf<U> {
        TensorOf { shape: self.shape.clone(), data: self.data.iter().map(|&v| f(v)).collect() }
    }
}

/// Upper bound on elements in one tensor (4 GiB of f32), so a hostile shape cannot ask for more.
pub const MAX_ELEMENTS: usize = 1 << 30;

pub fn numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| Error::TooLarge(format!("tensor of shape {shape:?} exceeds {MAX_ELEMENTS} elements")))
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n = numel(&shape)?;
        if n != data.len() {
            return Err(Error::Shape(format!("shape {shape:?} needs {n} values, got {}", data.len())));
        }
        Ok(Tensor { shape, data })
    }

    pub fn zeros(shape: &[usize]) -> Result<Self> {
        Ok(Tensor { shape: shape.to_vec(), data: vec![0.0; numel(shape)?] })
    }

    /// A tensor that `fill` writes whole, given its buffer's start and length, without zeroing
    /// it first: a conv's output is written whole by its kernel, and zeroing it was a serial
    /// memset (7% of a 2-thread SqueezeNet pass, on the thread the others wait for).
    ///
    /// # Safety
    /// `fill` must write every element (through the pointer; it must not read one it has not
    /// written, nor make a reference to one).
    pub unsafe fn filled_by(shape: &[usize], fill: impl FnOnce(*mut f32, usize) -> Result<()>) -> Result<Self> {
        let n = numel(shape)?;
        let mut buf: Vec<std::mem::MaybeUninit<f32>> = Vec::with_capacity(n);
        // SAFETY: MaybeUninit needs no initialisation.
        buf.set_len(n);
        fill(buf.as_mut_ptr() as *mut f32, n)?;
        let mut buf = std::mem::ManuallyDrop::new(buf);
        // SAFETY: every element written (the caller's promise); same allocation, layout of f32.
        let data = Vec::from_raw_parts(buf.as_mut_ptr() as *mut f32, n, buf.capacity());
        Ok(Tensor { shape: shape.to_vec(), data })
    }

    /// A tensor from a buffer whose every element was written through a pointer (a concat's,
    /// filled part by part by its inputs' nodes).
    ///
    /// # Safety
    /// Every element of `buf` was written.
    pub unsafe fn from_written(shape: &[usize], buf: Vec<std::mem::MaybeUninit<f32>>) -> Result<Self> {
        if numel(shape)? != buf.len() {
            return Err(Error::Shape(format!("{} floats for shape {shape:?}", buf.len())));
        }
        let mut buf = std::mem::ManuallyDrop::new(buf);
        // SAFETY: initialised (the caller's promise); same allocation, layout of f32.
        let data = Vec::from_raw_parts(buf.as_mut_ptr() as *mut f32, buf.len(), buf.capacity());
        Ok(Tensor { shape: shape.to_vec(), data })
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// (N, C, H, W) of a rank-4 tensor.
    pub fn nchw(&self) -> Result<(usize, usize, usize, usize)> {
        match self.shape[..] {
            [n, c, h, w] => Ok((n, c, h, w)),
            _ => Err(Error::Shape(format!("expected a 4-D NCHW tensor, got {:?}", self.shape))),
        }
    }
}

/// Largest |a-b| over the largest |b| (at least 1): how far `a` is from the reference `b`,
/// relative to the tensor's scale. NaN anywhere gives infinity so it can never pass.
pub fn rel_error(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let mut worst = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        if d.is_nan() {
            return f32::INFINITY;
        }
        worst = worst.max(d);
    }
    worst / scale
}

/// An r x c row-major matrix as c x r.
pub fn transpose<T: Copy + Default>(m: &[T], r: usize, c: usize) -> Vec<T> {
    let mut t = vec![T::default(); r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = m[i * c + j];
        }
    }
    t
}

/// Indices of the k largest values, largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.into_iter().take(k).map(|i| (i, values[i])).collect()
}

pub fn softmax_in_place<T: crate::kernels::Real>(v: &mut [T]) {
    let max = v.iter().fold(T::neg_infinity(), |m, &x| m.max(x));
    let mut sum = T::zero();
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x = *x / sum;
    }
}
