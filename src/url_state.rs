//! The view in the URL (`?model=googlenet&layer=inception_4a/output&channel=12`), so it can be
//! shared and reloaded.

use web_sys::UrlSearchParams;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UrlState {
    pub model: Option<String>,
    pub layer: Option<String>,
    pub channel: Option<usize>,
    /// A weights file URL (e.g. one served next to the app) to load instead of the zoo's.
    pub weights: Option<String>,
}

fn params() -> Option<UrlSearchParams> {
    let search = web_sys::window()?.location().search().ok()?;
    UrlSearchParams::new_with_str(&search).ok()
}

pub fn read() -> UrlState {
    let Some(p) = params() else { return UrlState::default() };
    UrlState {
        model: p.get("model"),
        layer: p.get("layer"),
        channel: p.get("channel").and_then(|c| c.parse().ok()),
        weights: p.get("weights"),
    }
}

/// Rewrites the query string in place (no reload, no history entry).
pub fn write(s: &UrlState) {
    write_with_backend(s, read_backend());
}

/// Sets `?backend=` (kept across other URL updates).
pub fn write_backend(b: &str) {
    write_with_backend(&read(), Some(b.to_string()));
}

fn write_with_backend(s: &UrlState, backend: Option<String>) {
    let Some(window) = web_sys::window() else { return };
    let Ok(p) = UrlSearchParams::new() else { return };
    if let Some(m) = &s.model {
        p.append("model", m);
    }
    if let Some(w) = &s.weights {
        p.append("weights", w);
    }
    if let Some(l) = &s.layer {
        p.append("layer", l);
    }
    if let Some(c) = s.channel {
        p.append("channel", &c.to_string());
    }
    if let Some(b) = backend.filter(|b| b != "auto") {
        p.append("backend", &b);
    }
    let q: String = p.to_string().into();
    let url = if q.is_empty() { window.location().pathname().unwrap_or_default() } else { format!("?{q}") };
    if let Ok(h) = window.history() {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

/// `?backend=cpu|webgpu`: force a backend (default: WebGPU where the browser has it).
pub fn read_backend() -> Option<String> {
    params()?.get("backend")
}
