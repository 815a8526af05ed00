//! Where model bytes come from: a `models/` folder served next to the app, else the zoo
//! mirrors; streamed with progress, checked against the catalogue's sha256, kept in Cache
//! Storage so a second visit needs no network.

use convlens_core::catalog::ModelFile;
use convlens_core::onnx::{StreamImport, WeightPrecision};
use sha2::{Digest, Sha256};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use crate::imaging::js_err;

const CACHE_NAME: &str = "convlens-models-v1";

/// Where a download's bytes go as they arrive: a buffer, or the streaming importer (a model
/// file is never held whole).
pub trait Sink: Default {
    fn reserve(&mut self, _total: u64) -> Result<(), String> {
        Ok(())
    }
    fn push(&mut self, chunk: &[u8]) -> Result<(), String>;
}

impl Sink for Vec<u8> {
    fn reserve(&mut self, total: u64) -> Result<(), String> {
        self.try_reserve_exact(total as usize).map_err(|_| format!("{total} bytes do not fit in this tab's memory"))
    }
    fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.try_reserve(chunk.len()).map_err(|_| format!("out of memory after {} bytes", self.len()))?;
        self.extend_from_slice(chunk);
        Ok(())
    }
}

/// The streaming importer as a download's sink; `FC_F16`: FC weights rounded to half as they
/// arrive (a type parameter because sinks are made by `Default`).
pub struct Importer<const FC_F16: bool>(pub StreamImport);

impl<const FC_F16: bool> Importer<FC_F16> {
    fn precision() -> WeightPrecision {
        if FC_F16 {
            WeightPrecision::FcF16
        } else {
            WeightPrecision::F32
        }
    }
}

impl<const FC_F16: bool> Default for Importer<FC_F16> {
    fn default() -> Self {
        Importer(StreamImport::new().precision(Self::precision()))
    }
}

impl<const FC_F16: bool> Sink for Importer<FC_F16> {
    fn reserve(&mut self, total: u64) -> Result<(), String> {
        self.0 = StreamImport::with_total(total).precision(Self::precision());
        Ok(())
    }
    fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.0.push(chunk).map_err(|e| e.to_string())
    }
}

/// A sink that also counts and hashes what passes (the catalogue's size and sha256).
#[derive(Default)]
pub struct Checked<S> {
    pub sink: S,
    hasher: Sha256,
    pub len: u64,
}

impl<S: Sink> Sink for Checked<S> {
    fn reserve(&mut self, total: u64) -> Result<(), String> {
        self.sink.reserve(total)
    }
    fn push(&mut self, chunk: &[u8]) -> Result<(), String> {
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        self.sink.push(chunk)
    }
}

impl<S> Checked<S> {
    pub fn digest_hex(&self) -> String {
        self.hasher.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

pub struct Fetched<S> {
    pub body: S,
    pub from: String,
    pub verified: bool,
    pub cached: bool,
}

/// The global scope's `fetch` and `caches`: this module runs in the page (served list,
/// catalogues) and in the inference worker (model files, so their bytes never cross over).
fn global_fetch(url: &str) -> Result<js_sys::Promise, String> {
    let global = js_sys::global();
    if let Some(w) = global.dyn_ref::<web_sys::Window>() {
        return Ok(w.fetch_with_str(url));
    }
    global.dyn_ref::<web_sys::WorkerGlobalScope>().map(|w| w.fetch_with_str(url)).ok_or_else(|| "no fetch in this scope".into())
}

async fn cache() -> Option<Cache> {
    let global = js_sys::global();
    let caches = match global.dyn_ref::<web_sys::Window>() {
        Some(w) => w.caches().ok()?,
        None => global.dyn_ref::<web_sys::WorkerGlobalScope>()?.caches().ok()?,
    };
    JsFuture::from(caches.open(CACHE_NAME)).await.ok()?.dyn_into().ok()
}

async fn from_cache<S: Sink>(cache: &Cache, url: &str, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Option<S> {
    let hit = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let resp: Response = hit.dyn_into().ok()?;
    read_body(url, resp, progress).await.ok()
}

/// GETs `url`, reporting (received, total) as chunks arrive; `progress` answering false
/// stops the download (a newer load replaced it).
pub async fn fetch_with_progress<S: Sink>(url: &str, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Result<S, String> {
    let resp = get(url).await?;
    read_body(url, resp, progress).await
}

async fn get(url: &str) -> Result<Response, String> {
    let resp: Response = JsFuture::from(global_fetch(url)?).await.map_err(|e| format!("{url}: {}", js_err(e)))?.dyn_into().map_err(|_| "bad response")?;
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    Ok(resp)
}

/// A response's body streamed into `S` chunk by chunk (a buffer sized from Content-Length when
/// given, or the importer): no list of chunks, no second copy (VGG16 is 553 MB).
async fn read_body<S: Sink>(url: &str, resp: Response, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Result<S, String> {
    let total = resp.headers().get("content-length").ok().flatten().and_then(|s| s.parse::<u64>().ok());
    let body = resp.body().ok_or("empty response")?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().dyn_into().map_err(|_| "no stream reader")?;
    let mut out = S::default();
    if let Some(t) = total {
        out.reserve(t).map_err(|e| format!("{url}: {e}"))?;
    }
    let (mut got, mut chunk_buf) = (0u64, Vec::new());
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| match total {
            Some(t) => format!("the connection broke after {got} of {t} bytes ({})", js_err(e)),
            None => format!("the connection broke after {got} bytes ({})", js_err(e)),
        })?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map_err(js_err)?.as_bool().unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Uint8Array::new(&js_sys::Reflect::get(&chunk, &"value".into()).map_err(js_err)?);
        chunk_buf.resize(value.length() as usize, 0);
        value.copy_to(&mut chunk_buf);
        got += chunk_buf.len() as u64;
        out.push(&chunk_buf).map_err(|e| format!("{url}: {e}"))?;
        if !progress(got, total) {
            let _ = reader.cancel();
            return Err(format!("{url}: cancelled"));
        }
    }
    if let Some(t) = total.filter(|&t| t != got) {
        return Err(format!("the connection ended after {got} of {t} bytes"));
    }
    Ok(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The .onnx files the server offers next to the app (models/index.json, written by
/// scripts/serve.sh); empty when there is no such folder.
pub async fn served_models() -> Vec<String> {
    match fetch_with_progress::<Vec<u8>>("models/index.json", &|_, _| true).await {
        // A malformed list is treated as none: the zoo mirrors are still tried.
        Ok(bytes) => serde_json::from_slice::<Vec<String>>(&bytes).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The zoo file from what this page already has: the served `models/` folder (any accepted
/// name), else the browser cache. Err: why not, one reason per place tried.
pub async fn fetch_zoo_nearby<S: Sink>(zoo: &ModelFile, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Result<Fetched<S>, Vec<String>> {
    let mut errors = Vec::new();
    let served = served_models().await;
    for name in std::iter::once(zoo.file.as_str()).chain(zoo.aliases.iter().map(|a| a.as_str())).filter(|n| served.iter().any(|s| s == n)) {
        let url = format!("models/{name}");
        match fetch_with_progress::<Checked<S>>(&url, progress).await {
            Ok(body) if body.len > 0 => {
                let verified = body.len == zoo.bytes && body.digest_hex().eq_ignore_ascii_case(&zoo.sha256);
                return Ok(Fetched { body: body.sink, from: url, verified, cached: false });
            }
            Ok(_) => errors.push(format!("{url}: empty")),
            Err(e) => errors.push(if e.starts_with(&url) { e } else { format!("{url}: {e}") }),
        }
    }
    if let Some(c) = cache().await {
        for url in &zoo.mirrors {
            if let Some(body) = from_cache::<Checked<S>>(&c, url, progress).await {
                if body.digest_hex().eq_ignore_ascii_case(&zoo.sha256) {
                    return Ok(Fetched { body: body.sink, from: url.clone(), verified: true, cached: true });
                }
            }
        }
    }
    Err(errors)
}

/// The zoo file from the served folder or the cache, else each mirror in turn (a mirror's
/// download must match the sha256, and is cached). Err: one reason per mirror, URL first.
pub async fn fetch_zoo<S: Sink>(zoo: &ModelFile, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Result<Fetched<S>, Vec<String>> {
    let mut errors = match fetch_zoo_nearby(zoo, progress).await {
        Ok(f) => return Ok(f),
        Err(e) => e,
    };
    let cache = cache().await;
    for url in zoo.mirrors.iter().cloned() {
        let resp = match get(&url).await {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        // The cache takes its own branch of the stream as it arrives (no second copy in this
        // tab); a body that breaks is never stored, and one that fails the check is deleted.
        let stored = match (&cache, resp.clone()) {
            (Some(c), Ok(copy)) => Some(JsFuture::from(c.put_with_str(&url, &copy))),
            _ => None,
        };
        let read = read_body::<Checked<S>>(&url, resp, progress).await;
        let stored = match stored {
            Some(put) => put.await.is_ok(),
            None => false,
        };
        match read {
            Ok(body) => {
                let digest = body.digest_hex();
                if !digest.eq_ignore_ascii_case(&zoo.sha256) {
                    if let (Some(c), true) = (&cache, stored) {
                        let _ = JsFuture::from(c.delete_with_str(&url)).await;
                    }
                    errors.push(format!("{url}: its sha256 {digest} is not the catalogue's {}; refused, nothing cached", zoo.sha256));
                    continue;
                }
                return Ok(Fetched { body: body.sink, from: url, verified: true, cached: false });
            }
            Err(e) => errors.push(if e.starts_with(&url) { e } else { format!("{url}: {e}") }),
        }
    }
    Err(errors)
}

/// The catalogues this page is given: `models/catalog.json` next to the app (when the served
/// folder's index lists it) and `?catalog=URL`. Err entries: why a catalogue could not be used, one line each.
pub async fn catalogues(extra: Option<&str>) -> (Vec<ModelFile>, Vec<String>) {
    let noop = |_, _| true;
    let (mut models, mut errors) = (Vec::new(), Vec::new());
    // The served folder's list says whether there is a catalogue (no request, no 404, when not).
    let served = served_models().await.iter().any(|f| f == "catalog.json");
    for (url, required) in served.then_some(("models/catalog.json", true)).into_iter().chain(extra.map(|u| (u, true))) {
        match fetch_with_progress::<Vec<u8>>(url, &noop).await {
            Ok(bytes) => match convlens_core::catalog::parse_catalog(&bytes) {
                Ok(m) => models.extend(m),
                Err(e) => errors.push(format!("{url}: {e}")),
            },
            Err(e) if required => errors.push(if e.starts_with(url) { e } else { format!("{url}: {e}") }),
            Err(_) => {}
        }
    }
    (models, errors)
}
