//! Under the top bar: the error banner, VGG16's download question, what is loading or running
//! (with progress), and the model line (size, preprocessing, weights, last run).

use yew::prelude::*;

use super::{bytes, count, macs};
use crate::protocol::ModelSummary;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub error: Option<String>,
    pub notice: Option<crate::app::Notice>,
    /// The model is a file from this computer: a link to the page cannot carry it.
    pub local_file: bool,
    pub confirm_vgg: bool,
    pub status: Option<String>,
    pub download: Option<(u64, Option<u64>)>,
    pub progress: Option<(usize, usize)>,
    pub summary: Option<std::rc::Rc<ModelSummary>>,
    pub weights_note: String,
    pub last_run: Option<LastRun>,
    pub on_dismiss: Callback<()>,
    pub on_dismiss_notice: Callback<()>,
    /// The notice's Retry (a broken download).
    pub on_retry: Callback<()>,
    pub on_download: Callback<()>,
    pub on_untrained: Callback<()>,
    /// How pixels become the input, picked (a key of `Preprocess::CHOICES`).
    pub on_preprocess: Callback<String>,
}

/// What the model line says of the last pass.
#[derive(Clone, Debug, PartialEq)]
pub struct LastRun {
    pub backend: String,
    pub ms: f64,
    /// Passes so far.
    pub runs: u64,
    /// The kernel pool's counts in the pass.
    pub pool: convlens_core::par::PoolStats,
    /// The worker's wasm memory (`RunSummary::worker_heap_bytes`).
    pub heap: u64,
    /// The worker's cut of the picture to the network's input, for a photo (live, the camera's
    /// stages show it).
    pub picture_ms: Option<f64>,
}

#[function_component(StatusBar)]
pub fn status_bar(p: &Props) -> Html {
    let click = |cb: &Callback<()>| cb.reform(|_: MouseEvent| ());
    let vgg = convlens_core::catalog::zoo_file("vgg16");
    let (vgg_file, vgg_mb) = vgg.map_or(("vgg16", 0), |z| (z.file, z.bytes / 1_000_000));
    html! {
        <>
            if let Some(e) = &p.error {
                <div class="error" data-testid="error" role="alert">
                    <span>{ e.clone() }</span>
                    <button aria-label="dismiss" onclick={click(&p.on_dismiss)}>{ "×" }</button>
                </div>
            }
            if let Some(n) = &p.notice {
                <div class="notice" data-testid="notice" role="status">
                    <div>
                        <span>{ n.text.clone() }</span>
                        if !n.details.is_empty() {
                            <details><summary>{ "why" }</summary>
                                <ul>{ for n.details.iter().map(|d| html! { <li>{ d.clone() }</li> }) }</ul>
                            </details>
                        }
                    </div>
                    if n.retry {
                        <button data-testid="retry" onclick={click(&p.on_retry)}>{ "Retry" }</button>
                    }
                    <button aria-label="dismiss notice" onclick={click(&p.on_dismiss_notice)}>{ "×" }</button>
                </div>
            }
            if p.confirm_vgg {
                <div class="confirm" role="dialog">
                    <p>{ format!("VGG16's weights are {vgg_mb} MB ({vgg_file}). Running it needs about twice that in this tab (the weights and their import) and ~60 MB of activations.") }</p>
                    <button onclick={click(&p.on_download)}>{ format!("Download {vgg_mb} MB") }</button>
                    <button onclick={click(&p.on_untrained)}>{ "Explore with untrained weights" }</button>
                </div>
            }
            if let Some(st) = &p.status {
                <div class="status" aria-live="polite">
                    <span>{ st.clone() }</span>
                    if let Some((got, total)) = p.download {
                        if let Some(t) = total {
                            <progress aria-label="download progress" max={t.to_string()} value={got.to_string()} />
                            <span>{ format!(" {} / {} ({:.0}%)", bytes(got), bytes(t), 100.0 * got as f64 / t.max(1) as f64) }</span>
                        } else {
                            <span>{ format!(" {}", bytes(got)) }</span>
                        }
                    }
                </div>
            }
            if let Some((done, total)) = p.progress {
                <div class="status" data-testid="running"><span>{ "Running… " }</span><progress aria-label="forward pass progress" max={total.to_string()} value={done.to_string()} /></div>
            }
            if let Some(s) = &p.summary {
                <p class={classes!("model-line", s.untrained.then_some("untrained"))}>
                    { format!("{} · {} parameters · {} · preprocessing: ", s.name, count(s.params), macs(s.macs)) }
                    { preprocess_picker(s, &p.on_preprocess) }
                    if !p.weights_note.is_empty() {
                        <span class={classes!("small", if s.untrained { "untrained" } else { "muted" })}>{ format!(" · {}", p.weights_note) }</span>
                    }
                    if p.local_file { <span class="muted small">{ " · a file from this computer: a link to this page cannot carry it" }</span> }
                    if let Some(LastRun { backend, ms, runs, pool, heap, picture_ms }) = &p.last_run {
                        // run-ms holds the number alone, for scripts that time the app; the pool's
                        // counts say whether a threaded pass got its second core.
                        <span data-backend={backend.clone()} data-run={runs.to_string()} title={pool_note(pool)}
                            data-helper-share={format!("{:.3}", pool.helper_share())} data-helper-sleeps={pool.helper_sleeps.to_string()} data-caller-sleeps={pool.caller_sleeps.to_string()}>
                            { " · last run " }<span data-testid="run-ms">{ format!("{ms:.1}") }</span>{ " ms" }
                        </span>
                        if let Some(prep) = picture_ms {
                            <span class="muted small" data-testid="picture-ms" data-ms={format!("{prep:.1}")}
                                title="The worker's cut of the picture to the network's input before the pass: only the crop window resampled (triangle filter), then normalized.">
                                { format!(" (+{prep:.0} ms to cut the picture)") }
                            </span>
                        }
                        if *heap > 0 {
                            <span class="muted small" data-testid="worker-memory" data-bytes={heap.to_string()}
                                title="The inference worker's WebAssembly memory: the most it has held since the page opened (it never shrinks). The weights live there.">
                                { format!(" · worker memory {}", bytes(*heap)) }
                            </span>
                        }
                    }
                </p>
            }
        </>
    }
}

/// The model's preprocessing as a choice: the file's contract is preselected; where the file
/// did not say, the guess is marked and the user asked to pick what the model was trained with.
fn preprocess_picker(s: &ModelSummary, on_pick: &Callback<String>) -> Html {
    let pick = on_pick.reform(|e: Event| e.target_unchecked_into::<web_sys::HtmlSelectElement>().value());
    let current = s.preprocess_key.clone().unwrap_or_default();
    html! {
        <>
            <select class="prep" data-testid="preprocess" aria-label="preprocessing" onchange={pick}>
                if s.preprocess_key.is_none() {
                    <option value="" selected=true>{ s.preprocess.clone() }</option>
                }
                { for convlens_core::graph::Preprocess::CHOICES.iter().map(|(k, label)| html! {
                    <option value={*k} selected={*k == current}>{ *label }</option>
                }) }
            </select>
            if s.preprocess_guessed {
                <span class="untrained small" data-testid="preprocess-guessed">{ " (a guess: the file does not say; pick what the model was trained with)" }</span>
            }
        </>
    }
}

/// The threads' part of a pass, for the run time's tooltip; None when no job was spread.
fn pool_note(pool: &convlens_core::par::PoolStats) -> Option<String> {
    (pool.jobs > 0).then(|| {
        format!(
            "kernel threads: the helpers ran {:.0}% of {} tasks in {} jobs; a helper fell asleep between jobs {} times, the caller waited asleep {} times",
            100.0 * pool.helper_share(),
            pool.tasks,
            pool.jobs,
            pool.helper_sleeps,
            pool.caller_sleeps
        )
    })
}
