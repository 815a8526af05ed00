//! Model names to graphs: a path to an .onnx file, or a built-in name resolved to a zoo file
//! in the models folder, downloaded from the mirror list and verified by sha256 when missing.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use convlens_core::archs::{self, Weights};
use convlens_core::catalog::{zoo_file, ZooFile};
use convlens_core::onnx::WeightPrecision;
use convlens_core::Graph;
use sha2::{Digest, Sha256};

use crate::ModelArgs;

/// Bigger than any supported CNN in fp32 (VGG19 is 575 MB); refuses to read absurd files.
const MAX_MODEL_BYTES: u64 = 2 << 30;

pub fn is_path(spec: &str) -> bool {
    spec.ends_with(".onnx") || spec.contains('/') || Path::new(spec).is_file()
}

pub fn import_file(path: &Path, precision: WeightPrecision) -> Result<Graph> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_MODEL_BYTES {
        bail!("{} is {} bytes, larger than any supported model", path.display(), meta.len());
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    convlens_core::onnx::import_reader(file, Some(meta.len()), &stem, precision).with_context(|| format!("{}", path.display()))
}

/// A graph for analytics: built-in names need no weights at all.
pub fn for_analytics(spec: &str) -> Result<Graph> {
    if is_path(spec) {
        import_file(Path::new(spec), WeightPrecision::F32)
    } else {
        Ok(archs::builtin(spec, Weights::None)?)
    }
}

/// A runnable graph.
pub fn load(args: &ModelArgs) -> Result<Graph> {
    if is_path(&args.model) {
        if args.untrained {
            bail!("--untrained applies to built-in names (googlenet, vgg16, squeezenet), not to files");
        }
        return import_file(Path::new(&args.model), args.precision());
    }
    if args.untrained {
        return Ok(archs::builtin(&args.model, Weights::Seeded(1))?);
    }
    let zoo = zoo_file(&args.model).ok_or_else(|| {
        anyhow!("unknown model '{}': use googlenet, vgg16, squeezenet or a path to an .onnx file", args.model)
    })?;
    let dir = models_dir(args.models_dir.as_deref())?;
    for name in std::iter::once(zoo.file).chain(zoo.aliases.iter().copied()) {
        let p = dir.join(name);
        if p.is_file() {
            return import_file(&p, args.precision());
        }
    }
    let offline = args.offline || std::env::var_os("CONVLENS_OFFLINE").is_some();
    if offline {
        bail!(missing_message(zoo, &dir, "offline"));
    }
    let path = download(zoo, &dir)?;
    import_file(&path, args.precision())
}

fn models_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    match explicit {
        Some(d) => Ok(d.to_path_buf()),
        None => dirs::cache_dir().map(|c| c.join("convlens").join("models")).ok_or_else(|| anyhow!("no cache directory; pass --models-dir")),
    }
}

fn missing_message(zoo: &ZooFile, dir: &Path, why: &str) -> String {
    format!(
        "{} is not in {} and could not be downloaded ({why}); put the file there ({} bytes, sha256 {}) or pass --models-dir / set CONVLENS_MODELS",
        zoo.file,
        dir.display(),
        zoo.bytes,
        zoo.sha256
    )
}

fn download(zoo: &ZooFile, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dest = dir.join(zoo.file);
    let part = dir.join(format!("{}.part", zoo.file));
    let mut failures = Vec::new();
    for url in zoo.mirrors() {
        eprintln!("downloading {} ({:.1} MB) from {url}", zoo.file, zoo.bytes as f64 / 1e6);
        match fetch_verified(&url, &part, zoo) {
            Ok(()) => {
                std::fs::rename(&part, &dest)?;
                return Ok(dest);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                failures.push(format!("{url}: {e}"));
            }
        }
    }
    bail!(missing_message(zoo, dir, &failures.join("; ")))
}

fn fetch_verified(url: &str, part: &Path, zoo: &ZooFile) -> Result<()> {
    let mut resp = ureq::get(url).call()?;
    let mut reader = resp.body_mut().as_reader();
    let bar = indicatif::ProgressBar::new(zoo.bytes);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({percent}%) {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut file = File::create(part)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > zoo.bytes {
            bail!("more bytes than the expected {}", zoo.bytes);
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        bar.set_position(total);
    }
    bar.finish_and_clear();
    let digest: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if digest != zoo.sha256 {
        bail!("sha256 mismatch: got {digest}, expected {}", zoo.sha256);
    }
    Ok(())
}
