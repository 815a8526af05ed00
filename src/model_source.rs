//! Where model bytes come from: a `models/` folder served next to the app, else the zoo
//! mirrors; streamed with progress, checked against the catalogue's sha256, kept in Cache
//! Storage so a second visit needs no network.

use convlens_core::catalog::ModelFile;
use sha2::{Digest, Sha256};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use crate::imaging::js_err;

const CACHE_NAME: &str = "convlens-models-v1";

#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    pub bytes: Vec<u8>,
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

async fn from_cache(cache: &Cache, url: &str, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Option<Vec<u8>> {
    let hit = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    let resp: Response = hit.dyn_into().ok()?;
    read_body(url, resp, progress).await.ok()
}

/// GETs `url`, reporting (received, total) as chunks arrive; `progress` answering false
/// stops the download (a newer load replaced it).
pub async fn fetch_with_progress(url: &str, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Result<Vec<u8>, String> {
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

/// A response's body streamed into one buffer, sized from Content-Length when given: no list
/// of chunks, no second copy (VGG16 is 553 MB).
async fn read_body(url: &str, resp: Response, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Result<Vec<u8>, String> {
    let total = resp.headers().get("content-length").ok().flatten().and_then(|s| s.parse::<u64>().ok());
    let body = resp.body().ok_or("empty response")?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().dyn_into().map_err(|_| "no stream reader")?;
    let mut out = Vec::new();
    if let Some(t) = total {
        out.try_reserve_exact(t as usize).map_err(|_| format!("{url}: {t} bytes do not fit in this tab's memory"))?;
    }
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| match total {
            Some(t) => format!("the connection broke after {} of {t} bytes ({})", out.len(), js_err(e)),
            None => format!("the connection broke after {} bytes ({})", out.len(), js_err(e)),
        })?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map_err(js_err)?.as_bool().unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Uint8Array::new(&js_sys::Reflect::get(&chunk, &"value".into()).map_err(js_err)?);
        let at = out.len();
        let n = value.length() as usize;
        out.try_reserve(n).map_err(|_| format!("{url}: out of memory after {at} bytes"))?;
        out.resize(at + n, 0);
        value.copy_to(&mut out[at..]);
        if !progress(out.len() as u64, total) {
            let _ = reader.cancel();
            return Err(format!("{url}: cancelled"));
        }
    }
    if let Some(t) = total.filter(|&t| t != out.len() as u64) {
        return Err(format!("the connection ended after {} of {t} bytes", out.len()));
    }
    Ok(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The .onnx files the server offers next to the app (models/index.json, written by
/// scripts/serve.sh); empty when there is no such folder.
pub async fn served_models() -> Vec<String> {
    match fetch_with_progress("models/index.json", &|_, _| true).await {
        // A malformed list is treated as none: the zoo mirrors are still tried.
        Ok(bytes) => serde_json::from_slice::<Vec<String>>(&bytes).unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// The zoo file from what this page already has: the served `models/` folder (any accepted
/// name), else the browser cache. Err: why not, one reason per place tried.
pub async fn fetch_zoo_nearby(zoo: &ModelFile, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Result<Fetched, Vec<String>> {
    let mut errors = Vec::new();
    let served = served_models().await;
    for name in std::iter::once(zoo.file.as_str()).chain(zoo.aliases.iter().map(|a| a.as_str())).filter(|n| served.iter().any(|s| s == n)) {
        let url = format!("models/{name}");
        match fetch_with_progress(&url, progress).await {
            Ok(bytes) if !bytes.is_empty() => {
                let verified = bytes.len() as u64 == zoo.bytes && sha256_hex(&bytes).eq_ignore_ascii_case(&zoo.sha256);
                return Ok(Fetched { bytes, from: url, verified, cached: false });
            }
            Ok(_) => errors.push(format!("{url}: empty")),
            Err(e) => errors.push(if e.starts_with(&url) { e } else { format!("{url}: {e}") }),
        }
    }
    if let Some(c) = cache().await {
        for url in &zoo.mirrors {
            if let Some(bytes) = from_cache(&c, url, progress).await {
                if sha256_hex(&bytes).eq_ignore_ascii_case(&zoo.sha256) {
                    return Ok(Fetched { bytes, from: url.clone(), verified: true, cached: true });
                }
            }
        }
    }
    Err(errors)
}

/// The zoo file from the served folder or the cache, else each mirror in turn (a mirror's
/// download must match the sha256, and is cached). Err: one reason per mirror, URL first.
pub async fn fetch_zoo(zoo: &ModelFile, progress: &dyn Fn(u64, Option<u64>) -> bool) -> Result<Fetched, Vec<String>> {
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
        let read = read_body(&url, resp, progress).await;
        let stored = match stored {
            Some(put) => put.await.is_ok(),
            None => false,
        };
        match read {
            Ok(bytes) => {
                let digest = sha256_hex(&bytes);
                if !digest.eq_ignore_ascii_case(&zoo.sha256) {
                    if let (Some(c), true) = (&cache, stored) {
                        let _ = JsFuture::from(c.delete_with_str(&url)).await;
                    }
                    errors.push(format!("{url}: its sha256 {digest} is not the catalogue's {}; refused, nothing cached", zoo.sha256));
                    continue;
                }
                return Ok(Fetched { bytes, from: url, verified: true, cached: false });
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
        match fetch_with_progress(url, &noop).await {
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
