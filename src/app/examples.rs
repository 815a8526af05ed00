//! "Your photos that excite it most": photos the user picks (many files or a folder) go to the
//! worker one at a time, each decoded here with its thumbnail (the crop the network sees, as
//! JPEG); the worker ranks them per channel. An index can be saved, or opened (the CLI's
//! `convlens index` makes the same file). The enlarged channel shows its top photos with the
//! patch its strongest unit sees.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::{App, Msg};
use crate::imaging::{self, Source};
use crate::protocol::{ExampleHit, Frame, IndexCmd, IndexReply, ToWorker};
use convlens_core::preprocess::Fit;

/// Thumbnails' JPEG quality, as `convlens index` writes them.
const THUMB_QUALITY: f64 = 0.85;

pub enum ExamplesMsg {
    /// Photos to rank (from a file picker, a folder picker, or several dropped at once).
    Add(Vec<web_sys::File>),
    /// One photo decoded: (name, pixels, thumbnail) or why it could not be.
    Decoded(String, Result<(Frame, Vec<u8>), String>),
    Cancel,
    /// An .idx file to open.
    Open(web_sys::File),
    OpenBytes(Vec<u8>),
    Save,
    Clear,
}

#[derive(Default)]
pub struct ExamplesState {
    queue: VecDeque<web_sys::File>,
    /// Photos of this batch taken so far, and in all.
    pub done: usize,
    pub total: usize,
    /// A photo is with the decoder or the worker.
    pub busy: bool,
    /// Photos in the index (this session's and an opened file's).
    pub indexed: usize,
    pub skipped: Vec<String>,
    /// Per photo of the last batch, ms in the worker.
    pub last_ms: Option<f64>,
    pub engine: Option<String>,
    /// Ranked photos by (layer, channel); cleared when the index or the graph changes.
    pub top: HashMap<(usize, usize), Rc<Vec<ExampleHit>>>,
    pub asked: Option<(usize, usize)>,
    pub error: Option<String>,
    /// The index came back from this browser's storage (ranked on an earlier visit).
    pub restored: bool,
    /// What this browser keeps: (photos, bytes), after the last `Keep`.
    pub kept: Option<(usize, usize)>,
}

impl ExamplesState {
    pub fn running(&self) -> bool {
        self.busy || !self.queue.is_empty()
    }
}

impl App {
    pub(super) fn on_examples(&mut self, ctx: &Context<Self>, msg: ExamplesMsg) {
        let e = &mut self.examples;
        match msg {
            ExamplesMsg::Add(files) => {
                let photos: Vec<web_sys::File> = files.into_iter().filter(|f| f.type_().starts_with("image/")).collect();
                if photos.is_empty() {
                    e.error = Some("no photos among those files (JPEG, PNG, WebP, GIF, BMP)".into());
                    return;
                }
                if !e.running() {
                    e.done = 0;
                    e.total = 0;
                    e.skipped.clear();
                }
                e.error = None;
                e.total += photos.len();
                e.queue.extend(photos);
                self.next_photo(ctx);
            }
            ExamplesMsg::Decoded(name, Ok((frame, thumb))) => {
                self.bridge.send(ToWorker::Index(IndexCmd::Photo { name, frame, thumb }));
            }
            ExamplesMsg::Decoded(name, Err(why)) => {
                e.skipped.push(format!("{name}: {why}"));
                e.done += 1;
                e.busy = false;
                self.next_photo(ctx);
            }
            ExamplesMsg::Cancel => {
                e.total -= e.queue.len();
                e.queue.clear();
            }
            ExamplesMsg::Open(file) => {
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
                        Ok(buf) => link.send_message(Msg::Examples(ExamplesMsg::OpenBytes(js_sys::Uint8Array::new(&buf).to_vec()))),
                        Err(err) => link.send_message(Msg::Error(format!("cannot read the index: {}", imaging::js_err(err)))),
                    }
                });
            }
            ExamplesMsg::OpenBytes(bytes) => self.bridge.send(ToWorker::Index(IndexCmd::Load(bytes))),
            ExamplesMsg::Save => self.bridge.send(ToWorker::Index(IndexCmd::Save)),
            ExamplesMsg::Clear => {
                self.bridge.send(ToWorker::Index(IndexCmd::Clear));
                *e = ExamplesState::default();
            }
        }
    }

    /// Decodes the next photo of the queue (one at a time: memory stays bounded, Cancel is quick).
    fn next_photo(&mut self, ctx: &Context<Self>) {
        let e = &mut self.examples;
        if e.busy {
            return;
        }
        let Some(file) = e.queue.pop_front() else {
            // The batch is done: the ranked photos changed; this browser keeps them.
            e.top.clear();
            e.asked = None;
            if e.done > 0 && e.indexed > 0 {
                self.bridge.send(ToWorker::Index(IndexCmd::Keep));
            }
            self.ask_top();
            return;
        };
        let Some(side) = self.model.summary.as_ref().map(|s| s.input_side) else { return };
        e.busy = true;
        // A folder's photos are named by their path inside it, as `convlens index` names them.
        let name = js_sys::Reflect::get(&file, &"webkitRelativePath".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
        let name = if name.is_empty() { file.name() } else { name };
        ctx.link().send_future(async move {
            let decoded = async {
                let bmp = imaging::decode(&file).await?;
                let frame = imaging::frame_pixels(&Source::Bitmap(&bmp))?;
                let crop = imaging::crop_preview(&Source::Bitmap(&bmp), side, Fit::ResizeAndCenterCrop)?;
                bmp.close();
                Ok((frame, jpeg(&crop)?))
            }
            .await;
            Msg::Examples(ExamplesMsg::Decoded(name, decoded))
        });
    }

    pub(super) fn on_index_reply(&mut self, ctx: &Context<Self>, r: IndexReply) {
        let e = &mut self.examples;
        match r {
            IndexReply::Added { name, indexed, error, ms, engine } => {
                e.indexed = indexed;
                e.done += 1;
                e.busy = false;
                e.last_ms = Some(ms);
                e.engine = Some(engine);
                if let Some(why) = error {
                    e.skipped.push(format!("{name}: {why}"));
                }
                self.next_photo(ctx);
            }
            IndexReply::Opened { photos, .. } => {
                *e = ExamplesState { indexed: photos, ..Default::default() };
                self.bridge.send(ToWorker::Index(IndexCmd::Keep));
                self.ask_top();
            }
            IndexReply::Kept { photos, bytes } => e.kept = Some((photos, bytes)),
            IndexReply::Restored { photos } => {
                if photos > 0 && !e.running() && e.indexed == 0 {
                    *e = ExamplesState { indexed: photos, restored: true, ..Default::default() };
                    self.ask_top();
                }
            }
            IndexReply::Saved(bytes) => {
                let name = format!("{}-photos.idx", convlens_core::graph::file_name_for(&self.model.name));
                if let Err(err) = imaging::download(&bytes, &name, "application/octet-stream") {
                    self.error = Some(err);
                }
            }
            IndexReply::Top { layer, channel, hits } => {
                e.top.insert((layer, channel), Rc::new(hits));
            }
            IndexReply::Cleared => {}
            IndexReply::Error(why) => {
                e.busy = false;
                e.error = Some(why);
            }
        }
    }

    /// Asks the worker for the enlarged channel's photos, once per (layer, channel).
    pub(super) fn ask_top(&mut self) {
        let Some(key) = self.enlarged_key() else { return };
        let e = &mut self.examples;
        if e.indexed == 0 || e.top.contains_key(&key) || e.asked.as_ref() == Some(&key) {
            return;
        }
        e.asked = Some(key.clone());
        self.bridge.send(ToWorker::Index(IndexCmd::Top { layer: key.0, channel: key.1 }));
    }

    /// (layer, channel) of the enlarged tile.
    pub(super) fn enlarged_key(&self) -> Option<(usize, usize)> {
        Some((self.view.selected?, self.view.channel?))
    }

    /// A new model: its channels are others, and the worker dropped its index.
    pub(super) fn reset_examples(&mut self) {
        self.examples = ExamplesState::default();
    }
}

/// The canvas as JPEG bytes.
fn jpeg(canvas: &web_sys::HtmlCanvasElement) -> Result<Vec<u8>, String> {
    let url = canvas.to_data_url_with_type_and_encoder_options("image/jpeg", &THUMB_QUALITY.into()).map_err(imaging::js_err)?;
    let b64 = url.split_once(',').map(|(_, b)| b).ok_or("no JPEG data")?;
    let window = web_sys::window().ok_or("no window")?;
    let bin = window.atob(b64).map_err(imaging::js_err)?;
    Ok(bin.chars().map(|c| c as u8).collect())
}

/// Photos picked in an <input type=file>: all of them.
pub fn files_of(e: &Event) -> Vec<web_sys::File> {
    let Some(input) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else { return Vec::new() };
    let files = input.files().map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default();
    input.set_value("");
    files
}

/// Side of a patch on screen, px.
const PATCH_PX: f64 = 84.0;

impl App {
    /// The strip under the view controls: rank photos, open or save an index, progress.
    pub(super) fn examples_bar(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let e = &self.examples;
        let add = link.callback(|ev: Event| Msg::Examples(ExamplesMsg::Add(files_of(&ev))));
        let add_folder = add.clone();
        let open = link.batch_callback(|ev: Event| files_of(&ev).into_iter().next().map(|f| Msg::Examples(ExamplesMsg::Open(f))));
        let status = if e.running() {
            format!("ranking your photos: {} of {}", e.done, e.total)
        } else if e.indexed > 0 {
            let per = e.last_ms.map(|ms| format!(", {ms:.0} ms a photo on {}", e.engine.clone().unwrap_or_default())).unwrap_or_default();
            let from = if e.restored { " (kept in this browser from an earlier visit)" } else { "" };
            let kept = match e.kept {
                Some((_, bytes)) => format!("; this browser keeps them ({}; Forget to remove)", crate::components::bytes(bytes as u64)),
                None => String::new(),
            };
            format!("{} photos ranked for every channel{from}{per}: enlarge a channel to see the ones that excite it most{kept}", e.indexed)
        } else {
            "Which of your photos excite each channel most? Pick many photos or a folder; nothing leaves this page.".into()
        };
        html! {
            <div class="examples-bar" data-testid="examples-bar">
                <label class="button">{ "Rank photos…" }<input type="file" multiple=true accept="image/*" class="visually-hidden" data-testid="examples-files" onchange={add} /></label>
                <label class="button">{ "…a folder" }<input type="file" webkitdirectory=true class="visually-hidden" onchange={add_folder} /></label>
                <label class="button">{ "Open index…" }<input type="file" accept=".idx" class="visually-hidden" data-testid="examples-open" onchange={open} /></label>
                if e.indexed > 0 && !e.running() {
                    <button onclick={link.callback(|_: MouseEvent| Msg::Examples(ExamplesMsg::Save))} data-testid="examples-save">{ "Save index" }</button>
                    <button onclick={link.callback(|_: MouseEvent| Msg::Examples(ExamplesMsg::Clear))}>{ "Forget" }</button>
                }
                if e.running() {
                    <progress max={e.total.to_string()} value={e.done.to_string()} aria-label="photos ranked" />
                    <button onclick={link.callback(|_: MouseEvent| Msg::Examples(ExamplesMsg::Cancel))} data-testid="examples-cancel">{ "Cancel" }</button>
                }
                <span class="muted small" data-testid="examples-status" aria-live="polite">{ status }</span>
                if let Some(err) = &e.error {
                    <span class="untrained small" role="status">{ err.clone() }</span>
                }
                if !e.skipped.is_empty() {
                    <details class="small"><summary>{ format!("{} skipped", e.skipped.len()) }</summary>
                        <ul>{ for e.skipped.iter().map(|s| html! { <li>{ s.clone() }</li> }) }</ul>
                    </details>
                }
            </div>
        }
    }

    /// The enlarged channel's ranked photos: each one's patch (its strongest unit's receptive
    /// field), best first.
    pub(super) fn top_photos(&self) -> Html {
        let e = &self.examples;
        if e.indexed == 0 {
            return html! {};
        }
        let Some(key) = self.enlarged_key() else { return html! {} };
        let Some(hits) = e.top.get(&key) else {
            return html! { <p class="muted small">{ "finding your photos…" }</p> };
        };
        html! {
            <div class="top-photos">
                <p class="small">{ format!("Your photos that excite it most ({} of {}; the patch its strongest unit sees):", hits.len(), e.indexed) }</p>
                <div class="patches" data-testid="top-photos">
                    { for hits.iter().map(|h| {
                        let [t, l, b, r] = h.patch;
                        let (pw, ph) = ((r - l).max(1) as f64, (b - t).max(1) as f64);
                        let k = PATCH_PX / pw.max(ph);
                        let style = format!(
                            "width:{:.0}px;height:{:.0}px;background-image:url(data:image/jpeg;base64,{});background-size:{:.1}px {:.1}px;background-position:{:.1}px {:.1}px",
                            pw * k, ph * k, base64(&h.thumb), h.side as f64 * k, h.side as f64 * k, -(l as f64) * k, -(t as f64) * k
                        );
                        html! { <div class="patch" {style} role="img" data-score={format!("{:.3}", h.score)}
                            aria-label={format!("{}: {:.2}", h.name, h.score)} title={format!("{}: {:.2}", h.name, h.score)}></div> }
                    }) }
                </div>
            </div>
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    let bin: String = bytes.iter().map(|&b| b as char).collect();
    web_sys::window().and_then(|w| w.btoa(&bin).ok()).unwrap_or_default()
}
