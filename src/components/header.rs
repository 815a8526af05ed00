//! The top bar: model, file, sample photos, camera controls, the backend badge and switch, the
//! theme. It holds no state; every control reports through a callback.

use yew::prelude::*;

use crate::protocol::BackendChoice;

#[derive(Clone, PartialEq)]
pub enum HeaderAction {
    PickModel(String),
    OpenFile(web_sys::File),
    Sample(String),
    CameraStart,
    CameraStop,
    PickCamera(String),
    ToggleLive,
    SetBackend(String),
    SetThreads(usize),
    ToggleTheme,
}

#[derive(Properties, PartialEq)]
pub struct Props {
    /// (key, label) of the zoo models.
    pub models: std::rc::Rc<Vec<(String, String)>>,
    pub samples: &'static [(&'static str, &'static str)],
    pub model: String,
    pub camera_on: bool,
    pub live: bool,
    pub fps: f64,
    /// Where a live frame's time goes (`live::Stages::label`).
    pub stages: String,
    /// How live frames reach the worker: (`data-frames`, tooltip).
    pub frames: (&'static str, String),
    pub cameras: Vec<(String, String)>,
    /// The backend running the model, and why (WebGPU or not).
    pub backend: Option<String>,
    pub backend_note: String,
    /// How many threads run the CPU kernels, and why one (`worker_link::ThreadPlan::label`).
    pub threads: String,
    /// The kernels' SIMD: `relaxed SIMD` (fused multiply-adds) or `SIMD128`.
    pub simd: AttrValue,
    /// The thread counts offered (up to the browser's cores) and the one chosen.
    pub thread_choices: Vec<usize>,
    pub threads_wanted: usize,
    pub backend_choice: BackendChoice,
    pub dark: bool,
    pub on_action: Callback<HeaderAction>,
}

fn select_value(e: Event) -> String {
    e.target_unchecked_into::<web_sys::HtmlSelectElement>().value()
}

#[function_component(Header)]
pub fn header(p: &Props) -> Html {
    let act = |a: HeaderAction| {
        let cb = p.on_action.clone();
        Callback::from(move |_: MouseEvent| cb.emit(a.clone()))
    };
    let on = p.on_action.clone();
    let onmodel = on.reform(|e: Event| HeaderAction::PickModel(select_value(e)));
    let oncamera = on.reform(|e: Event| HeaderAction::PickCamera(select_value(e)));
    let onbackend = on.reform(|e: Event| HeaderAction::SetBackend(select_value(e)));
    let onthreads = on.reform(|e: Event| HeaderAction::SetThreads(select_value(e).parse().unwrap_or(1)));
    let onfile = {
        let on = on.clone();
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            let f = input.files().and_then(|f| f.get(0));
            input.set_value("");
            if let Some(f) = f {
                on.emit(HeaderAction::OpenFile(f));
            }
        })
    };
    let known = p.models.iter().any(|(k, _)| *k == p.model);
    html! {
        <header class="top">
            <h1>{ "ConvLens" }<span class="muted small">{ " — inside VGG16 and GoogLeNet" }</span></h1>
            <label class="control">{ "Model " }
                <select aria-label="model" onchange={onmodel}>
                    { for p.models.iter().map(|(k, label)| html! { <option value={k.clone()} selected={p.model == *k}>{ label.clone() }</option> }) }
                    if !known && !p.model.is_empty() {
                        <option value={p.model.clone()} selected=true>{ p.model.clone() }</option>
                    }
                </select>
            </label>
            <label class="control file">{ "Open image or .onnx " }
                <input type="file" data-testid="file-input" aria-label="open an image or an .onnx model" accept="image/*,.onnx" onchange={onfile} />
            </label>
            <span class="samples">
                { for p.samples.iter().map(|(label, url)| html! { <button onclick={act(HeaderAction::Sample(url.to_string()))}>{ *label }</button> }) }
            </span>
            <span class="camera">
                if !p.camera_on {
                    <button data-testid="camera-start" onclick={act(HeaderAction::CameraStart)}>{ "Start camera" }</button>
                } else {
                    <button data-testid="live-toggle" aria-pressed={p.live.to_string()} onclick={act(HeaderAction::ToggleLive)}>{ if p.live { "Freeze" } else { "Live" } }</button>
                    <button onclick={act(HeaderAction::CameraStop)}>{ "Stop camera" }</button>
                    if p.cameras.len() > 1 {
                        <select aria-label="camera" onchange={oncamera}>
                            { for p.cameras.iter().map(|(id, label)| html! { <option value={id.clone()}>{ label.clone() }</option> }) }
                        </select>
                    }
                    if p.live {
                        <span class="fps" data-testid="fps">{ format!("{:.1} fps", p.fps) }</span>
                        <span class="stages muted small" data-testid="live-stages" data-frames={p.frames.0} title={p.frames.1.clone()}>{ p.stages.clone() }</span>
                    }
                }
            </span>
            <span class="badge" data-testid="backend-badge" title={p.backend_note.clone()}>
                { p.backend.clone().unwrap_or_else(|| "loading…".into()) }
                <span class="why">{ format!(" · {}", p.backend_note) }</span>
                <span class="why">{ " · CPU " }<span data-testid="threads">{ p.threads.clone() }</span>{ " · " }<span data-testid="simd" title="the CPU kernels' wasm SIMD: relaxed SIMD fuses each multiply-add where the CPU can (?simd=plain turns it off)">{ p.simd.clone() }</span></span>
            </span>
            <label class="control">{ "Backend " }
                <select aria-label="backend" data-testid="backend-select" onchange={onbackend}>
                    <option value="auto" selected={p.backend_choice == BackendChoice::Auto}>{ "Auto (the faster here)" }</option>
                    <option value="webgpu" selected={p.backend_choice == BackendChoice::WebGpu}>{ "WebGPU (any adapter)" }</option>
                    <option value="webgpu-f16" selected={p.backend_choice == BackendChoice::WebGpuF16}>{ "WebGPU, f16 weights (half the memory)" }</option>
                    <option value="cpu" selected={p.backend_choice == BackendChoice::Cpu}>{ "CPU (wasm SIMD)" }</option>
                    <option value="cpu-f16" selected={p.backend_choice == BackendChoice::CpuF16}>{ "CPU, f16 FC weights (less memory)" }</option>
                </select>
            </label>
            if p.thread_choices.len() > 1 {
                <label class="control">{ "Threads " }
                    <select aria-label="CPU threads" data-testid="threads-select" onchange={onthreads}>
                        { for p.thread_choices.iter().map(|&n| html! { <option value={n.to_string()} selected={n == p.threads_wanted}>{ n }</option> }) }
                    </select>
                </label>
            }
            <button class="theme" aria-label="switch theme" onclick={act(HeaderAction::ToggleTheme)}>{ if p.dark { "☀" } else { "☾" } }</button>
        </header>
    }
}
