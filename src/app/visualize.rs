//! What a channel looks for: the channel the user asked about (from an enlarged tile), the
//! image forming in the worker, Stop, the session's cache of finished ones, and the PNG export.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::App;
use crate::imaging;
use crate::protocol::{ToWorker, Visualized};

/// Steps and image side in the app: Olah et al.'s and the CLI's defaults (256 steps), at 128 px
/// so the wasm CPU path forms it in seconds.
pub const STEPS: usize = 256;
pub const SIZE: usize = 128;

pub enum VisMsg {
    /// (layer, channel): visualize it (from the cache when done before).
    Start(usize, usize),
    /// One visualization per branch of the shown module, one after another: each branch's
    /// output layer at its most active channel on the picture.
    Branches,
    Stop,
    Close,
    ExportPng,
}

#[derive(Default)]
pub struct VisState {
    /// (layer name, channel) being shown.
    pub target: Option<(String, usize)>,
    pub sent: u64,
    pub latest: Option<Rc<Visualized>>,
    /// Finished visualizations of this model, by (layer name, channel).
    pub cache: HashMap<(String, usize), Rc<Visualized>>,
    /// Per branch of the module asked about: (its output layer's name, the channel), in order.
    pub branches: Vec<Option<(String, usize)>>,
    /// The module those branches belong to (its concat layer).
    pub branch_module: Option<usize>,
    /// (layer, channel) still to run for the branches.
    queue: VecDeque<(usize, usize)>,
}

impl App {
    pub(super) fn on_vis(&mut self, msg: VisMsg) {
        match msg {
            VisMsg::Start(layer, channel) => {
                let Some(name) = self.model.summary.as_ref().and_then(|s| s.layers.get(layer)).map(|l| l.name.clone()) else { return };
                let key = (name, channel);
                self.vis.target = Some(key.clone());
                if let Some(done) = self.vis.cache.get(&key) {
                    self.vis.latest = Some(done.clone());
                    return;
                }
                self.stop_vis();
                // The enlarged tile gives way to the panel where the image forms.
                self.view.channel = None;
                self.vis.sent += 1;
                self.vis.latest = None;
                self.bridge.send(ToWorker::Visualize { id: self.vis.sent, layer, channel, steps: STEPS, size: SIZE });
            }
            VisMsg::Branches => {
                let Some(summary) = self.model.summary.as_ref() else { return };
                let Some(module) = self.view.selected.and_then(|i| summary.layers.get(i)).and_then(|l| l.module).and_then(|m| summary.modules.get(m)) else { return };
                let targets: Vec<Option<(usize, usize)>> = module
                    .branches
                    .iter()
                    .map(|b| {
                        let l = b.output_layer?;
                        // The channel the picture excites most on average: one the user can see at work.
                        let ch = self.view.branch_maps.iter().find(|m| m.layer == l).and_then(|m| {
                            m.tiles.stats.iter().enumerate().max_by(|a, b| a.1[2].total_cmp(&b.1[2])).map(|(c, _)| c)
                        });
                        Some((l, ch.unwrap_or(0)))
                    })
                    .collect();
                self.vis.branch_module = Some(module.concat);
                self.vis.branches = targets.iter().map(|t| t.map(|(l, c)| (summary.layers[l].name.clone(), c))).collect();
                self.vis.queue = targets.into_iter().flatten().collect();
                self.next_branch();
            }
            VisMsg::Stop => {
                self.vis.queue.clear();
                self.stop_vis();
            }
            VisMsg::Close => {
                self.vis.queue.clear();
                self.stop_vis();
                self.vis.target = None;
                self.vis.latest = None;
            }
            VisMsg::ExportPng => {
                let Some(v) = &self.vis.latest else { return };
                let name = self.vis.target.as_ref().map_or("channel".into(), |(l, c)| format!("{}-channel{c}", convlens_core::graph::file_name_for(l)));
                let r = imaging::new_canvas(v.side as u32, v.side as u32)
                    .and_then(|c| imaging::paint_rgba(&c, &v.rgba, v.side, v.side).map(|_| c))
                    .and_then(|c| imaging::canvas_png(&c))
                    .and_then(|b| imaging::download(&b, &format!("{name}-looks-for.png"), "image/png"));
                if let Err(e) = r {
                    self.error = Some(e);
                }
            }
        }
    }

    /// A new model: its channels are other channels.
    pub(super) fn reset_vis(&mut self) {
        self.stop_vis();
        self.vis = VisState { sent: self.vis.sent, ..Default::default() };
    }

    fn stop_vis(&mut self) {
        if self.vis.latest.as_ref().is_none_or(|v| !v.done) && self.vis.sent > 0 {
            self.bridge.send(ToWorker::StopVisualize { id: self.vis.sent });
        }
    }

    pub(super) fn on_visualized(&mut self, v: Visualized) {
        if v.id != self.vis.sent {
            return;
        }
        let v = Rc::new(v);
        let finished = v.done && !v.stopped && v.error.is_none();
        if finished {
            if let Some(key) = &self.vis.target {
                self.vis.cache.insert(key.clone(), v.clone());
            }
        }
        self.vis.latest = Some(v.clone());
        if v.done {
            self.next_branch();
        }
    }

    /// Starts the next branch's visualization still to run (cached ones are skipped).
    fn next_branch(&mut self) {
        while let Some((layer, channel)) = self.vis.queue.pop_front() {
            let cached = self.model.summary.as_ref().and_then(|s| s.layers.get(layer)).is_some_and(|l| self.vis.cache.contains_key(&(l.name.clone(), channel)));
            if !cached {
                self.on_vis(VisMsg::Start(layer, channel));
                return;
            }
        }
    }

    /// Per branch of the module asked about: its visualization, done or forming.
    pub(super) fn branch_visuals(&self) -> Vec<Option<Rc<Visualized>>> {
        self.vis
            .branches
            .iter()
            .map(|b| {
                let key = b.as_ref()?;
                self.vis.cache.get(key).cloned().or_else(|| (self.vis.target.as_ref() == Some(key)).then(|| self.vis.latest.clone()).flatten())
            })
            .collect()
    }
}
