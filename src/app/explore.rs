//! What the explorer shows: the selected layer and channel (kept in the URL), the tiles the
//! worker drew for it and its branches, the colour-scale and sort toggles, keyboard walking,
//! and exports of the layer's values.

use crate::components::Same;

use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::App;
use crate::imaging;
use crate::protocol::{LayerMaps, ToWorker};
use crate::url_state::{self, UrlState};

pub enum ViewMsg {
    SelectLayer(usize),
    SelectChannel(Option<usize>),
    ToggleShared,
    ToggleSort,
    ToggleTheme,
    /// Show each fused ReLU as its own layer, so a conv's output before it can be seen.
    ToggleSplitRelus,
    Key(KeyboardEvent),
    /// A file is being dragged over the page (the drop cue shows).
    Dragging(bool),
    ExportPng,
    ExportNpy,
}

#[derive(Default)]
pub struct ViewState {
    pub selected: Option<usize>,
    pub channel: Option<usize>,
    pub maps: Option<Same<LayerMaps>>,
    pub branch_maps: Vec<Same<LayerMaps>>,
    pub shared_scale: bool,
    pub sort_by_mean: bool,
    pub dark: bool,
    pub split_relus: bool,
    pub dragging: bool,
    /// Set by a keyboard walk: the selected layer is scrolled into view after the render.
    pub scroll_to_selected: bool,
}

/// Larger than any map of a 224-px input: tiles at full resolution.
const FULL_SIZE_TILES: usize = 256;

impl App {
    /// Returns whether the view changed.
    pub(super) fn on_view(&mut self, msg: ViewMsg) -> bool {
        match msg {
            ViewMsg::SelectLayer(i) => self.select(i),
            ViewMsg::SelectChannel(c) => {
                self.view.channel = c;
                self.write_url();
            }
            ViewMsg::ToggleShared => {
                // Tiles are coloured by the worker: ask again on the other scale.
                self.view.shared_scale = !self.view.shared_scale;
                self.write_url();
                let _ = self.request_maps();
            }
            ViewMsg::ToggleSort => {
                self.view.sort_by_mean = !self.view.sort_by_mean;
                self.write_url();
            }
            ViewMsg::ToggleTheme => {
                self.view.dark = !self.view.dark;
                super::remember_theme(self.view.dark);
            }
            ViewMsg::Dragging(d) => {
                if self.view.dragging == d {
                    return false;
                }
                self.view.dragging = d;
            }
            ViewMsg::ToggleSplitRelus => {
                self.view.split_relus = !self.view.split_relus;
                self.write_url();
                // The layer list changes: stay on the same layer (by name) once it comes back.
                if let (Some(s), Some(sel)) = (&self.model.summary, self.view.selected) {
                    self.model.pending_url.layer = Some(s.layers[sel].name.clone());
                }
                self.bridge.send(ToWorker::SplitRelus(self.view.split_relus));
            }
            ViewMsg::Key(e) => return self.on_key(e),
            ViewMsg::ExportPng => self.export(false),
            ViewMsg::ExportNpy => self.export(true),
        }
        true
    }

    /// The worker's tiles: the selected layer's, then its module's branch outputs.
    pub(super) fn on_maps(&mut self, ctx: &Context<Self>, mut maps: Vec<LayerMaps>) {
        self.time_paint(ctx, maps.iter().map(|m| m.ms).sum());
        let sel = self.view.selected;
        self.view.maps = maps.iter().position(|m| Some(m.layer) == sel).map(|pos| Same::new(maps.remove(pos)));
        self.view.branch_maps = maps.into_iter().map(Same::new).collect();
    }

    pub(super) fn select(&mut self, i: usize) {
        let Some(s) = &self.model.summary else { return };
        if i >= s.layers.len() {
            return;
        }
        if self.view.selected != Some(i) {
            self.view.channel = None;
        }
        self.view.selected = Some(i);
        self.write_url();
        let _ = self.request_maps();
    }

    /// Every view parameter into the URL, so a reload or a shared link shows the same view.
    pub(super) fn write_url(&self) {
        let zoo = self.is_zoo_model();
        let layer = match (&self.model.summary, self.view.selected) {
            (Some(s), Some(sel)) => Some(s.layers[sel].name.clone()),
            _ => self.model.pending_url.layer.clone(),
        };
        url_state::write(&UrlState {
            model: (!self.model.name.is_empty()).then(|| self.model.name.clone()),
            local: !zoo && self.model.weights_url.is_none(),
            layer,
            channel: self.view.channel,
            weights: self.model.weights_url.clone(),
            backend: Some(self.backend.choice.key().to_string()),
            shared_scale: self.view.shared_scale,
            sort_by_mean: self.view.sort_by_mean,
            split_relus: self.view.split_relus,
            squash: self.run.fit == convlens_core::preprocess::Fit::Squash,
            catalog: self.model.catalog_url.clone(),
            threads: self.threads.asked,
            simd: self.threads.plan.simd_asked.clone(),
            prep: self.model.prep.clone().or_else(|| self.model.pending_url.prep.clone()),
        });
    }

    /// The channel a link or reload asked for, clamped to the selected layer's channels with a
    /// note when it does not exist there.
    pub(super) fn apply_channel(&mut self, want: usize) {
        let (Some(s), Some(sel)) = (&self.model.summary, self.view.selected) else { return };
        let l = &s.layers[sel];
        let channels = if l.shape.len() == 4 { l.shape[1] } else { 0 };
        if channels == 0 {
            self.notice = Some(super::Notice::new(format!("{} is not a feature map: channel {want} from the link is not shown.", l.name)));
            return;
        }
        let c = want.min(channels - 1);
        if c != want {
            self.notice = Some(super::Notice::new(format!("{} has {channels} channels (0 to {}): channel {want} from the link does not exist, so channel {c} is shown.", l.name, channels - 1)));
        }
        self.view.channel = Some(c);
        self.write_url();
    }

    /// Asks the worker for the selected layer's maps and, inside a module, its branch outputs.
    /// Asks for the shown layers' maps of the last pass; false when there are none to show.
    pub(super) fn request_maps(&mut self) -> bool {
        let (Some(sel), Some(s), Some(_)) = (self.view.selected, &self.model.summary, &self.run.last) else { return false };
        let mut layers = vec![sel];
        if let Some(m) = s.layers[sel].module {
            layers.extend(s.modules[m].branches.iter().filter_map(|b| b.output_layer));
        }
        // Live: tiles at the size they are shown, drawn where the pass ran, no raw values.
        // Frozen: full-size tiles and the values (hover readout, export).
        let (max_side, values) = if self.camera.live {
            let dpr = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio()).max(1.0);
            let channels = s.layers[sel].shape.get(1).copied().unwrap_or(1);
            ((crate::components::feature_grid::tile_px(channels) as f64 * dpr).ceil() as usize, false)
        } else {
            (FULL_SIZE_TILES, true)
        };
        self.bridge.send(ToWorker::Maps { layers, max_side, shared: self.view.shared_scale, values });
        true
    }

    /// From anywhere on the page except a form control: up/down walk the layers, left/right
    /// the channels of an enlarged tile, Escape closes it.
    fn on_key(&mut self, e: KeyboardEvent) -> bool {
        if e.ctrl_key() || e.meta_key() || e.alt_key() || owns_arrow_keys(e.target()) {
            return false;
        }
        let s = self.model.summary.clone();
        let n = s.as_ref().map_or(0, |s| s.layers.len());
        let channels = self.view.selected.and_then(|i| s.as_ref().and_then(|s| s.layers[i].shape.get(1).copied())).unwrap_or(0);
        match (e.key().as_str(), self.view.selected, self.view.channel) {
            ("ArrowDown", Some(i), _) if i + 1 < n => {
                e.prevent_default();
                self.view.scroll_to_selected = true;
                self.select(i + 1);
            }
            ("ArrowUp", Some(i), _) if i > 0 => {
                e.prevent_default();
                self.view.scroll_to_selected = true;
                self.select(i - 1);
            }
            ("ArrowRight", _, Some(c)) if c + 1 < channels => {
                e.prevent_default();
                self.view.channel = Some(c + 1);
                self.write_url();
            }
            ("ArrowLeft", _, Some(c)) if c > 0 => {
                e.prevent_default();
                self.view.channel = Some(c - 1);
                self.write_url();
            }
            ("Escape", _, Some(_)) => {
                self.view.channel = None;
                self.write_url();
            }
            _ => return false,
        }
        true
    }

    fn export(&mut self, npy: bool) {
        let (Some(m), Some(s), Some(sel)) = (&self.view.maps, &self.model.summary, self.view.selected) else { return };
        let Some(data) = &m.data else {
            self.error = Some("Freeze the camera to export: live mode keeps the values on the worker.".into());
            return;
        };
        let name = convlens_core::graph::file_name_for(&s.layers[sel].name);
        let r = if npy {
            imaging::npy_bytes(&m.shape, data).and_then(|b| imaging::download(&b, &format!("{name}.npy"), "application/octet-stream"))
        } else {
            export_grid_png(&m.shape, data).and_then(|b| imaging::download(&b, &format!("{name}.png"), "image/png"))
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}

/// Form controls keep their own arrow keys (a select changes its option, a text field moves
/// its caret, a checkbox or radio group moves between options).
fn owns_arrow_keys(target: Option<web_sys::EventTarget>) -> bool {
    let Some(el) = target.and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return false };
    matches!(el.tag_name().to_ascii_lowercase().as_str(), "input" | "select" | "textarea") || el.get_attribute("contenteditable").is_some()
}

/// Brings the selected layer into view inside the layer list (nearest edge, no jump if shown).
pub(super) fn scroll_selected_into_view() {
    let Ok(Some(el)) = imaging::document().query_selector("[data-testid=layer-list] button.layer.selected") else { return };
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"block".into(), &"nearest".into());
    if let Ok(f) = js_sys::Reflect::get(&el, &"scrollIntoView".into()).and_then(|f| f.dyn_into::<js_sys::Function>()) {
        let _ = f.call1(&el, &options);
    }
}

/// The whole layer as one PNG grid (each channel on its own scale), drawn on a canvas.
fn export_grid_png(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, String> {
    let [_, c, h, w] = shape[..] else { return Err("not a feature map".into()) };
    let cols = (c as f64).sqrt().ceil() as usize;
    let rows = c.div_ceil(cols);
    let canvas = imaging::new_canvas((cols * (w + 1) + 1) as u32, (rows * (h + 1) + 1) as u32)?;
    let ctx: web_sys::CanvasRenderingContext2d =
        canvas.get_context("2d").map_err(imaging::js_err)?.ok_or("no context")?.dyn_into().map_err(|_| "context")?;
    let tile = imaging::new_canvas(w as u32, h as u32)?;
    for ch in 0..c {
        let plane = &data[ch * h * w..(ch + 1) * h * w];
        let (lo, hi) = convlens_core::viz::value_range(plane);
        imaging::paint_channel(&tile, plane, w, h, lo, hi)?;
        ctx.draw_image_with_html_canvas_element(&tile, (1 + (ch % cols) * (w + 1)) as f64, (1 + (ch / cols) * (h + 1)) as f64)
            .map_err(imaging::js_err)?;
    }
    imaging::canvas_png(&canvas)
}
