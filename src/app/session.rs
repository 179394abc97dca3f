//! The viewer's state: the loaded avatar and its latest embeddings, the pose being shown,
//! the loaded sequence and timeline, lighting, display settings and user messages.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::prelude::Resource;

use super::worker::{EmbedWorker, Pending, Progress};
use crate::SH_DIM;
use crate::avatar::Avatar;
use crate::camera::Camera;
use crate::nn::Embeddings;
use crate::pose::{LoadedPoses, PoseFrame};
use crate::render_settings::RenderSettings;

/// A message for the user.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: String,
    pub is_error: bool,
    /// A folder the message is about (a saved file's), offered as "open folder".
    pub folder: Option<PathBuf>,
    /// When it was first drawn (`None` until the window shows it), so that notes given
    /// before the first frame still get their seconds on screen.
    pub shown_at: Option<Instant>,
}

/// How long a note stays on screen after it is first drawn (errors stay until dismissed).
pub const NOTE_SECONDS: Duration = Duration::from_secs(6);
/// Messages kept in the log.
const LOG_LEN: usize = 500;

/// Timeline of a loaded sequence.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub frame: usize,
    pub playing: bool,
    pub speed: f32,
    pub looping: bool,
    /// Seconds into the sequence.
    pub time: f32,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            frame: 0,
            playing: false,
            speed: 1.0,
            looping: true,
            time: 0.0,
        }
    }
}

/// Where the pose of the current frame comes from.
#[derive(Clone, Debug)]
pub struct LoadedSequence {
    pub poses: LoadedPoses,
    pub path: PathBuf,
    /// Embeddings precomputed for each frame ("bake"), filled in the background.
    pub cache: Arc<std::sync::Mutex<Vec<Option<Arc<Embeddings>>>>>,
    /// Frames changed in the viewer (their edits live in `poses`).
    pub edited: std::collections::BTreeSet<usize>,
}

/// The avatar in use.
pub struct LoadedAvatar {
    pub avatar: Arc<Avatar>,
    /// Changes whenever a different avatar is loaded.
    pub generation: u64,
    /// Where it came from (`None` for the embedded default).
    pub path: Option<PathBuf>,
}

/// Latest finished network outputs.
pub struct LatestEmbeddings {
    pub embeddings: Arc<Embeddings>,
    /// The pose they were computed for.
    pub frame: PoseFrame,
    /// Changes whenever new embeddings arrive (drives GPU uploads).
    pub generation: u64,
    pub millis: f64,
}

impl LatestEmbeddings {
    /// Whether real outputs of the networks are in (not the start-up placeholder).
    pub fn ready(&self) -> bool {
        self.generation > 0
    }
}

/// Stand-in embeddings of the right shapes while the first real ones are computed: no
/// displacement, grey albedo, every vertex on the wrist. Never drawn.
fn placeholder_embeddings(avatar: &Avatar) -> Embeddings {
    let v = avatar.num_vertices();
    let code = |n: &crate::nn::ConditionNet| n.shape().dims.last().copied().unwrap_or(0);
    let (cd, ca) = (code(&avatar.nets.delta), code(&avatar.nets.color));
    let mut lbs_weights = vec![0.0; v * crate::NUM_JOINTS];
    lbs_weights
        .iter_mut()
        .step_by(crate::NUM_JOINTS)
        .for_each(|w| *w = 1.0);
    Embeddings {
        num_vertices: v,
        delta: vec![0.0; v * 3],
        code_delta: vec![0.0; v * cd],
        albedo: vec![0.5; v * 3],
        code_albedo: vec![0.0; v * ca],
        lbs_weights,
        code_delta_dim: cd,
        code_albedo_dim: ca,
    }
}

/// Lighting: the SH vector in use and how the user edits it.
#[derive(Clone, Debug)]
pub struct Lighting {
    pub sh: [f32; SH_DIM],
    /// Edit the three colour channels together.
    pub linked: bool,
    /// The frame's own SH (from the pose file) overrides when present.
    pub use_frame_sh: bool,
    /// Azimuth / elevation of the light-direction control, radians.
    pub light_azimuth: f32,
    pub light_elevation: f32,
    pub light_strength: f32,
    /// Where the SH vector came from, highlighted in the panel.
    pub source: LightSource,
    /// An environment map lighting the hand (downsampled for projection), and its turn
    /// about the up axis, degrees.
    pub env: Option<(PathBuf, Arc<crate::envmap::EnvironmentMap>)>,
    pub env_rotation: f32,
    /// The environment as a display image (and its backdrop key), and whether it is shown
    /// behind the hand.
    pub env_display: Option<(u64, Arc<crate::image_io::Rgba8>)>,
    pub env_background: bool,
}

/// The origin of the SH lighting in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LightSource {
    /// The avatar's SH of one training view.
    Row(usize),
    Neutral,
    StudioKey,
    /// Edited with the direction pad, the strength or the coefficients.
    Custom,
    /// Projected from the environment map.
    Environment,
}

/// Background jobs with progress bars.
#[derive(Default)]
pub struct Jobs {
    pub precompute: Option<Progress>,
    /// A video or PNG export of what the viewport shows.
    pub export: Option<super::export::ExportJob>,
    /// A mesh export waiting for the details of the pose shown.
    pub export_mesh: Option<PathBuf>,
}

/// Everything the viewer shows.
#[derive(Resource)]
pub struct Session {
    pub avatar: LoadedAvatar,
    pub embeddings: LatestEmbeddings,
    /// The pose being shown (sliders edit it; the timeline sets it).
    pub pose: PoseFrame,
    pub sequence: Option<LoadedSequence>,
    pub timeline: Timeline,
    pub lighting: Lighting,
    pub settings: RenderSettings,
    pub wireframe: bool,
    /// Show a background grid behind the hand.
    pub grid: bool,
    pub show_ui: bool,
    pub show_stats: bool,
    pub show_help: bool,
    /// Use the pose file's (HaMeR) camera instead of the orbit camera.
    pub use_pose_camera: bool,
    /// How the GPU runs the neural renderer.
    pub neural_path: crate::gpu::NeuralPath,
    /// Messages on screen (toasts).
    pub messages: Vec<Message>,
    /// Every message of this run, oldest first (the Messages log).
    pub log: Vec<Message>,
    pub show_log: bool,
    pub recent: Vec<PathBuf>,
    /// Where screenshots, renders and exports go (absolute; remembered between runs).
    pub output_dir: PathBuf,
    pub worker: EmbedWorker,
    /// An avatar being loaded in the background.
    pub loading_avatar: Option<(PathBuf, Pending<AvatarLoadOutcome>)>,
    /// An XHand checkpoint waiting for the user to choose its MANO file.
    pub mano_prompt: Option<(PathBuf, crate::hand::Handedness)>,
    /// An environment map being read and downsampled in the background.
    pub loading_env: Option<(
        PathBuf,
        Pending<Result<crate::envmap::EnvironmentMap, String>>,
    )>,
    /// Source footage shown behind the hand in the HaMeR camera view.
    pub footage: super::footage::Footage,
    /// A pose file being loaded in the background.
    pub loading_poses: Option<(PathBuf, Pending<Result<PoseLoadOutcome, String>>)>,
    /// A pose file with several captures/hands waiting for the user's choice.
    pub pose_choice: Option<PoseChoice>,
    pub jobs: Jobs,
    /// Time of the last kinematics update, ms.
    pub kinematics_ms: f64,
    /// The camera used for the last frame.
    pub camera: Option<Camera>,
    avatar_counter: u64,
    embed_counter: u64,
    /// What ran the networks last (shown in the stats overlay).
    pub nets_engine: String,
    /// The engine the networks should run on (`--nets`, Display > Networks).
    pub nets_choice: crate::engine::NetsChoice,
    /// The arithmetic of the CPU networks and neural image (`--precision`, Display >
    /// Networks); every avatar shown gets it.
    precision: crate::nn::Precision,
    /// Run the networks again for the pose shown (the engine changed).
    rerun_nets: bool,
    /// The last pose the networks failed for.
    nets_failed: Option<PoseFrame>,
    requested: Option<PoseFrame>,
}

/// What a background avatar load gives: the avatar and its rest-pose embeddings, or an error.
pub type AvatarLoadOutcome = Result<AvatarLoaded, String>;

/// A finished avatar load.
pub enum AvatarLoaded {
    /// The avatar, its rest-pose embeddings, and the MANO file used if it was a checkpoint.
    Ready(Box<(Avatar, Embeddings)>, Option<PathBuf>),
    /// An XHand checkpoint of this hand with no MANO file known for it yet: ask the user.
    NeedsMano(crate::hand::Handedness),
}

/// What loading a pose file produced.
pub enum PoseLoadOutcome {
    Loaded(LoadedPoses),
    /// The file holds several captures or hands: ask the user.
    Choose(crate::pose::PoseFileSummary),
}

/// The picker shown when a pose file holds several captures or hands.
#[derive(Clone, Debug)]
pub struct PoseChoice {
    pub path: PathBuf,
    pub summary: crate::pose::PoseFileSummary,
    pub capture: Option<String>,
    pub hand: Option<crate::hand::Handedness>,
}

impl Session {
    /// A session showing `avatar`, with embeddings already computed for its rest pose, or
    /// `None` to compute them on the worker (nothing is drawn until they arrive:
    /// [`LatestEmbeddings::ready`]).
    pub fn new(avatar: Avatar, embeddings: Option<Embeddings>, path: Option<PathBuf>) -> Self {
        let sh = avatar.sh_row(0);
        let pose = PoseFrame::default();
        let ready = embeddings.is_some();
        let embeddings = embeddings.unwrap_or_else(|| placeholder_embeddings(&avatar));
        // A pose no request equals (NaN), so the first update asks the worker.
        let computed_for = if ready {
            pose.clone()
        } else {
            PoseFrame {
                pose: [f32::NAN; crate::POSE_DIM],
                ..PoseFrame::default()
            }
        };
        Self {
            avatar: LoadedAvatar {
                avatar: Arc::new(avatar),
                generation: 1,
                path,
            },
            embeddings: LatestEmbeddings {
                embeddings: Arc::new(embeddings),
                frame: computed_for,
                generation: ready as u64,
                millis: 0.0,
            },
            pose,
            sequence: None,
            timeline: Timeline::default(),
            lighting: Lighting {
                sh,
                linked: true,
                use_frame_sh: true,
                light_azimuth: 0.0,
                light_elevation: 0.5,
                light_strength: 0.4,
                source: LightSource::Row(0),
                env: None,
                env_rotation: 0.0,
                env_display: None,
                env_background: false,
            },
            settings: RenderSettings {
                background: [0.16, 0.17, 0.2],
                ..RenderSettings::default()
            },
            wireframe: false,
            grid: true,
            show_ui: true,
            show_stats: false,
            show_help: false,
            use_pose_camera: false,
            neural_path: crate::gpu::NeuralPath::default(),
            messages: Vec::new(),
            log: Vec::new(),
            show_log: false,
            recent: Vec::new(),
            output_dir: crate::user_config::output_dir(),
            worker: EmbedWorker::start(),
            loading_avatar: None,
            mano_prompt: None,
            loading_poses: None,
            loading_env: None,
            footage: Default::default(),
            pose_choice: None,
            jobs: Jobs::default(),
            kinematics_ms: 0.0,
            camera: None,
            avatar_counter: 1,
            embed_counter: 1,
            nets_engine: String::new(),
            nets_choice: crate::engine::NetsChoice::Auto,
            precision: crate::nn::Precision::F32,
            rerun_nets: false,
            nets_failed: None,
            requested: None,
        }
    }

    /// Shows an error (kept until dismissed).
    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        bevy::log::error!("{text}");
        self.push_message(text, true, None);
    }

    /// Shows a note that fades a few seconds after it is first drawn.
    pub fn info(&mut self, text: impl Into<String>) {
        let text = text.into();
        bevy::log::info!("{text}");
        self.push_message(text, false, None);
    }

    /// A note about a file written to `path`, with an action that opens its folder.
    pub fn info_with_folder(&mut self, text: impl Into<String>, path: &std::path::Path) {
        let text = text.into();
        bevy::log::info!("{text}");
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let folder = if abs.is_dir() {
            Some(abs)
        } else {
            abs.parent().map(std::path::Path::to_path_buf)
        };
        self.push_message(text, false, folder);
    }

    fn push_message(&mut self, text: String, is_error: bool, folder: Option<PathBuf>) {
        let m = Message {
            text,
            is_error,
            folder,
            shown_at: None,
        };
        if self.log.len() >= LOG_LEN {
            self.log.remove(0);
        }
        self.log.push(m.clone());
        self.messages.push(m);
    }

    /// Drops notes shown for [`NOTE_SECONDS`] by `now` (errors stay until dismissed).
    pub fn expire_messages(&mut self, now: Instant) {
        self.messages.retain(|m| {
            m.is_error
                || m.shown_at
                    .is_none_or(|t| now.duration_since(t) < NOTE_SECONDS)
        });
    }

    /// Starts or pauses playback; at the end of a sequence that does not loop, Play starts
    /// again from the first frame.
    pub fn toggle_playing(&mut self) {
        if self.frame_count() == 0 {
            return;
        }
        if !self.timeline.playing
            && !self.timeline.looping
            && self.timeline.frame + 1 >= self.frame_count()
        {
            self.go_to_frame(0);
        }
        self.timeline.playing = !self.timeline.playing;
    }

    /// Changes the shown pose (a slider, preset or reset). On a sequence frame the edit is
    /// kept in the sequence, so stepping away and back shows it, and the frame is marked
    /// edited; its precomputed embeddings are dropped.
    pub fn edit_pose(&mut self, edit: impl FnOnce(&mut PoseFrame)) {
        self.timeline.playing = false;
        edit(&mut self.pose);
        let f = self.timeline.frame;
        let pose = self.pose.clone();
        if let Some(seq) = self.sequence.as_mut()
            && let Some(frame) = seq.poses.sequence.frames.get_mut(f)
            && *frame != pose
        {
            *frame = pose;
            seq.edited.insert(f);
            if let Ok(mut c) = seq.cache.lock()
                && let Some(e) = c.get_mut(f)
            {
                *e = None;
            }
        }
    }

    /// Lights with the environment map (if one is loaded) turned by `env_rotation`.
    pub fn light_from_environment(&mut self) {
        if let Some((_, env)) = &self.lighting.env {
            let order = self.avatar.avatar.color_order;
            self.lighting.sh = env.to_sh((self.lighting.env_rotation as f64).to_radians(), order);
            self.lighting.source = LightSource::Environment;
            self.lighting.use_frame_sh = false;
        }
    }

    /// Whether the current sequence frame was edited in the viewer.
    pub fn frame_edited(&self) -> bool {
        self.sequence
            .as_ref()
            .is_some_and(|s| s.edited.contains(&self.timeline.frame))
    }

    /// Replaces the avatar (the pose and lighting carry over; lighting resets to the new
    /// avatar's first SH row). A precompute under way is cancelled and the cache starts
    /// empty (a new one: the old job can only write into the old); a flat-relative sequence
    /// (HaMeR) is re-expressed for the new avatar's mean pose, edits included.
    pub fn set_avatar(&mut self, avatar: Avatar, embeddings: Embeddings, path: Option<PathBuf>) {
        let mut avatar = avatar;
        if let Err(e) = avatar.set_precision(self.precision) {
            self.error(e);
        }
        self.avatar_counter += 1;
        let keep_env = self.lighting.source == LightSource::Environment;
        self.lighting.sh = avatar.sh_row(0);
        self.lighting.source = LightSource::Row(0);
        let old = self.avatar.avatar.clone();
        let (old_mean, old_hand) = (*old.template.skeleton.pose_mean(), old.hand);
        let (new_mean, new_hand) = (*avatar.template.skeleton.pose_mean(), avatar.hand);
        self.avatar = LoadedAvatar {
            avatar: Arc::new(avatar),
            generation: self.avatar_counter,
            path,
        };
        self.embed_counter += 1;
        self.embeddings = LatestEmbeddings {
            embeddings: Arc::new(embeddings),
            frame: PoseFrame::default(),
            generation: self.embed_counter,
            millis: 0.0,
        };
        self.requested = None;
        if let Some(p) = self.jobs.precompute.take() {
            p.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if let Some(seq) = self.sequence.as_mut() {
            let n = seq.poses.sequence.len();
            seq.cache = Arc::new(std::sync::Mutex::new(vec![None; n]));
            if seq.poses.format == crate::pose::PoseFormat::Hamer {
                let reconvert = |f: &mut PoseFrame| {
                    crate::pose::reconvert_for_mean(f, &old_mean, old_hand, &new_mean, new_hand)
                };
                seq.poses.sequence.frames.iter_mut().for_each(reconvert);
                reconvert(&mut self.pose);
            }
        }
        if keep_env {
            // The new avatar may store its colours in the other order.
            self.light_from_environment();
        }
    }

    /// Shows a loaded sequence from its first frame.
    pub fn set_sequence(&mut self, poses: LoadedPoses, path: PathBuf) {
        let n = poses.sequence.len();
        self.pose = poses.sequence.frames[0].clone();
        self.sequence = Some(LoadedSequence {
            poses,
            path,
            cache: Arc::new(std::sync::Mutex::new(vec![None; n])),
            edited: Default::default(),
        });
        self.timeline = Timeline {
            looping: self.timeline.looping,
            speed: self.timeline.speed,
            ..Timeline::default()
        };
    }

    /// Number of frames on the timeline (0 without a sequence).
    pub fn frame_count(&self) -> usize {
        self.sequence.as_ref().map_or(0, |s| s.poses.sequence.len())
    }

    /// Frames per second of the sequence.
    pub fn fps(&self) -> f32 {
        self.sequence
            .as_ref()
            .map_or(30.0, |s| s.poses.sequence.fps)
    }

    /// Jumps to `frame` of the sequence (clamped) and shows its pose.
    pub fn go_to_frame(&mut self, frame: usize) {
        let Some(seq) = &self.sequence else { return };
        let n = seq.poses.sequence.len();
        let f = frame.min(n - 1);
        self.timeline.frame = f;
        self.timeline.time = f as f32 / seq.poses.sequence.fps;
        self.pose = seq.poses.sequence.frames[f].clone();
    }

    /// Advances playback by `dt` seconds of wall-clock time (scaled by the speed), skipping
    /// frames when the machine cannot draw them all.
    pub fn advance(&mut self, dt: f32) {
        if !self.timeline.playing || self.sequence.is_none() {
            return;
        }
        let n = self.frame_count();
        let fps = self.fps();
        let duration = n as f32 / fps;
        let mut t = self.timeline.time + dt * self.timeline.speed;
        if t >= duration {
            if self.timeline.looping {
                t %= duration.max(1e-6);
            } else {
                t = duration - 0.5 / fps;
                self.timeline.playing = false;
            }
        }
        self.timeline.time = t;
        let f = ((t * fps) as usize).min(n - 1);
        if f != self.timeline.frame {
            self.timeline.frame = f;
            if let Some(seq) = &self.sequence {
                self.pose = seq.poses.sequence.frames[f].clone();
            }
        }
    }

    /// The SH lighting in effect for the current frame.
    pub fn current_sh(&self) -> [f32; SH_DIM] {
        match (self.lighting.use_frame_sh, self.pose.sh) {
            (true, Some(sh)) => sh,
            _ => self.lighting.sh,
        }
    }

    /// Whether `frame` is the pose shown, as far as the networks care (joints and hand).
    fn is_pose_shown(&self, frame: &PoseFrame) -> bool {
        frame.pose == self.pose.pose && frame.hand == self.pose.hand
    }

    /// Whether the networks failed for the pose shown (the error is in the messages).
    pub fn nets_failed_here(&self) -> bool {
        self.nets_failed
            .as_ref()
            .is_some_and(|f| self.is_pose_shown(f))
    }

    /// Whether the shown details (displacement, albedo, weights) belong to an earlier pose.
    /// (A pose the networks failed for counts as done: its error is shown, the earlier
    /// details stay, and the window stops waiting for it.)
    pub fn details_stale(&self) -> bool {
        !self.is_pose_shown(&self.embeddings.frame) && !self.nets_failed_here()
    }

    /// Requests fresh embeddings when the pose changed, or takes them from the sequence
    /// cache; collects finished results. Call once per frame.
    pub fn update_embeddings(&mut self) {
        for r in self.worker.poll() {
            if r.avatar_generation != self.avatar.generation {
                continue;
            }
            self.nets_engine = r.engine;
            if let Some(e) = r.engine_error {
                self.error(format!(
                    "{e}; the networks run on {} instead",
                    self.nets_engine
                ));
            }
            match r.embeddings {
                Ok(e) => {
                    self.embed_counter += 1;
                    self.embeddings = LatestEmbeddings {
                        embeddings: e,
                        frame: r.frame,
                        generation: self.embed_counter,
                        millis: r.millis,
                    };
                }
                Err(e) => {
                    self.error(format!("the networks failed: {e}"));
                    self.nets_failed = Some(r.frame);
                }
            }
        }
        let rerun = std::mem::take(&mut self.rerun_nets);
        if !self.details_stale() && !rerun {
            return;
        }
        if let Some(cached) = self.cached_embeddings().filter(|_| !rerun) {
            self.embed_counter += 1;
            self.embeddings = LatestEmbeddings {
                embeddings: cached,
                frame: self.pose.clone(),
                generation: self.embed_counter,
                millis: 0.0,
            };
            return;
        }
        let already = self
            .requested
            .as_ref()
            .is_some_and(|r| self.is_pose_shown(r));
        if !already || rerun {
            self.worker.request(
                self.avatar.avatar.clone(),
                self.avatar.generation,
                self.pose.clone(),
                self.nets_choice,
            );
            self.requested = Some(self.pose.clone());
        }
    }

    fn cached_embeddings(&self) -> Option<Arc<Embeddings>> {
        let seq = self.sequence.as_ref()?;
        let frame = seq.poses.sequence.frames.get(self.timeline.frame)?;
        if frame.pose != self.pose.pose {
            return None;
        }
        let cached = seq.cache.lock().ok()?.get(self.timeline.frame)?.clone()?;
        // Never another avatar's outputs (a stale job's), whatever wrote them.
        (cached.num_vertices == self.avatar.avatar.num_vertices()).then_some(cached)
    }

    /// Runs the networks on `choice` from now on, starting with the pose shown.
    pub fn set_nets_choice(&mut self, choice: crate::engine::NetsChoice) {
        if self.nets_choice != choice {
            self.nets_choice = choice;
            self.rerun_nets = true;
        }
    }

    /// The arithmetic of the CPU networks and neural image.
    pub fn precision(&self) -> crate::nn::Precision {
        self.precision
    }

    /// Chooses the arithmetic of the CPU networks and neural image for this avatar and the
    /// next ones, and recomputes the pose shown; refused (with a message) where this CPU
    /// cannot run it.
    pub fn set_precision(&mut self, precision: crate::nn::Precision) {
        if precision == self.precision {
            return;
        }
        let mut avatar = (*self.avatar.avatar).clone();
        if let Err(e) = avatar.set_precision(precision) {
            self.error(e);
            return;
        }
        self.precision = precision;
        self.avatar.avatar = Arc::new(avatar);
        self.rerun_nets = true;
    }

    /// Whether nothing is loading or computing (used by scripted runs).
    pub fn is_idle(&self) -> bool {
        !self.details_stale()
            && !self.worker.is_busy()
            && self.loading_avatar.is_none()
            && self.loading_poses.is_none()
            && self.loading_env.is_none()
            && !self.footage.is_reading()
            && !self.rerun_nets
            && self.jobs.export_mesh.is_none()
    }

    /// Remembers a file in the recent list (most recent first, 8 entries), saved to
    /// `$XDG_CONFIG_HOME/xhand/recent.json` (or `~/.config/...`) for the next run.
    pub fn remember(&mut self, path: PathBuf) {
        let path = path.canonicalize().unwrap_or(path);
        self.recent.retain(|p| p != &path);
        self.recent.insert(0, path);
        self.recent.truncate(8);
        let Some(file) = recent_file() else { return };
        let written = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(anyhow::Error::from)
            .and_then(|_| {
                let text = serde_json::to_string_pretty(&self.recent)?;
                crate::image_io::write_atomically(&file, text.as_bytes())
            });
        if let Err(e) = written {
            self.error(format!(
                "could not save the recent-files list to {}: {e:#}",
                file.display()
            ));
        }
    }

    /// Loads the recent-files list saved by an earlier run (missing or unreadable: empty).
    pub fn load_recent(&mut self) {
        self.recent = recent_file()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| serde_json::from_str::<Vec<PathBuf>>(&t).ok())
            .unwrap_or_default();
        self.recent.truncate(8);
    }
}

/// Where the recent-files list lives.
fn recent_file() -> Option<PathBuf> {
    crate::user_config::config_dir().map(|d| d.join("recent.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pose::{PoseFormat, PoseSequence};

    fn session_with_sequence(n: usize) -> Session {
        let device = candle_core::Device::Cpu;
        let avatar = crate::synthetic::SyntheticSpec::test_avatar()
            .avatar(&device)
            .unwrap();
        let emb = avatar.embed(&PoseFrame::default()).unwrap();
        let mut s = Session::new(avatar, Some(emb), None);
        let frames = (0..n)
            .map(|i| PoseFrame {
                pose: [i as f32 * 0.01; crate::POSE_DIM],
                ..PoseFrame::default()
            })
            .collect();
        let poses = LoadedPoses {
            sequence: PoseSequence {
                fps: 30.0,
                frames,
                labels: None,
                source: None,
            },
            format: PoseFormat::Xhand,
            warnings: Vec::new(),
            cameras: None,
            file_frames: None,
        };
        s.set_sequence(poses, "seq.json".into());
        s
    }

    #[test]
    fn the_first_embeddings_come_from_the_worker() {
        let device = candle_core::Device::Cpu;
        let avatar = crate::synthetic::SyntheticSpec::test_avatar()
            .avatar(&device)
            .unwrap();
        let expected = avatar.embed(&PoseFrame::default()).unwrap();
        let mut s = Session::new(avatar, None, None);
        assert!(!s.embeddings.ready() && s.details_stale() && !s.is_idle());
        let placeholder = &s.embeddings.embeddings;
        assert_eq!(placeholder.lbs_weights.len(), expected.lbs_weights.len());
        assert_eq!(placeholder.code_delta.len(), expected.code_delta.len());
        let start = std::time::Instant::now();
        while !s.embeddings.ready() {
            assert!(start.elapsed().as_secs() < 60, "the worker never answered");
            s.update_embeddings();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!s.details_stale());
        assert_eq!(s.embeddings.embeddings.delta, expected.delta);
    }

    #[test]
    fn playback_follows_wall_clock_time_and_drops_frames() {
        let mut s = session_with_sequence(100);
        s.toggle_playing();
        // One slow frame of half a second moves 15 frames at 30 fps, not one.
        s.advance(0.5);
        assert_eq!(s.timeline.frame, 15);
        s.timeline.speed = 2.0;
        s.advance(0.5);
        assert_eq!(s.timeline.frame, 45);
        assert_eq!(
            s.pose,
            s.sequence.as_ref().unwrap().poses.sequence.frames[45]
        );
    }

    #[test]
    fn play_at_the_end_of_a_sequence_that_does_not_loop_starts_again() {
        let mut s = session_with_sequence(10);
        s.timeline.looping = false;
        s.toggle_playing();
        s.advance(5.0);
        assert!(!s.timeline.playing, "stops at the end");
        assert_eq!(s.timeline.frame, 9);
        s.toggle_playing();
        assert!(s.timeline.playing);
        assert_eq!(s.timeline.frame, 0, "plays again from the start");
        // Looping sequences keep their place.
        let mut s = session_with_sequence(10);
        s.go_to_frame(9);
        s.toggle_playing();
        assert_eq!(s.timeline.frame, 9);
    }

    #[test]
    fn edits_on_a_sequence_frame_are_kept_when_stepping() {
        let mut s = session_with_sequence(5);
        s.go_to_frame(2);
        if let Ok(mut c) = s.sequence.as_ref().unwrap().cache.lock() {
            c[2] = Some(s.embeddings.embeddings.clone());
        }
        s.edit_pose(|p| p.pose[5] = 0.7);
        assert!(s.frame_edited());
        s.go_to_frame(3);
        assert!(!s.frame_edited());
        assert_eq!(s.pose.pose[5], 0.03);
        s.go_to_frame(2);
        assert_eq!(s.pose.pose[5], 0.7, "the edit survives stepping");
        let seq = s.sequence.as_ref().unwrap();
        assert_eq!(seq.edited.iter().copied().collect::<Vec<_>>(), vec![2]);
        assert!(
            seq.cache.lock().unwrap()[2].is_none(),
            "stale cache dropped"
        );
        // An edit that changes nothing marks nothing.
        s.go_to_frame(4);
        s.edit_pose(|_| {});
        assert!(!s.frame_edited());
    }

    #[test]
    fn a_new_avatar_cancels_precompute_and_never_reads_the_old_cache() {
        let mut s = session_with_sequence(4);
        crate::app::output::start_precompute(&mut s);
        let job = s.jobs.precompute.clone().unwrap();
        let old_cache = s.sequence.as_ref().unwrap().cache.clone();
        let device = candle_core::Device::Cpu;
        let other = crate::synthetic::SyntheticSpec {
            mesh: crate::synthetic::SyntheticMesh::ToyHand {
                around: 10,
                rings_per_bone: 3,
            },
            seed: 99,
            ..crate::synthetic::SyntheticSpec::test_avatar()
        }
        .avatar(&device)
        .unwrap();
        let emb = other.embed(&PoseFrame::default()).unwrap();
        s.set_avatar(other, emb, None);
        assert!(
            job.cancel.load(std::sync::atomic::Ordering::SeqCst),
            "job cancelled"
        );
        assert!(s.jobs.precompute.is_none());
        let cache = s.sequence.as_ref().unwrap().cache.clone();
        assert!(!Arc::ptr_eq(&cache, &old_cache), "a fresh cache");
        // Even a stray entry of the old avatar is never used.
        let stale = old_cache.lock().unwrap()[0]
            .clone()
            .unwrap_or_else(|| Arc::new(s.embeddings.embeddings.as_ref().clone()));
        let stale = Arc::new(Embeddings {
            num_vertices: stale.num_vertices + 1,
            ..(*stale).clone()
        });
        cache.lock().unwrap()[0] = Some(stale);
        s.go_to_frame(0);
        assert!(s.cached_embeddings().is_none());
    }

    #[test]
    fn notes_last_from_when_they_are_first_shown_and_the_log_keeps_all() {
        let mut s = session_with_sequence(1);
        s.info("shown mirrored");
        s.error("broken file");
        let start = Instant::now();
        s.expire_messages(start + Duration::from_secs(60));
        assert_eq!(s.messages.len(), 2, "not shown yet: kept");
        s.messages.iter_mut().for_each(|m| m.shown_at = Some(start));
        s.expire_messages(start + NOTE_SECONDS - Duration::from_millis(1));
        assert_eq!(s.messages.len(), 2);
        s.expire_messages(start + NOTE_SECONDS);
        assert_eq!(s.messages.len(), 1);
        assert!(s.messages[0].is_error, "errors stay until dismissed");
        assert_eq!(s.log.len(), 2, "the log keeps every message");
    }
}
