//! What the explorer shows: the selected layer and channel (kept in the URL), the tiles the
//! worker drew for it and its branches, the colour-scale and sort toggles, keyboard walking,
//! and exports of the layer's values.

use std::rc::Rc;

use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
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
    ExportPng,
    ExportNpy,
}

#[derive(Default)]
pub struct ViewState {
    pub selected: Option<usize>,
    pub channel: Option<usize>,
    pub maps: Option<Rc<LayerMaps>>,
    pub branch_maps: Vec<Rc<LayerMaps>>,
    pub shared_scale: bool,
    pub sort_by_mean: bool,
    pub dark: bool,
    pub split_relus: bool,
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
                self.request_maps();
            }
            ViewMsg::ToggleSort => self.view.sort_by_mean = !self.view.sort_by_mean,
            ViewMsg::ToggleTheme => self.view.dark = !self.view.dark,
            ViewMsg::ToggleSplitRelus => {
                self.view.split_relus = !self.view.split_relus;
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
    pub(super) fn on_maps(&mut self, mut maps: Vec<LayerMaps>) {
        let sel = self.view.selected;
        self.view.maps = maps.iter().position(|m| Some(m.layer) == sel).map(|pos| Rc::new(maps.remove(pos)));
        self.view.branch_maps = maps.into_iter().map(Rc::new).collect();
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
        self.request_maps();
    }

    fn write_url(&self) {
        let (Some(s), Some(sel)) = (&self.model.summary, self.view.selected) else { return };
        url_state::write(&UrlState {
            model: Some(self.model.name.clone()),
            layer: Some(s.layers[sel].name.clone()),
            channel: self.view.channel,
            weights: url_state::read().weights,
        });
    }

    /// Asks the worker for the selected layer's maps and, inside a module, its branch outputs.
    pub(super) fn request_maps(&mut self) {
        let (Some(sel), Some(s), Some(_)) = (self.view.selected, &self.model.summary, &self.run.last) else { return };
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
    }

    /// Up/down walk the layers unless a text field has the key.
    fn on_key(&mut self, e: KeyboardEvent) -> bool {
        if e.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()).is_some() {
            return false;
        }
        let n = self.model.summary.as_ref().map_or(0, |s| s.layers.len());
        match (e.key().as_str(), self.view.selected) {
            ("ArrowDown", Some(i)) if i + 1 < n => {
                e.prevent_default();
                self.select(i + 1);
            }
            ("ArrowUp", Some(i)) if i > 0 => {
                e.prevent_default();
                self.select(i - 1);
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
