//! What the browser's WebGPU adapter is, asked of the browser itself (on the web wgpu's
//! adapter info is empty), and which backend Auto picks from it: never a software or fallback
//! adapter (SwiftShader runs a pass 10-100x slower than the wasm path); where the adapter does
//! not say, the worker times a pass on each.

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The adapter as the browser describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdapterInfo {
    /// `GPUAdapterInfo.isFallbackAdapter` (or the older `GPUAdapter.isFallbackAdapter`).
    pub fallback: Option<bool>,
    /// vendor, architecture, device, description: whichever the browser fills in.
    pub words: Vec<String>,
}

/// What Auto does with an adapter.
#[derive(Clone, Debug, PartialEq)]
pub enum AutoPick {
    /// A hardware adapter: run there.
    Gpu,
    /// A software or fallback adapter: stay on the CPU.
    Cpu,
    /// The adapter does not say what it is: time a pass on each.
    TimeBoth,
}

impl AdapterInfo {
    pub fn describe(&self) -> String {
        if self.words.is_empty() {
            "an adapter that does not say what it is".into()
        } else {
            self.words.join(" ")
        }
    }

    pub fn is_software(&self) -> bool {
        let text = self.words.join(" ").to_lowercase();
        self.fallback == Some(true) || convlens_gpu::SOFTWARE_ADAPTERS.iter().any(|s| text.contains(s))
    }

    pub fn auto_pick(&self) -> AutoPick {
        if self.is_software() {
            AutoPick::Cpu
        } else if self.fallback == Some(false) && !self.words.is_empty() {
            AutoPick::Gpu
        } else {
            AutoPick::TimeBoth
        }
    }
}

fn string_field(obj: &JsValue, key: &str) -> Option<String> {
    Reflect::get(obj, &key.into()).ok()?.as_string().filter(|s| !s.is_empty())
}

fn bool_field(obj: &JsValue, key: &str) -> Option<bool> {
    Reflect::get(obj, &key.into()).ok()?.as_bool()
}

/// Asks `navigator.gpu` for its default adapter; None where there is none.
pub async fn probe() -> Option<AdapterInfo> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).ok().filter(|g| !g.is_undefined() && !g.is_null())?;
    let request: Function = Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let promise: Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = JsFuture::from(promise).await.ok().filter(|a| !a.is_null() && !a.is_undefined())?;
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let fallback = bool_field(&info, "isFallbackAdapter").or_else(|| bool_field(&adapter, "isFallbackAdapter"));
    let words = ["vendor", "architecture", "device", "description"].iter().filter_map(|k| string_field(&info, k)).collect();
    Some(AdapterInfo { fallback, words })
}
