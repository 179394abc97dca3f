//! GPU timestamps around each pass (when the device has `TIMESTAMP_QUERY`), read back a
//! frame or two later without ever blocking: per-stage GPU times for the stats overlay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Passes with a begin/end timestamp pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Skinning = 0,
    Raster = 1,
    Shading = 2,
    Composite = 3,
    /// The embedding networks when they run in the frame (an empty pass otherwise).
    Nets = 4,
}

const STAGES: u32 = 5;
const RING: usize = 3;

/// Milliseconds per stage from the newest finished frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    pub skinning_ms: f64,
    pub raster_ms: f64,
    pub shading_ms: f64,
    pub composite_ms: f64,
    /// `None` when the networks did not run in the frame.
    pub nets_ms: Option<f64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    /// Copied from a frame, in which the networks ran or not.
    Copied {
        nets: bool,
    },
    Mapping,
}

/// Timestamp queries and a ring of readback buffers.
pub struct GpuTimer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: Vec<(wgpu::Buffer, Arc<Mutex<Slot>>)>,
    period_ns: f64,
    latest: Arc<Mutex<Option<StageTimes>>>,
    used: [AtomicBool; STAGES as usize],
    next: std::sync::atomic::AtomicUsize,
}

impl GpuTimer {
    /// A timer, or `None` when the device cannot write timestamps.
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue) -> Option<Self> {
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return None;
        }
        let size = (STAGES * 2) as u64 * 8;
        let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("xhand timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: STAGES * 2,
        });
        let resolve = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("xhand timestamp resolve"),
            size,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = (0..RING)
            .map(|_| {
                let b = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("xhand timestamp readback"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                (b, Arc::new(Mutex::new(Slot::Free)))
            })
            .collect();
        Some(Self {
            queries,
            resolve,
            readback,
            period_ns: queue.get_timestamp_period() as f64,
            latest: Arc::default(),
            used: Default::default(),
            next: Default::default(),
        })
    }

    /// Timestamp writes for a compute pass of `stage`.
    pub fn compute(&self, stage: Stage) -> wgpu::ComputePassTimestampWrites<'_> {
        self.used[stage as usize].store(true, Ordering::Relaxed);
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(stage as u32 * 2),
            end_of_pass_write_index: Some(stage as u32 * 2 + 1),
        }
    }

    /// Timestamp writes for a render pass of `stage`.
    pub fn render(&self, stage: Stage) -> wgpu::RenderPassTimestampWrites<'_> {
        self.used[stage as usize].store(true, Ordering::Relaxed);
        wgpu::RenderPassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(stage as u32 * 2),
            end_of_pass_write_index: Some(stage as u32 * 2 + 1),
        }
    }

    /// Resolves this frame's queries into a free readback buffer (call after the last pass).
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        let nets = Stage::Nets as usize;
        let complete = self.used[..nets].iter().all(|u| u.load(Ordering::Relaxed));
        let nets_ran = self.used[nets].load(Ordering::Relaxed);
        // The next frame starts afresh, resolved or not.
        self.used
            .iter()
            .for_each(|u| u.store(false, Ordering::Relaxed));
        if !complete {
            return;
        }
        if !nets_ran {
            // Every query is written before it is resolved: an empty pass for the networks.
            drop(encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("networks not in this frame"),
                timestamp_writes: Some(self.compute(Stage::Nets)),
            }));
            self.used[nets].store(false, Ordering::Relaxed);
        }
        let next = self.next.load(Ordering::Relaxed);
        let Some(i) = (0..RING)
            .map(|k| (next + k) % RING)
            .find(|&k| self.readback[k].1.lock().is_ok_and(|s| *s == Slot::Free))
        else {
            return;
        };
        encoder.resolve_query_set(&self.queries, 0..STAGES * 2, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(
            &self.resolve,
            0,
            &self.readback[i].0,
            0,
            self.resolve.size(),
        );
        if let Ok(mut s) = self.readback[i].1.lock() {
            *s = Slot::Copied { nets: nets_ran };
        }
        self.next.store((i + 1) % RING, Ordering::Relaxed);
    }

    /// Starts mapping buffers copied in earlier frames (call before encoding a new frame;
    /// their commands have been submitted by then). Results arrive when the device is polled.
    pub fn collect(&self) {
        for (buffer, slot) in &self.readback {
            let Some(nets) = slot.lock().ok().and_then(|s| match *s {
                Slot::Copied { nets } => Some(nets),
                _ => None,
            }) else {
                continue;
            };
            if let Ok(mut s) = slot.lock() {
                *s = Slot::Mapping;
            }
            let (b, st, latest, period) = (
                buffer.clone(),
                slot.clone(),
                self.latest.clone(),
                self.period_ns,
            );
            buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
                if r.is_ok() {
                    let t: Vec<u64> =
                        bytemuck::cast_slice(&b.slice(..).get_mapped_range()).to_vec();
                    let ms = |k: usize| t[2 * k + 1].saturating_sub(t[2 * k]) as f64 * period / 1e6;
                    if let Ok(mut l) = latest.lock() {
                        *l = Some(StageTimes {
                            skinning_ms: ms(0),
                            raster_ms: ms(1),
                            shading_ms: ms(2),
                            composite_ms: ms(3),
                            nets_ms: nets.then(|| ms(4)),
                        });
                    }
                    b.unmap();
                }
                if let Ok(mut s) = st.lock() {
                    *s = Slot::Free;
                }
            });
        }
    }

    /// The newest finished per-stage times.
    pub fn latest(&self) -> Option<StageTimes> {
        self.latest.lock().ok().and_then(|l| *l)
    }
}
