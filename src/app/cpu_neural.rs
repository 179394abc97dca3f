//! Neural shading on a machine whose only GPU adapter is a software one (Mesa's lavapipe):
//! there the per-pixel MLP is far faster in candle on the CPU than in a shader, so the GPU
//! draws SH shading while the view moves, and once it is still for a moment the CPU
//! reference renderer produces the neural image on a thread, which then replaces it.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy::render::renderer::RenderAdapterInfo;

use super::display::ViewSettings;
use super::lighting::Lighting;
use super::orbit::Orbit;
use super::session::Session;
use super::worker::Pending;
use crate::cpu_render::{GridPlane, grid_pixel};
use crate::frame::PosedFrame;
use crate::render_settings::ShadingMode;

/// How long the view must be still before the CPU renders.
const SETTLE: Duration = Duration::from_millis(150);

/// A CPU-rendered image for the view it was made for.
#[derive(Clone, Debug)]
pub struct CpuImage {
    pub key: u64,
    pub width: u32,
    pub height: u32,
    /// RGBA8, alpha 0 where there is no hand.
    pub rgba: Arc<Vec<u8>>,
    /// Time the CPU took, ms.
    pub millis: f64,
}

/// State of the CPU neural shading.
#[derive(Resource, Default)]
pub struct CpuNeural {
    /// Whether it is in use (software adapter, neural mode, avatar with a renderer).
    pub active: bool,
    pub ready: Option<CpuImage>,
    pending: Option<(u64, Pending<Result<CpuImage, String>>)>,
    last_key: u64,
    changed_at: Option<Instant>,
    pub last_millis: f64,
}

impl CpuNeural {
    /// The image to show for `key`, if it is ready.
    pub fn image_for(&self, key: u64) -> Option<&CpuImage> {
        self.ready.as_ref().filter(|i| i.key == key)
    }

    /// Whether a render for the current view is running or about to.
    pub fn is_updating(&self) -> bool {
        self.active && self.ready.as_ref().is_none_or(|r| r.key != self.last_key)
    }
}

/// The grid drawn behind the hands: the orbit camera's, when the grid is on and no source
/// footage or environment is shown instead.
pub fn shown_grid(
    view: &ViewSettings,
    session: &Session,
    lighting: &Lighting,
    orbit: &Orbit,
) -> Option<GridPlane> {
    (view.grid && super::footage::backdrop(session, lighting).is_none())
        .then_some(orbit.grid)
        .flatten()
}

/// A hash of everything the neural image depends on (`grid`: the one shown).
pub fn view_key(
    view: &ViewSettings,
    session: &Session,
    lighting: &Lighting,
    grid: Option<GridPlane>,
) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let floats = |h: &mut std::collections::hash_map::DefaultHasher, v: &[f32]| {
        v.iter().for_each(|x| x.to_bits().hash(h))
    };
    for (slot, hand, avatar) in session.drawn_hands() {
        slot.hash(&mut h);
        avatar.generation.hash(&mut h);
        hand.embeddings.generation.hash(&mut h);
        floats(&mut h, &hand.pose.pose);
        floats(&mut h, &hand.pose.trans);
        floats(&mut h, &[hand.pose.scale]);
        hand.pose.hand.hash(&mut h);
    }
    floats(&mut h, &lighting.current_sh(session.frame_sh()));
    floats(&mut h, &view.settings.background);
    floats(&mut h, &grid.map_or([0.0; 2], |g| [g.y, g.spacing]));
    grid.is_some().hash(&mut h);
    view.wireframe.hash(&mut h);
    if let Some(c) = &session.camera {
        (c.width, c.height).hash(&mut h);
        for v in c
            .rotation
            .iter()
            .chain(c.center.iter())
            .chain([c.fx, c.fy, c.cx, c.cy].iter())
        {
            v.to_bits().hash(&mut h);
        }
    }
    h.finish()
}

/// Neural shading on the CPU where the adapter is a software rasteriser.
pub struct CpuNeuralPlugin;

impl Plugin for CpuNeuralPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<CpuNeural>()
            .add_systems(Update, update_cpu_neural.in_set(super::ViewerSet::Output));
    }
}

/// Starts CPU renders when the view settles and collects finished ones.
pub fn update_cpu_neural(
    mut state: ResMut<CpuNeural>,
    session: Res<Session>,
    (view, lighting): (Res<ViewSettings>, Res<Lighting>),
    orbit: Res<Orbit>,
    adapter: Option<Res<RenderAdapterInfo>>,
) {
    let software = adapter.is_some_and(|a| a.device_type == wgpu::DeviceType::Cpu);
    let mut drawn = session.drawn_hands().peekable();
    state.active = software
        && drawn.peek().is_some()
        && view.settings.mode == ShadingMode::Neural
        && drawn.all(|(_, _, a)| a.avatar.renderer.is_some());
    if !state.active {
        return;
    }
    let grid = shown_grid(&view, &session, &lighting, &orbit);
    let key = view_key(&view, &session, &lighting, grid);
    if key != state.last_key {
        state.last_key = key;
        state.changed_at = Some(Instant::now());
    }
    if let Some((k, pending)) = state.pending.take() {
        match pending.poll() {
            None => state.pending = Some((k, pending)),
            Some(Ok(Ok(img))) => {
                state.last_millis = img.millis;
                if img.key == state.last_key {
                    state.ready = Some(img);
                }
            }
            Some(Ok(Err(e))) | Some(Err(e)) => bevy::log::warn!("CPU neural shading failed: {e}"),
        }
    }
    let settled = state.changed_at.is_none_or(|t| t.elapsed() >= SETTLE);
    let have = state.ready.as_ref().is_some_and(|r| r.key == key);
    let running = state.pending.as_ref().is_some_and(|(k, _)| *k == key);
    if have || running || !settled || session.details_stale() || state.pending.is_some() {
        return;
    }
    let Some(camera) = session.camera.clone() else {
        return;
    };
    let hands: Vec<_> = session
        .drawn_hands()
        .map(|(_, h, a)| {
            (
                a.avatar.clone(),
                h.embeddings.embeddings.clone(),
                h.pose.clone(),
            )
        })
        .collect();
    let sh = lighting.current_sh(session.frame_sh());
    let lit_order = session.avatar.avatar.color_order;
    let settings = view.settings;
    let wireframe = view.wireframe;
    let started = Instant::now();
    let pending = Pending::spawn("xhand-cpu-neural", move || {
        let frames: Vec<PosedFrame> = hands
            .iter()
            .map(|(avatar, embeddings, pose)| PosedFrame {
                geometry: avatar.pose_geometry(embeddings, pose),
                embeddings: (**embeddings).clone(),
                sh: lit_order.sh_to(avatar.color_order, sh),
            })
            .collect();
        let drawn: Vec<_> = hands
            .iter()
            .map(|(a, _, _)| a.as_ref())
            .zip(&frames)
            .collect();
        let rgba = view_image(&drawn, &camera, &settings, wireframe, grid)?;
        let millis = started.elapsed().as_secs_f64() * 1e3;
        Ok(CpuImage {
            key,
            width: camera.width,
            height: camera.height,
            rgba: Arc::new(rgba),
            millis,
        })
    });
    state.pending = Some((key, pending));
}

/// The CPU reference renderer's image of `hands` as the viewport draws them: the wireframe
/// over the hands, the grid behind them (opaque), elsewhere transparent; RGBA bytes.
pub fn view_image(
    hands: &[(&crate::avatar::Avatar, &PosedFrame)],
    camera: &crate::camera::Camera,
    settings: &crate::render_settings::RenderSettings,
    wireframe: bool,
    grid: Option<GridPlane>,
) -> Result<Vec<u8>, String> {
    let mut out =
        crate::cpu_render::render_hands(hands, camera, settings).map_err(|e| e.to_string())?;
    if wireframe {
        // The same lines the GPU shading draws in the other modes, over the scene's
        // triangle ids (each hand's after the faces of the hands before it).
        let mut vertices = Vec::new();
        let mut faces = Vec::new();
        for (avatar, frame) in hands {
            let base = vertices.len() as u32;
            vertices.extend_from_slice(&frame.geometry.vertices);
            faces.extend(avatar.template.faces.iter().map(|f| f.map(|v| v + base)));
        }
        crate::wireframe::overlay(
            &mut out.image.pixels,
            &out.visibility,
            camera,
            &vertices,
            &faces,
        );
    }
    // The hand, and the grid the GPU pass would draw behind it (opaque, as there).
    let width = camera.width.max(1);
    let mut rgba = Vec::with_capacity(out.image.pixels.len() * 4);
    for (i, (p, &hand)) in out.image.pixels.iter().zip(&out.mask).enumerate() {
        let grid_color = grid.filter(|_| !hand).and_then(|grid| {
            let (col, row) = (i as u32 % width, i as u32 / width);
            grid_pixel(camera, grid, settings.background, col, row)
        });
        match grid_color {
            Some(c) => {
                rgba.extend(c.map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8));
                rgba.push(255);
            }
            None => rgba.extend([p[0], p[1], p[2], if hand { 255 } else { 0 }]),
        }
    }
    Ok(rgba)
}
