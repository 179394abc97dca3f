//! Copying GPU results back to the host (tests, headless rendering).

use super::GpuError;
use crate::image_io::Rgba8;

fn map_and_read(device: &wgpu::Device, buffer: &wgpu::Buffer) -> Result<Vec<u8>, GpuError> {
    let slice = buffer.slice(..);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    rx.recv()
        .map_err(|e| GpuError::Readback(e.to_string()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let data = slice.get_mapped_range().to_vec();
    buffer.unmap();
    Ok(data)
}

/// Reads a whole storage buffer of f32 values.
pub fn read_buffer_f32(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    src: &wgpu::Buffer,
) -> Result<Vec<f32>, GpuError> {
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("xhand readback"),
        size: src.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    enc.copy_buffer_to_buffer(src, 0, &staging, 0, src.size());
    queue.submit([enc.finish()]);
    let bytes = map_and_read(device, &staging)?;
    Ok(bytemuck::cast_slice::<u8, f32>(&bytes).to_vec())
}

/// Reads an `Rgba8Unorm` texture into an image, alpha as stored (the shaded image's alpha is
/// the hand's coverage: 0 on the background).
pub fn read_texture_rgba8(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    tex: &wgpu::Texture,
) -> Result<Rgba8, GpuError> {
    let (w, h) = (tex.width(), tex.height());
    let row =
        (w * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("xhand image readback"),
        size: (row * h) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    enc.copy_texture_to_buffer(
        tex.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &staging,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(row),
                rows_per_image: Some(h),
            },
        },
        wgpu::Extent3d {
            width: w,
            height: h,
            depth_or_array_layers: 1,
        },
    );
    queue.submit([enc.finish()]);
    let bytes = map_and_read(device, &staging)?;
    let mut pixels = Vec::with_capacity((w * h) as usize);
    for r in 0..h as usize {
        let line = &bytes[r * row as usize..r * row as usize + w as usize * 4];
        pixels.extend(line.chunks_exact(4).map(|p| [p[0], p[1], p[2], p[3]]));
    }
    Ok(Rgba8 {
        width: w,
        height: h,
        pixels,
    })
}
