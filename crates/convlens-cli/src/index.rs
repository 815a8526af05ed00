//! `convlens index` and `index-merge`: a folder's photos ranked per channel of every layer
//! (`convlens_core::top_examples`), in shards that merge into the index of the whole folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use convlens_core::exec::Keep;
use convlens_core::preprocess::Fit;
use convlens_core::top_examples::ExampleIndex;
use convlens_engine::Engine;
use convlens_gpu::Timing;
use serde_json::json;

use crate::explain::{bad, BadInput};
use crate::{images, models, BackendArg, ModelArgs};

/// JPEG quality of the thumbnails (224 px crops: ~15 KB each).
const THUMB_QUALITY: u8 = 85;

pub struct Request<'a> {
    pub dir: &'a Path,
    pub out: &'a Path,
    pub k: usize,
    /// (i, n): only the photos at positions i, i + n, ... of the sorted listing.
    pub shard: Option<(usize, usize)>,
    pub json: bool,
}

/// `--shard I/N` as (I, N), I < N.
pub fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("a shard is I/N, e.g. 0/8")?;
    let (i, n): (usize, usize) = (i.parse().map_err(|_| "I is not a number")?, n.parse().map_err(|_| "N is not a number")?);
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: I must be below N"));
    }
    Ok((i, n))
}

/// Image files under `dir` (recursively), as paths relative to it, sorted: the names an index
/// keeps and ranks ties by, so every shard agrees on them.
fn photos(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| ["jpg", "jpeg", "png", "webp", "gif", "bmp"].contains(&e.to_ascii_lowercase().as_str())) {
                found.push(path.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    found.sort();
    Ok(found)
}

pub fn index(args: &ModelArgs, backend: BackendArg, r: &Request) -> Result<()> {
    let graph = Arc::new(models::load(args)?);
    let side = graph.image_side()?;
    if !r.dir.is_dir() {
        return Err(BadInput(format!("{} is not a folder", r.dir.display())).into());
    }
    let mut names = photos(r.dir)?;
    if let Some((i, n)) = r.shard {
        names = names.into_iter().skip(i).step_by(n).collect();
    }
    let engine = Engine::new_blocking(graph.clone(), backend.engine_kind(), true)?;
    let mut idx = ExampleIndex::new(&graph, r.k).map_err(bad)?;
    let layers = ExampleIndex::layer_values(&graph);
    let t0 = Instant::now();
    let mut skipped = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let path = r.dir.join(name);
        // A photo that cannot be read is reported and skipped; the rest of the folder goes on.
        let img = match images::load_rgb(&path) {
            Ok(img) => img,
            Err(e) => {
                eprintln!("skipped: {e:#}");
                skipped.push(name.display().to_string());
                continue;
            }
        };
        let (x, crop) = images::to_input(&img, side, Fit::ResizeAndCenterCrop, &graph.preprocess)?;
        let mut thumb = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumb, THUMB_QUALITY).encode_image(&crop).context("encoding a thumbnail")?;
        engine.forward_blocking(&x, &Keep::All, Timing::Off)?;
        let values = engine.read_blocking(&layers)?;
        idx.add(&name.to_string_lossy().replace('\\', "/"), thumb, &|i| values.get(&layers[i])).map_err(bad)?;
        if !r.json && (n + 1) % 50 == 0 {
            eprintln!("{} of {} photos", n + 1, names.len());
        }
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let bytes = idx.to_bytes();
    std::fs::write(r.out, &bytes).with_context(|| format!("cannot write {}", r.out.display()))?;
    let photos = names.len() - skipped.len();
    let channels: usize = idx.layers.iter().map(|l| l.channels).sum();
    if r.json {
        println!(
            "{}",
            json!({"model": graph.name, "photos": photos, "skipped": skipped, "layers": idx.layers.len(), "channels": channels, "k": r.k,
                   "kept_photos": ExampleIndex::from_bytes(&bytes).map(|i| i.photos.len()).unwrap_or(0), "bytes": bytes.len(), "ms": ms})
        );
    } else {
        println!(
            "{photos} photos of {} through {} ({} layers, {channels} channels, top {}) in {:.1} s ({:.0} ms a photo): {} ({} bytes)",
            r.dir.display(),
            graph.name,
            idx.layers.len(),
            r.k,
            ms / 1e3,
            ms / photos.max(1) as f64,
            r.out.display(),
            bytes.len()
        );
    }
    Ok(())
}

pub fn merge(inputs: &[PathBuf], out: &Path, json_out: bool) -> Result<()> {
    let mut parts = Vec::new();
    for p in inputs {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        parts.push(ExampleIndex::from_bytes(&bytes).map_err(|e| BadInput(format!("{}: {e}", p.display())))?);
    }
    let merged = ExampleIndex::merge(parts).map_err(bad)?;
    let bytes = merged.to_bytes();
    std::fs::write(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    if json_out {
        println!("{}", json!({"model": merged.model, "inputs": inputs.len(), "kept_photos": merged.photos.len(), "bytes": bytes.len()}));
    } else {
        println!("{} indexes of {} merged: {} photos kept, {} ({} bytes)", inputs.len(), merged.model, merged.photos.len(), out.display(), bytes.len());
    }
    Ok(())
}
