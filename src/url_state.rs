//! The view in the URL (`?model=googlenet&layer=inception_4a/output&channel=12&scale=shared`),
//! so a view can be shared and reloaded: every view parameter is written on each change and
//! read once at start.

use web_sys::UrlSearchParams;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UrlState {
    /// A zoo key, or with `local` the name of a file the sharer opened from their disk.
    pub model: Option<String>,
    /// `src=local`: the model was a file only the sharer's computer has; a link cannot carry it.
    pub local: bool,
    pub layer: Option<String>,
    pub channel: Option<usize>,
    /// A weights file URL (e.g. one served next to the app) to load instead of the zoo's.
    pub weights: Option<String>,
    /// `?backend=cpu|webgpu|webgpu-f16` (absent: auto).
    pub backend: Option<String>,
    /// `scale=shared`: one colour scale for all channels.
    pub shared_scale: bool,
    /// `sort=mean`: tiles sorted by mean activation.
    pub sort_by_mean: bool,
    /// `relu=split`: convs shown before their ReLU.
    pub split_relus: bool,
    /// `fit=squash`: the photo squashed to the input instead of centre-cropped.
    pub squash: bool,
    /// `catalog=URL`: a catalogue of models or mirrors to use besides the built-in one.
    pub catalog: Option<String>,
    /// `threads=N`: threads for the CPU kernels (absent: every core; more than one needs a
    /// cross-origin isolated page). Read when the worker starts.
    pub threads: Option<usize>,
    /// `simd=plain`: the CPU kernels without relaxed SIMD even where the browser has it (to
    /// compare the two builds on one page). Read when the worker starts.
    pub simd: Option<String>,
    /// `prep=imagenet|caffe|inception|unit|raw`: the preprocessing picked for the model (when
    /// its file does not say, or says wrong).
    pub prep: Option<String>,
}

fn params() -> Option<UrlSearchParams> {
    let search = web_sys::window()?.location().search().ok()?;
    UrlSearchParams::new_with_str(&search).ok()
}

pub fn read() -> UrlState {
    let Some(p) = params() else { return UrlState::default() };
    let is = |k: &str, v: &str| p.get(k).as_deref() == Some(v);
    UrlState {
        model: p.get("model"),
        local: is("src", "local"),
        layer: p.get("layer"),
        channel: p.get("channel").and_then(|c| c.parse().ok()),
        weights: p.get("weights"),
        backend: p.get("backend"),
        shared_scale: is("scale", "shared"),
        sort_by_mean: is("sort", "mean"),
        split_relus: is("relu", "split"),
        squash: is("fit", "squash"),
        catalog: p.get("catalog"),
        threads: p.get("threads").and_then(|t| t.parse().ok()),
        simd: p.get("simd"),
        prep: p.get("prep"),
    }
}

/// Rewrites the query string in place (no reload, no history entry).
pub fn write(s: &UrlState) {
    let Some(window) = web_sys::window() else { return };
    let Ok(p) = UrlSearchParams::new() else { return };
    let put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            p.append(k, v);
        }
    };
    put("catalog", s.catalog.as_deref());
    put("model", s.model.as_deref());
    put("src", s.local.then_some("local"));
    put("weights", s.weights.as_deref());
    put("prep", s.prep.as_deref());
    put("layer", s.layer.as_deref());
    put("channel", s.channel.map(|c| c.to_string()).as_deref());
    put("backend", s.backend.as_deref().filter(|b| *b != "auto"));
    put("scale", s.shared_scale.then_some("shared"));
    put("sort", s.sort_by_mean.then_some("mean"));
    put("relu", s.split_relus.then_some("split"));
    put("fit", s.squash.then_some("squash"));
    put("threads", s.threads.map(|t| t.to_string()).as_deref());
    put("simd", s.simd.as_deref());
    let q: String = p.to_string().into();
    let url = if q.is_empty() { window.location().pathname().unwrap_or_default() } else { format!("?{q}") };
    if let Ok(h) = window.history() {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}
