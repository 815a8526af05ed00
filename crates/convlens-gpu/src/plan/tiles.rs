//! Feature-map tiles drawn on the device (`viz.wgsl`): per-channel stats, the shared range,
//! block means at display size and the colour ramp, so only tile pixels and 3 floats per
//! channel come back. `convlens_core::viz::tiles_reference` is the reference.

use bytemuck::{Pod, Zeroable};
use convlens_core::graph::ValueId;
use convlens_core::viz::Tiles;

use super::pipelines::Kernel;
use super::planner::{buffer_with, groups_1d};
use super::GpuModel;
use crate::{GpuError, Result};

pub(crate) const CHANNEL_STATS: Kernel = Kernel { file: "viz.wgsl", entry: "channel_stats" };
pub(crate) const SHARED_RANGE: Kernel = Kernel { file: "viz.wgsl", entry: "shared_range" };
pub(crate) const COLORIZE: Kernel = Kernel { file: "viz.wgsl", entry: "colorize" };

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Default)]
struct VizParams {
    channels: u32, h: u32, w: u32, offset: u32,
    factor: u32, tile_h: u32, tile_w: u32, shared: u32,
}

impl GpuModel {
    /// The last pass's activation `value` as colour-mapped tiles at most `max_side` pixels a
    /// side, computed on the device (stats, shared range, block means, colour ramp): only the
    /// tile pixels and 3 floats per channel come back. Same result as `viz::tiles_reference` on the CPU.
    pub async fn tiles_async(&self, value: ValueId, max_side: usize, shared: bool) -> Result<Tiles> {
        let dev = &self.gpu.device;
        self.gpu.check_lost()?;
        let slot = self.readable_slot(value)?;
        let (c, h, w) = match self.shapes[value][..] {
            [_, c, h, w] => (c, h, w),
            [_, c] => (c, 1, 1),
            _ => return Err(GpuError(format!("value {value} of shape {:?} is not a feature map", self.shapes[value]))),
        };
        if c > 65535 {
            return Err(GpuError(format!("{c} channels: more than one workgroup row of tiles")));
        }
        let (factor, th, tw) = convlens_core::viz::tile_geometry(h, w, max_side);
        let params = VizParams {
            channels: c as u32, h: h as u32, w: w as u32, offset: (slot.channel_offset * h * w) as u32,
            factor: factor as u32, tile_h: th as u32, tile_w: tw as u32, shared: shared as u32,
        };
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let stats = dev.create_buffer(&wgpu::BufferDescriptor { label: Some("tile stats"), size: ((c * 3 + 2) * 4) as u64, usage, mapped_at_creation: false });
        let pixels = c * th * tw;
        let rgba = dev.create_buffer(&wgpu::BufferDescriptor { label: Some("tiles"), size: (pixels.max(1) * 4) as u64, usage, mapped_at_creation: false });
        let uniform = buffer_with(&self.gpu, "tiles", bytemuck::bytes_of(&params), wgpu::BufferUsages::UNIFORM);
        let x = &self.buffers[slot.buffer];
        // Auto layouts hold only the bindings each entry point uses.
        let bind = |kernel: Kernel, with: &[(u32, &wgpu::Buffer)]| {
            let entries: Vec<wgpu::BindGroupEntry> = with.iter().map(|&(b, buf)| wgpu::BindGroupEntry { binding: b, resource: buf.as_entire_binding() }).collect();
            let layout = self.pipeline(kernel).get_bind_group_layout(0);
            dev.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(kernel.entry), layout: &layout, entries: &entries })
        };
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("tiles") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("tiles"), timestamp_writes: None });
            let g = bind(CHANNEL_STATS, &[(0, x), (1, &stats), (3, &uniform)]);
            pass.set_pipeline(self.pipeline(CHANNEL_STATS));
            pass.set_bind_group(0, &g, &[]);
            pass.dispatch_workgroups(c as u32, 1, 1);
            let g = bind(SHARED_RANGE, &[(1, &stats), (3, &uniform)]);
            pass.set_pipeline(self.pipeline(SHARED_RANGE));
            pass.set_bind_group(0, &g, &[]);
            pass.dispatch_workgroups(1, 1, 1);
            let g = bind(COLORIZE, &[(0, x), (1, &stats), (2, &rgba), (3, &uniform)]);
            pass.set_pipeline(self.pipeline(COLORIZE));
            pass.set_bind_group(0, &g, &[]);
            let groups = groups_1d(pixels);
            pass.dispatch_workgroups(groups.0, groups.1, 1);
        }
        let staging: Vec<wgpu::Buffer> = [(&stats, (c * 3 + 2) * 4), (&rgba, pixels * 4)]
            .iter()
            .map(|&(src, n)| {
                let b = dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tiles readback"),
                    size: n.max(4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                enc.copy_buffer_to_buffer(src, 0, &b, 0, n as u64);
                b
            })
            .collect();
        self.gpu.queue.submit([enc.finish()]);
        if let Some(e) = scope.pop().await {
            return Err(GpuError(format!("the GPU rejected the tile pass: {e}")));
        }
        let mut bytes = self.map_all(&staging.iter().collect::<Vec<_>>()).await?;
        let mut rgba = bytes.pop().unwrap_or_default();
        rgba.truncate(pixels * 4);
        let s: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes.pop().unwrap_or_default());
        Ok(Tiles {
            channels: c,
            tile_h: th,
            tile_w: tw,
            factor,
            rgba,
            stats: (0..c).map(|i| [s[3 * i], s[3 * i + 1], s[3 * i + 2]]).collect(),
            shared: shared.then(|| (s[3 * c], s[3 * c + 1])),
        })
    }
}
