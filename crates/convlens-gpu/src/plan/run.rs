//! A forward pass on the device and reading its results back: one command encoder (one compute
//! pass per layer when timed by timestamp queries, or one submission per layer without them),
//! readbacks of exactly the values asked for, errors from the device's scopes.

use std::collections::HashMap;

use convlens_core::graph::ValueId;
use convlens_core::Tensor;

use super::memory::Slot;
use super::planner::Step;
use super::{GpuModel, Timing};
use crate::{GpuError, GpuRun, LayerClock, Result};

/// The most parts a pass is submitted in when progress is reported.
pub const PROGRESS_PARTS: usize = 8;

/// About how long one part of a pass that reports progress runs: a pass quicker than this is
/// submitted whole. Each part is awaited before the next is submitted, a round trip through
/// the browser's event loop that leaves the GPU idle; on a real GPU a whole pass takes a few
/// milliseconds, and seven such waits would cost more than the layers.
pub const PROGRESS_PART_MS: f64 = 50.0;

impl GpuModel {
    /// One forward pass, blocking (native): reads back `keep` and nothing else.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, input: &Tensor, keep: &[ValueId], timing: Timing) -> Result<GpuRun> {
        pollster::block_on(self.run_async(input, keep, timing))
    }

    /// Whether per-layer times come from timestamp queries.
    pub fn has_timestamps(&self) -> bool {
        self.gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Consecutive steps grouped by the node they compute: one compute pass each when timed.
    fn node_groups(&self) -> Vec<(usize, std::ops::Range<usize>)> {
        let mut groups: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            match groups.last_mut() {
                Some((n, r)) if *n == s.node => r.end = i + 1,
                _ => groups.push((s.node, i..i + 1)),
            }
        }
        groups
    }

    fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, steps: &[Step]) {
        for s in steps {
            pass.set_pipeline(&self.pipelines[s.pipeline].1);
            pass.set_bind_group(0, &s.bind_group, &[]);
            pass.dispatch_workgroups(s.workgroups.0, s.workgroups.1, 1);
        }
    }

    /// One forward pass; the readback is awaited (in a browser, the event loop maps buffers).
    pub async fn run_async(&self, input: &Tensor, keep: &[ValueId], timing: Timing) -> Result<GpuRun> {
        self.run_reporting(input, keep, timing, None).await
    }

    /// As `run_async`, calling `progress(layers done, layers)` as the GPU gets through the
    /// network: the pass is then submitted in a few parts, each awaited (a handful of extra
    /// round trips), so a slow device shows real progress instead of 0 until the end.
    pub async fn run_reporting(&self, input: &Tensor, keep: &[ValueId], timing: Timing, mut progress: Option<&mut dyn FnMut(usize, usize)>) -> Result<GpuRun> {
        let dev = &self.gpu.device;
        self.gpu.check_lost()?;
        if input.shape != self.shapes[self.input] {
            return Err(GpuError(format!("input has shape {:?}, the model wants {:?}", input.shape, self.shapes[self.input])));
        }
        let t0 = web_time_now();
        let in_slot = self.slots[self.input].unwrap();
        self.gpu.queue.write_buffer(&self.buffers[in_slot.buffer], 0, bytemuck::cast_slice(&input.data));
        let groups = self.node_groups();
        // WebGPU caps a query set at 4096 queries: two per layer.
        let timestamps = timing == Timing::Layers && self.has_timestamps() && groups.len() * 2 <= 4096;
        let mut layer_ms = Vec::new();
        // Validation errors surface here (in a browser they would only reach the console).
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let per_pass = timing != Timing::Off && !timestamps;
        let progress_wanted = progress.is_some();
        let mut report = |done: usize| {
            if let Some(p) = progress.as_mut() {
                p(done, groups.len());
            }
        };
        if per_pass {
            // One submission per layer, each awaited: the CPU clock around it times the layer.
            layer_ms = vec![0.0; self.nodes];
            for (i, (node, range)) in groups.iter().enumerate() {
                let t = web_time_now();
                let mut e = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("layer") });
                self.dispatch(&mut e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("layer"), timestamp_writes: None }), &self.steps[range.clone()]);
                self.gpu.queue.submit([e.finish()]);
                self.work_done().await?;
                layer_ms[*node] += web_time_now() - t;
                report(i + 1);
            }
        }
        let set = timestamps.then(|| {
            dev.create_query_set(&wgpu::QuerySetDescriptor { label: Some("layer times"), ty: wgpu::QueryType::Timestamp, count: (groups.len() * 2) as u32 })
        });
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(if per_pass { "read" } else { "forward" }) });
        if !per_pass {
            // In parts when progress is wanted: each submitted and awaited but the last, which
            // goes with the reads.
            let parts = if progress_wanted { self.parts_for(groups.len()) } else { 1 };
            let per = groups.len().div_ceil(parts);
            for (k, part) in groups.chunks(per.max(1)).enumerate() {
                let first = k * per;
                let last = first + part.len() == groups.len();
                let mut own = (!last).then(|| dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("forward part") }));
                let e = own.as_mut().unwrap_or(&mut enc);
                match &set {
                    Some(set) => self.encode_timestamped(e, set, part, first),
                    None => {
                        let steps = part[0].1.start..part[part.len() - 1].1.end;
                        self.dispatch(&mut e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("forward"), timestamp_writes: None }), &self.steps[steps]);
                    }
                }
                if let Some(e) = own {
                    self.gpu.queue.submit([e.finish()]);
                    self.work_done().await?;
                    report(first + part.len());
                }
            }
        }
        let stamps = set.as_ref().map(|set| self.resolve_timestamps(&mut enc, set));
        let reads = self.encode_reads(&mut enc, keep)?;
        self.gpu.queue.submit([enc.finish()]);
        if let Some(e) = scope.pop().await {
            return Err(GpuError(format!("the GPU rejected the forward pass: {e}")));
        }
        let mut staged: Vec<&wgpu::Buffer> = reads.iter().map(|(_, b, _)| b).collect();
        staged.extend(stamps.as_ref());
        let mut bytes = self.map_all(&staged).await?;
        report(groups.len());
        let clock = match (timing, stamps.is_some()) {
            (Timing::Off, _) => None,
            (_, true) => {
                let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes.pop().unwrap_or_default());
                let ns_per_tick = self.gpu.queue.get_timestamp_period() as f64;
                layer_ms = vec![0.0; self.nodes];
                for (i, (node, _)) in groups.iter().enumerate() {
                    let (a, b) = (ticks.get(2 * i).copied().unwrap_or(0), ticks.get(2 * i + 1).copied().unwrap_or(0));
                    layer_ms[*node] += b.saturating_sub(a) as f64 * ns_per_tick / 1e6;
                }
                Some(LayerClock::Timestamps)
            }
            _ => Some(LayerClock::PerPass),
        };
        let mut values = HashMap::new();
        for ((v, _, shape), data) in reads.into_iter().zip(bytes) {
            values.insert(v, Tensor::new(shape, bytemuck::pod_collect_to_vec(&data)).map_err(|e| GpuError(e.to_string()))?);
        }
        let total_ms = web_time_now() - t0;
        if !per_pass {
            self.last_pass_ms.set(Some(total_ms));
        }
        Ok(GpuRun { values, total_ms, layer_ms, clock })
    }

    /// Layers `groups` (the `first`-th onward) each as its own compute pass between two
    /// timestamp queries of `set`.
    fn encode_timestamped(&self, enc: &mut wgpu::CommandEncoder, set: &wgpu::QuerySet, groups: &[(usize, std::ops::Range<usize>)], first: usize) {
        for (i, (_, range)) in groups.iter().enumerate() {
            let q = 2 * (first + i) as u32;
            let writes = wgpu::ComputePassTimestampWrites { query_set: set, beginning_of_pass_write_index: Some(q), end_of_pass_write_index: Some(q + 1) };
            self.dispatch(&mut enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("layer"), timestamp_writes: Some(writes) }), &self.steps[range.clone()]);
        }
    }

    /// Copies the resolved ticks of `set` to a buffer mapped after the submission.
    fn resolve_timestamps(&self, enc: &mut wgpu::CommandEncoder, set: &wgpu::QuerySet) -> wgpu::Buffer {
        let dev = &self.gpu.device;
        let count = self.node_groups().len() as u32 * 2;
        let size = count as u64 * 8;
        let buffer = |label, usage| dev.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false });
        let resolved = buffer("timestamps", wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
        let staging = buffer("timestamps readback", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
        enc.resolve_query_set(set, 0..count, &resolved, 0);
        enc.copy_buffer_to_buffer(&resolved, 0, &staging, 0, size);
        staging
    }

    /// How many parts the next pass that reports progress is submitted in: as many as the
    /// last pass on this model took `PROGRESS_PART_MS` periods (the first pass, whose speed is
    /// unknown, in `PROGRESS_PARTS`), at most one per layer.
    pub fn progress_parts(&self) -> usize {
        self.parts_for(self.node_groups().len())
    }

    /// `progress_parts` for a pass of `groups` layers (the pass has them already).
    fn parts_for(&self, groups: usize) -> usize {
        let parts = match self.last_pass_ms.get() {
            None => PROGRESS_PARTS,
            Some(ms) => ((ms / PROGRESS_PART_MS).ceil() as usize).clamp(1, PROGRESS_PARTS),
        };
        parts.min(groups).max(1)
    }

    /// Resolves once the GPU has finished everything submitted so far.
    async fn work_done(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.gpu.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError(format!("GPU device lost or stalled: {e}")))?;
        rx.await.map_err(|_| GpuError("the GPU never finished (device lost?)".into()))
    }

    /// Reads back activations of the last pass. Every activation has a buffer of its own that
    /// only the next pass overwrites, so the explorer can fetch just the layers it shows.
    pub async fn read_async(&self, values: &[ValueId]) -> Result<HashMap<ValueId, Tensor>> {
        self.gpu.check_lost()?;
        let mut enc = self.gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read") });
        let reads = self.encode_reads(&mut enc, values)?;
        self.gpu.queue.submit([enc.finish()]);
        let staged: Vec<&wgpu::Buffer> = reads.iter().map(|(_, b, _)| b).collect();
        let bytes = self.map_all(&staged).await?;
        let mut out = HashMap::new();
        for ((v, _, shape), data) in reads.into_iter().zip(bytes) {
            out.insert(v, Tensor::new(shape, bytemuck::pod_collect_to_vec(&data)).map_err(|e| GpuError(e.to_string()))?);
        }
        Ok(out)
    }

    /// Where the last pass left `v`, if it is still there.
    pub(super) fn readable_slot(&self, v: ValueId) -> Result<Slot> {
        let slot = self.slots.get(v).copied().flatten().ok_or_else(|| GpuError(format!("value {v} has no buffer")))?;
        if !self.readable[v] {
            return Err(GpuError(format!("value {v}'s buffer is reused by a later layer (planned with Residency::Reuse)")));
        }
        Ok(slot)
    }

    fn encode_reads(&self, enc: &mut wgpu::CommandEncoder, values: &[ValueId]) -> Result<Vec<(ValueId, wgpu::Buffer, Vec<usize>)>> {
        let mut reads = Vec::new();
        for &v in values {
            let slot = self.readable_slot(v)?;
            let shape = &self.shapes[v];
            let n: usize = shape.iter().product();
            let plane: usize = shape.get(2..).map_or(1, |s| s.iter().product());
            let offset = (slot.channel_offset * plane * 4) as u64;
            let staging = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: (n.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            enc.copy_buffer_to_buffer(&self.buffers[slot.buffer], offset, &staging, 0, (n * 4) as u64);
            reads.push((v, staging, shape.clone()));
        }
        Ok(reads)
    }

    /// Maps submitted staging buffers and copies their bytes out.
    pub(super) async fn map_all(&self, staging: &[&wgpu::Buffer]) -> Result<Vec<Vec<u8>>> {
        let mut pending = Vec::new();
        for b in staging {
            let (tx, rx) = futures_channel::oneshot::channel();
            b.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
            pending.push(rx);
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError(format!("GPU device lost or stalled: {e}")))?;
        for rx in pending {
            rx.await
                .map_err(|_| GpuError("the GPU readback was dropped (device lost?)".into()))?
                .map_err(|e| GpuError(format!("GPU readback failed (device lost?): {e}")))?;
        }
        let mut out = Vec::new();
        for b in staging {
            let data = b.slice(..).get_mapped_range().map_err(|e| GpuError(format!("cannot read back: {e}")))?.to_vec();
            b.unmap();
            out.push(data);
        }
        Ok(out)
    }
}

pub(crate) fn web_time_now() -> f64 {
    use std::sync::OnceLock;
    static START: OnceLock<web_time::Instant> = OnceLock::new();
    START.get_or_init(web_time::Instant::now).elapsed().as_secs_f64() * 1e3
}
