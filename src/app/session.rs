//! The scene the viewer shows: the loaded avatars, the hands shown and their latest
//! embeddings, the loaded sequence and timeline, background loads and jobs. (Lighting,
//! display settings, open panels and messages are resources of their own:
//! `super::lighting`, `super::display`, `super::messages`.)

use std::path::PathBuf;
use std::sync::Arc;

use bevy::prelude::Resource;

use super::worker::{EmbedWorker, Pending, Progress};
use crate::SH_DIM;
use crate::avatar::Avatar;
use crate::camera::Camera;
use crate::hand::Handedness;
use crate::nn::Embeddings;
use crate::pose::{PoseFrame, SceneSequence};

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

/// Embeddings precomputed for each frame of one hand's track ("bake"), filled in the
/// background, each with the pose it was computed for (an entry is used only while its
/// frame still has that pose: an edit made while the job ran never gets stale details).
pub type FrameCache = Arc<std::sync::Mutex<Vec<Option<CachedFrame>>>>;

/// A precomputed frame: the pose and the networks' outputs for it.
pub type CachedFrame = (PoseFrame, Arc<Embeddings>);

/// The cached outputs in `entry` if they were computed for `pose` (joints and hand).
pub fn cached_for(entry: Option<&CachedFrame>, pose: &PoseFrame) -> Option<Arc<Embeddings>> {
    let (computed_for, embeddings) = entry?;
    (computed_for.pose == pose.pose && computed_for.hand == pose.hand).then(|| embeddings.clone())
}

/// A loaded pose sequence: one track per hand (one, or both hands of a HaMeR dump or an
/// InterHand capture) on one timeline of scene frames.
#[derive(Clone, Debug)]
pub struct LoadedSequence {
    /// The hands' tracks and which of their frames each scene frame shows (the timeline
    /// counts scene frames). Hand `i` of the session shows track `i`.
    pub scene: SceneSequence,
    pub path: PathBuf,
    /// Per track, per frame of that track.
    pub caches: Vec<FrameCache>,
    /// Scene frames changed in the viewer (their edits live in the tracks).
    pub edited: std::collections::BTreeSet<usize>,
}

impl LoadedSequence {
    fn new(scene: SceneSequence, path: PathBuf) -> Self {
        let caches = scene
            .hands
            .iter()
            .map(|(_, l)| empty_cache(l.sequence.len()))
            .collect();
        Self {
            scene,
            path,
            caches,
            edited: Default::default(),
        }
    }

    /// The file's format (every track's).
    pub fn format(&self) -> crate::pose::PoseFormat {
        self.scene.hands[0].1.format
    }

    /// Whether the file has cameras (HaMeR dumps).
    pub fn has_cameras(&self) -> bool {
        self.scene.hands.iter().any(|(_, l)| l.cameras.is_some())
    }

    /// Per scene frame, the file's camera.
    pub fn cameras(&self) -> Option<Vec<Option<Camera>>> {
        self.has_cameras().then(|| {
            (0..self.scene.len())
                .map(|i| self.scene.camera(i).cloned())
                .collect()
        })
    }

    /// Per scene frame, its label (image name, frame id), when the file has labels.
    pub fn labels(&self) -> Option<Vec<String>> {
        self.scene
            .hands
            .iter()
            .any(|(_, l)| l.sequence.labels.is_some())
            .then(|| {
                (0..self.scene.len())
                    .map(|i| self.scene.label(i).unwrap_or_default().to_string())
                    .collect()
            })
    }

    /// Track `hand`'s frame at scene frame `frame`, if the hand is in it.
    pub fn track_frame(&self, hand: usize, frame: usize) -> Option<usize> {
        *self.scene.frames.get(frame)?.get(hand)?
    }

    /// Track `hand`'s pose at scene frame `frame`, if the hand is in it.
    pub fn pose_at(&self, hand: usize, frame: usize) -> Option<&PoseFrame> {
        let k = self.track_frame(hand, frame)?;
        self.scene.hands[hand].1.sequence.frames.get(k)
    }
}

fn empty_cache(n: usize) -> FrameCache {
    Arc::new(std::sync::Mutex::new(vec![None; n]))
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
    /// The avatar they were computed with.
    pub avatar_generation: u64,
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

    /// Placeholder outputs for `avatar` until the worker's first ones arrive: never drawn.
    fn waiting(avatar: &LoadedAvatar) -> Self {
        Self {
            embeddings: Arc::new(placeholder_embeddings(&avatar.avatar)),
            avatar_generation: avatar.generation,
            frame: PoseFrame {
                // A pose no request equals (NaN), so the first update asks the worker.
                pose: [f32::NAN; crate::POSE_DIM],
                ..PoseFrame::default()
            },
            generation: 0,
            millis: 0.0,
        }
    }
}

/// One hand in the scene: the pose it shows and the networks' latest outputs for it.
pub struct ShownHand {
    /// The pose shown (sliders edit the selected hand's; the timeline sets every hand's).
    pub pose: PoseFrame,
    pub embeddings: LatestEmbeddings,
    /// Whether the hand is in the frame shown (a sequence frame may hold only the other).
    pub present: bool,
    /// The last pose asked of the worker.
    requested: Option<PoseFrame>,
    /// The last pose the networks failed for.
    nets_failed: Option<PoseFrame>,
    /// Run the networks again for the pose shown (their engine or precision changed).
    rerun: bool,
}

impl ShownHand {
    fn new(pose: PoseFrame, embeddings: LatestEmbeddings) -> Self {
        Self {
            pose,
            embeddings,
            present: true,
            requested: None,
            nets_failed: None,
            rerun: false,
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
    /// The main avatar: it shows right hands, and left hands when no left avatar is open.
    pub avatar: LoadedAvatar,
    /// The left hands' own avatar (`view --left-avatar`, File > Open left-hand avatar…).
    pub left_avatar: Option<LoadedAvatar>,
    /// The hands in the scene (at least one; hand `i` shows track `i` of a sequence).
    pub hands: Vec<ShownHand>,
    /// The hand the joints panel edits.
    pub selected: usize,
    pub sequence: Option<LoadedSequence>,
    pub timeline: Timeline,
    /// Use the pose file's (HaMeR) camera instead of the orbit camera.
    pub use_pose_camera: bool,
    /// Problems found by the session's own methods, waiting for the messages.
    problems: Vec<String>,
    pub recent: Vec<PathBuf>,
    /// Where screenshots, renders and exports go (absolute; remembered between runs).
    pub output_dir: PathBuf,
    pub worker: EmbedWorker,
    /// An avatar being loaded in the background.
    pub loading_avatar: Option<(PathBuf, Pending<AvatarLoadOutcome>)>,
    /// Whether the avatar being loaded (or waiting for its MANO file) is for the left hands.
    pub loading_left_avatar: bool,
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

/// A mean pose and the hand of its MANO model: what a flat-relative pose file (HaMeR) was
/// converted for.
pub type ConvertedFor = ([f32; crate::POSE_DIM], Handedness);

/// What loading a pose file produced.
pub enum PoseLoadOutcome {
    /// One hand's track, or both hands', and the mean poses (with their hands) the right
    /// and the left hands were converted for.
    Loaded(SceneSequence, Box<[ConvertedFor; 2]>),
    /// The file holds several captures or hands: ask the user.
    Choose(crate::pose::PoseFileSummary),
}

/// The picker shown when a pose file holds several captures or hands.
#[derive(Clone, Debug)]
pub struct PoseChoice {
    pub path: PathBuf,
    pub summary: crate::pose::PoseFileSummary,
    pub capture: Option<String>,
    pub hand: Option<crate::pose::HandChoice>,
}

impl Session {
    /// A session showing `avatar`, with embeddings already computed for its rest pose, or
    /// `None` to compute them on the worker (nothing is drawn until they arrive:
    /// [`LatestEmbeddings::ready`]).
    pub fn new(avatar: Avatar, embeddings: Option<Embeddings>, path: Option<PathBuf>) -> Self {
        let avatar = LoadedAvatar {
            avatar: Arc::new(avatar),
            generation: 1,
            path,
        };
        let latest = match embeddings {
            Some(e) => LatestEmbeddings {
                embeddings: Arc::new(e),
                avatar_generation: avatar.generation,
                frame: PoseFrame::default(),
                generation: 1,
                millis: 0.0,
            },
            None => LatestEmbeddings::waiting(&avatar),
        };
        Self {
            avatar,
            left_avatar: None,
            hands: vec![ShownHand::new(PoseFrame::default(), latest)],
            selected: 0,
            sequence: None,
            timeline: Timeline::default(),
            use_pose_camera: false,
            problems: Vec::new(),
            recent: Vec::new(),
            output_dir: crate::user_config::output_dir(),
            worker: EmbedWorker::start(),
            loading_avatar: None,
            loading_left_avatar: false,
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
        }
    }

    /// The hand the joints panel edits.
    pub fn hand(&self) -> &ShownHand {
        &self.hands[self.selected.min(self.hands.len() - 1)]
    }

    /// The pose of the hand the joints panel edits.
    pub fn pose(&self) -> &PoseFrame {
        &self.hand().pose
    }

    /// The side of hand `i`.
    pub fn side_of(&self, i: usize) -> Handedness {
        self.hands[i].pose.hand.unwrap_or(self.avatar.avatar.hand)
    }

    /// The avatar that shows a hand of `side`: the left avatar for a left hand when one is
    /// open, else the main one (mirrored for a hand of the other side).
    pub fn avatar_for(&self, side: Handedness) -> &LoadedAvatar {
        crate::hand::for_side(side, &self.avatar, self.left_avatar.as_ref())
    }

    /// The avatar of hand `i`.
    pub fn avatar_of(&self, i: usize) -> &LoadedAvatar {
        self.avatar_for(self.side_of(i))
    }

    /// The hands drawn now: in the frame shown and with real network outputs, with their
    /// avatars (whose vertex counts their outputs match).
    pub fn drawn_hands(&self) -> impl Iterator<Item = (usize, &ShownHand, &LoadedAvatar)> {
        (0..self.hands.len()).filter_map(|i| {
            let (h, a) = (&self.hands[i], self.avatar_of(i));
            // Outputs of this avatar only (another's may fit its vertex count by chance).
            let fits = h.embeddings.avatar_generation == a.generation
                && h.embeddings.embeddings.num_vertices == a.avatar.num_vertices();
            (h.present && h.embeddings.ready() && fits).then_some((i, h, a))
        })
    }

    /// The posed geometry of every hand drawn, with its avatar.
    pub fn drawn_geometry(&self) -> Vec<(Arc<Avatar>, crate::frame::PosedGeometry)> {
        self.drawn_hands()
            .map(|(_, h, a)| {
                let geo = a.avatar.pose_geometry(&h.embeddings.embeddings, &h.pose);
                (a.avatar.clone(), geo)
            })
            .collect()
    }

    /// Chooses the hand the joints panel edits (clamped to the hands there are).
    pub fn select_hand(&mut self, i: usize) {
        self.selected = i.min(self.hands.len() - 1);
    }

    /// Reports a problem the session ran into itself (a network failure, a precision this
    /// CPU lacks): the messages system shows it ([`Self::take_problems`]).
    fn error(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }

    /// Problems reported since the last call, for the messages.
    pub fn take_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.problems)
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

    /// Changes the selected hand's pose (a slider, preset or reset). On a sequence frame the
    /// edit is kept in the hand's track, so stepping away and back shows it, and the frame
    /// is marked edited; its precomputed embeddings are dropped. A hand not in the frame
    /// shown is not edited.
    pub fn edit_pose(&mut self, edit: impl FnOnce(&mut PoseFrame)) {
        self.timeline.playing = false;
        let i = self.selected.min(self.hands.len() - 1);
        if !self.hands[i].present {
            return;
        }
        edit(&mut self.hands[i].pose);
        let f = self.timeline.frame;
        let pose = self.hands[i].pose.clone();
        if let Some(seq) = self.sequence.as_mut()
            && let Some(k) = seq.track_frame(i, f)
            && let Some(frame) = seq.scene.hands[i].1.sequence.frames.get_mut(k)
            && *frame != pose
        {
            *frame = pose;
            seq.edited.insert(f);
            if let Ok(mut c) = seq.caches[i].lock()
                && let Some(e) = c.get_mut(k)
            {
                *e = None;
            }
        }
    }

    /// Poses the selected hand as `preset` (relative to its avatar's mean pose), as an edit.
    pub fn apply_preset(&mut self, preset: crate::pose::presets::PresetPose) {
        let i = self.selected.min(self.hands.len() - 1);
        let mean = *self.avatar_of(i).avatar.template.skeleton.pose_mean();
        self.edit_pose(|f| f.pose = preset.pose(&mean));
    }

    /// Whether the current sequence frame was edited in the viewer.
    pub fn frame_edited(&self) -> bool {
        self.sequence
            .as_ref()
            .is_some_and(|s| s.edited.contains(&self.timeline.frame))
    }

    /// Replaces the main avatar (the poses carry over; [`Lighting::avatar_changed`] resets
    /// the lighting).
    pub fn set_avatar(&mut self, avatar: Avatar, embeddings: Embeddings, path: Option<PathBuf>) {
        self.install_avatar(false, avatar, embeddings, path);
    }

    /// Opens `avatar` for the left hands (the main avatar keeps the right ones).
    pub fn set_left_avatar(
        &mut self,
        avatar: Avatar,
        embeddings: Embeddings,
        path: Option<PathBuf>,
    ) {
        self.install_avatar(true, avatar, embeddings, path);
    }

    /// Puts `avatar` in as the main or the left avatar. Hands it now shows get its rest-pose
    /// outputs (recomputed for their poses next). A precompute under way is cancelled and
    /// the caches start empty (new ones: the old job can only write into the old); a
    /// flat-relative sequence (HaMeR) is re-expressed for the mean pose of each hand's new
    /// avatar, edits included.
    fn install_avatar(
        &mut self,
        left: bool,
        avatar: Avatar,
        embeddings: Embeddings,
        path: Option<PathBuf>,
    ) {
        let mut avatar = avatar;
        if let Err(e) = avatar.set_precision(self.precision) {
            self.error(e);
        }
        self.avatar_counter += 1;
        let before: Vec<Arc<Avatar>> = (0..self.hands.len())
            .map(|i| self.avatar_of(i).avatar.clone())
            .collect();
        let loaded = LoadedAvatar {
            avatar: Arc::new(avatar),
            generation: self.avatar_counter,
            path,
        };
        if left {
            self.left_avatar = Some(loaded);
        } else {
            self.avatar = loaded;
        }
        self.embed_counter += 1;
        let embeddings = Arc::new(embeddings);
        let generation = self.avatar_counter;
        for i in 0..self.hands.len() {
            if self.avatar_of(i).generation != generation {
                continue;
            }
            let hand = &mut self.hands[i];
            hand.embeddings = LatestEmbeddings {
                embeddings: embeddings.clone(),
                avatar_generation: generation,
                frame: PoseFrame::default(),
                generation: self.embed_counter,
                millis: 0.0,
            };
            hand.requested = None;
            hand.nets_failed = None;
        }
        self.avatars_changed(&before);
    }

    /// Left hands go back to the main avatar (mirrored); their details are recomputed.
    pub fn clear_left_avatar(&mut self) {
        if self.left_avatar.is_none() {
            return;
        }
        let before: Vec<Arc<Avatar>> = (0..self.hands.len())
            .map(|i| self.avatar_of(i).avatar.clone())
            .collect();
        self.left_avatar = None;
        for (i, hand) in self.hands.iter_mut().enumerate() {
            if !Arc::ptr_eq(&before[i], &self.avatar.avatar) {
                hand.requested = None;
                hand.nets_failed = None;
            }
        }
        self.avatars_changed(&before);
    }

    /// After the avatars of the hands changed (`before`: each hand's avatar until now): a
    /// precompute under way is cancelled and the caches start empty (new ones: the old job
    /// can only write into the old); a flat-relative sequence (HaMeR) is re-expressed for
    /// the mean pose of each hand's new avatar, edits included.
    fn avatars_changed(&mut self, before: &[Arc<Avatar>]) {
        if let Some(p) = self.jobs.precompute.take() {
            p.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let after: Vec<Arc<Avatar>> = (0..self.hands.len())
            .map(|i| self.avatar_of(i).avatar.clone())
            .collect();
        if let Some(seq) = self.sequence.as_mut() {
            seq.caches = seq
                .scene
                .hands
                .iter()
                .map(|(_, l)| empty_cache(l.sequence.len()))
                .collect();
            if seq.format() == crate::pose::PoseFormat::Hamer {
                for (i, (old, new)) in before.iter().zip(&after).enumerate() {
                    if Arc::ptr_eq(old, new) {
                        continue;
                    }
                    let (old_mean, new_mean) = (
                        *old.template.skeleton.pose_mean(),
                        *new.template.skeleton.pose_mean(),
                    );
                    let reconvert = |f: &mut PoseFrame| {
                        crate::pose::reconvert_for_mean(f, &old_mean, old.hand, &new_mean, new.hand)
                    };
                    if let Some((_, track)) = seq.scene.hands.get_mut(i) {
                        track.sequence.frames.iter_mut().for_each(reconvert);
                    }
                    reconvert(&mut self.hands[i].pose);
                }
            }
        }
    }

    /// Shows a loaded sequence whose right and left tracks were converted for `used` (the
    /// avatars when the load started): a track whose avatar changed meanwhile (a left avatar
    /// that finished loading first) is re-expressed for the avatar that shows it now.
    pub fn set_loaded_sequence(
        &mut self,
        scene: SceneSequence,
        path: PathBuf,
        used: [ConvertedFor; 2],
    ) {
        let mut scene = scene;
        if scene.hands.first().map(|(_, l)| l.format) == Some(crate::pose::PoseFormat::Hamer) {
            for (side, track) in scene.hands.iter_mut() {
                let (old_mean, old_hand) = used[(*side == Handedness::Left) as usize];
                let now = &self.avatar_for(*side).avatar;
                let (new_mean, new_hand) = (*now.template.skeleton.pose_mean(), now.hand);
                if (old_mean, old_hand) != (new_mean, new_hand) {
                    for f in track.sequence.frames.iter_mut() {
                        crate::pose::reconvert_for_mean(
                            f, &old_mean, old_hand, &new_mean, new_hand,
                        );
                    }
                }
            }
        }
        self.set_sequence(scene, path);
    }

    /// Shows a loaded sequence (one track per hand) from its first frame. A precompute of
    /// the previous sequence is cancelled.
    pub fn set_sequence(&mut self, scene: SceneSequence, path: PathBuf) {
        if let Some(p) = self.jobs.precompute.take() {
            p.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let seq = LoadedSequence::new(scene, path);
        // One hand per track; hands already shown keep their outputs while new ones come.
        self.hands.truncate(seq.scene.hands.len());
        while self.hands.len() < seq.scene.hands.len() {
            let side = seq.scene.hands[self.hands.len()].0;
            let waiting = LatestEmbeddings::waiting(self.avatar_for(side));
            let pose = PoseFrame {
                hand: Some(side),
                ..PoseFrame::default()
            };
            self.hands.push(ShownHand::new(pose, waiting));
        }
        self.selected = self.selected.min(self.hands.len() - 1);
        self.sequence = Some(seq);
        self.timeline = Timeline {
            looping: self.timeline.looping,
            speed: self.timeline.speed,
            ..Timeline::default()
        };
        self.show_frame(0);
    }

    /// Every hand shows its pose of scene frame `f` (a hand not in it is hidden).
    fn show_frame(&mut self, f: usize) {
        let Some(seq) = &self.sequence else { return };
        for (i, hand) in self.hands.iter_mut().enumerate() {
            match seq.pose_at(i, f) {
                Some(p) => {
                    hand.pose = p.clone();
                    hand.present = true;
                }
                None => {
                    // Hidden, but still the track's side (for the panels and its avatar).
                    hand.present = false;
                    hand.pose.hand = seq.scene.hands.get(i).map(|(side, _)| *side);
                }
            }
        }
    }

    /// Number of frames on the timeline (0 without a sequence).
    pub fn frame_count(&self) -> usize {
        self.sequence.as_ref().map_or(0, |s| s.scene.len())
    }

    /// Frames per second of the sequence.
    pub fn fps(&self) -> f32 {
        self.sequence.as_ref().map_or(30.0, |s| s.scene.fps)
    }

    /// Jumps to `frame` of the sequence (clamped) and shows its poses.
    pub fn go_to_frame(&mut self, frame: usize) {
        let n = self.frame_count();
        if n == 0 {
            return;
        }
        let f = frame.min(n - 1);
        self.timeline.frame = f;
        self.timeline.time = f as f32 / self.fps();
        self.show_frame(f);
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
            self.show_frame(f);
        }
    }

    /// The frame's own SH lighting: the first hand shown that has one.
    pub fn frame_sh(&self) -> Option<[f32; SH_DIM]> {
        self.hands
            .iter()
            .filter(|h| h.present)
            .find_map(|h| h.pose.sh)
    }

    /// Whether the frame shown has its own SH lighting.
    pub fn frame_has_sh(&self) -> bool {
        self.hands.iter().any(|h| h.present && h.pose.sh.is_some())
    }

    /// Whether the networks failed for the selected hand's pose (the error is in the
    /// messages).
    pub fn nets_failed_here(&self) -> bool {
        self.hand().nets_failed_here()
    }

    /// Whether hand `i`'s details (displacement, albedo, weights) belong to an earlier pose
    /// or another avatar. (A pose the networks failed for counts as done: its error is
    /// shown, the earlier details stay, and the window stops waiting for it.)
    fn hand_stale(&self, i: usize) -> bool {
        let h = &self.hands[i];
        let other_avatar = h.embeddings.avatar_generation != self.avatar_of(i).generation;
        h.present
            && (other_avatar || !h.is_pose_shown(&h.embeddings.frame))
            && !h.nets_failed_here()
    }

    /// Whether the details of any hand shown belong to an earlier pose.
    pub fn details_stale(&self) -> bool {
        (0..self.hands.len()).any(|i| self.hand_stale(i))
    }

    /// Requests fresh embeddings for every hand whose pose changed, or takes them from the
    /// sequence cache; collects finished results. Call once per frame.
    pub fn update_embeddings(&mut self) {
        for r in self.worker.poll() {
            if r.slot >= self.hands.len()
                || r.avatar_generation != self.avatar_of(r.slot).generation
            {
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
                    self.hands[r.slot].embeddings = LatestEmbeddings {
                        embeddings: e,
                        avatar_generation: r.avatar_generation,
                        frame: r.frame,
                        generation: self.embed_counter,
                        millis: r.millis,
                    };
                }
                Err(e) => {
                    self.error(format!("the networks failed: {e}"));
                    self.hands[r.slot].nets_failed = Some(r.frame);
                }
            }
        }
        for i in 0..self.hands.len() {
            if !self.hands[i].present {
                continue; // a rerun waits for the hand to be shown
            }
            let rerun = std::mem::take(&mut self.hands[i].rerun);
            if !self.hand_stale(i) && !rerun {
                continue;
            }
            let avatar = self.avatar_of(i);
            let (avatar, generation) = (avatar.avatar.clone(), avatar.generation);
            if let Some(cached) = self.cached_embeddings(i).filter(|_| !rerun) {
                self.embed_counter += 1;
                let hand = &mut self.hands[i];
                hand.embeddings = LatestEmbeddings {
                    embeddings: cached,
                    avatar_generation: generation,
                    frame: hand.pose.clone(),
                    generation: self.embed_counter,
                    millis: 0.0,
                };
                continue;
            }
            let hand = &self.hands[i];
            let already = hand
                .requested
                .as_ref()
                .is_some_and(|r| hand.is_pose_shown(r));
            if !already || rerun {
                let pose = hand.pose.clone();
                self.worker
                    .request(i, avatar, generation, pose.clone(), self.nets_choice);
                self.hands[i].requested = Some(pose);
            }
        }
    }

    /// Hand `i`'s precomputed outputs for the frame shown, if they are in the cache and fit
    /// its avatar.
    fn cached_embeddings(&self, i: usize) -> Option<Arc<Embeddings>> {
        let seq = self.sequence.as_ref()?;
        let k = seq.track_frame(i, self.timeline.frame)?;
        let frame = seq.scene.hands.get(i)?.1.sequence.frames.get(k)?;
        if frame.pose != self.hands[i].pose.pose {
            return None;
        }
        let cache = seq.caches.get(i)?.lock().ok()?;
        let cached = cached_for(cache.get(k)?.as_ref(), &self.hands[i].pose)?;
        // Never another avatar's outputs (a stale job's), whatever wrote them.
        (cached.num_vertices == self.avatar_of(i).avatar.num_vertices()).then_some(cached)
    }

    /// Runs the networks on `choice` from now on, starting with the poses shown.
    pub fn set_nets_choice(&mut self, choice: crate::engine::NetsChoice) {
        if self.nets_choice != choice {
            self.nets_choice = choice;
            self.hands.iter_mut().for_each(|h| h.rerun = true);
        }
    }

    /// The arithmetic of the CPU networks and neural image.
    pub fn precision(&self) -> crate::nn::Precision {
        self.precision
    }

    /// Chooses the arithmetic of the CPU networks and neural image for these avatars and
    /// the next ones, and recomputes the poses shown; refused (with a message) where this
    /// CPU cannot run it.
    pub fn set_precision(&mut self, precision: crate::nn::Precision) {
        if precision == self.precision {
            return;
        }
        let mut avatar = (*self.avatar.avatar).clone();
        if let Err(e) = avatar.set_precision(precision) {
            self.error(e);
            return;
        }
        self.avatar.avatar = Arc::new(avatar);
        if let Some(left) = self.left_avatar.as_mut() {
            let mut avatar = (*left.avatar).clone();
            if let Err(e) = avatar.set_precision(precision) {
                self.error(e);
                return;
            }
            left.avatar = Arc::new(avatar);
        }
        self.precision = precision;
        self.hands.iter_mut().for_each(|h| h.rerun = true);
    }

    /// Whether nothing is loading or computing (used by scripted runs).
    pub fn is_idle(&self) -> bool {
        !self.details_stale()
            && !self.worker.is_busy()
            && self.loading_avatar.is_none()
            && self.loading_poses.is_none()
            && self.loading_env.is_none()
            && !self.footage.is_reading()
            && !self.hands.iter().any(|h| h.present && h.rerun)
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
    use std::time::{Duration, Instant};

    use super::*;
    use crate::pose::{LoadedPoses, PoseFormat, PoseSequence};

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
        s.set_sequence(
            SceneSequence::single(Handedness::Right, poses),
            "seq.json".into(),
        );
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
        assert!(!s.hand().embeddings.ready() && s.details_stale() && !s.is_idle());
        assert_eq!(
            s.drawn_hands().count(),
            0,
            "nothing drawn from the placeholder"
        );
        let placeholder = &s.hand().embeddings.embeddings;
        assert_eq!(placeholder.lbs_weights.len(), expected.lbs_weights.len());
        assert_eq!(placeholder.code_delta.len(), expected.code_delta.len());
        let start = std::time::Instant::now();
        while !s.hand().embeddings.ready() {
            assert!(start.elapsed().as_secs() < 60, "the worker never answered");
            s.update_embeddings();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!s.details_stale());
        assert_eq!(s.hand().embeddings.embeddings.delta, expected.delta);
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
            *s.pose(),
            s.sequence.as_ref().unwrap().scene.hands[0]
                .1
                .sequence
                .frames[45]
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
        if let Ok(mut c) = s.sequence.as_ref().unwrap().caches[0].lock() {
            c[2] = Some((s.pose().clone(), s.hand().embeddings.embeddings.clone()));
        }
        s.edit_pose(|p| p.pose[5] = 0.7);
        assert!(s.frame_edited());
        s.go_to_frame(3);
        assert!(!s.frame_edited());
        assert_eq!(s.pose().pose[5], 0.03);
        s.go_to_frame(2);
        assert_eq!(s.pose().pose[5], 0.7, "the edit survives stepping");
        let seq = s.sequence.as_ref().unwrap();
        assert_eq!(seq.edited.iter().copied().collect::<Vec<_>>(), vec![2]);
        assert!(
            seq.caches[0].lock().unwrap()[2].is_none(),
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
        crate::app::output::start_precompute(
            &mut s,
            &mut crate::app::messages::Messages::default(),
        );
        let job = s.jobs.precompute.clone().unwrap();
        let old_cache = s.sequence.as_ref().unwrap().caches[0].clone();
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
        let cache = s.sequence.as_ref().unwrap().caches[0].clone();
        assert!(!Arc::ptr_eq(&cache, &old_cache), "a fresh cache");
        // Even a stray entry of the old avatar is never used.
        let stale = (old_cache.lock().unwrap()[0].clone())
            .map(|(_, e)| e)
            .unwrap_or_else(|| Arc::new(s.hand().embeddings.embeddings.as_ref().clone()));
        let stale = Arc::new(Embeddings {
            num_vertices: stale.num_vertices + 1,
            ..(*stale).clone()
        });
        s.go_to_frame(0);
        cache.lock().unwrap()[0] = Some((s.pose().clone(), stale));
        assert!(s.cached_embeddings(0).is_none());
        // An entry computed for another pose (a frame edited while a job ran) is not used.
        let fresh = s.hand().embeddings.embeddings.clone();
        let mut other_pose = s.pose().clone();
        other_pose.pose[3] += 0.5;
        cache.lock().unwrap()[0] = Some((other_pose, fresh.clone()));
        assert!(s.cached_embeddings(0).is_none());
        cache.lock().unwrap()[0] = Some((s.pose().clone(), fresh));
        assert!(s.cached_embeddings(0).is_some());
    }

    /// A two-hand scene of `n` frames: the right hand in every frame, the left in the odd
    /// ones (its k-th frame is scene frame 2k+1).
    fn session_with_two_hands(n: usize) -> Session {
        let mut s = session_with_sequence(1);
        let track = |side: Handedness, count: usize, base: f32| LoadedPoses {
            sequence: PoseSequence {
                fps: 30.0,
                frames: (0..count)
                    .map(|i| PoseFrame {
                        pose: [base + i as f32 * 0.01; crate::POSE_DIM],
                        hand: Some(side),
                        ..PoseFrame::default()
                    })
                    .collect(),
                labels: None,
                source: None,
            },
            format: PoseFormat::InterHand,
            warnings: Vec::new(),
            cameras: None,
            file_frames: None,
        };
        let left_frames = n / 2;
        let scene = SceneSequence {
            hands: vec![
                (Handedness::Right, track(Handedness::Right, n, 0.0)),
                (Handedness::Left, track(Handedness::Left, left_frames, 0.5)),
            ],
            frames: (0..n)
                .map(|i| vec![Some(i), (i % 2 == 1).then_some(i / 2)])
                .collect(),
            fps: 30.0,
        };
        s.set_sequence(scene, "both.json".into());
        s
    }

    /// Runs the worker until every hand shown has its details (or fails the test).
    fn settle(s: &mut Session) {
        let start = Instant::now();
        while s.details_stale() {
            assert!(start.elapsed().as_secs() < 60, "the worker never answered");
            s.update_embeddings();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn both_hands_of_a_scene_follow_the_timeline_and_a_missing_hand_is_hidden() {
        let mut s = session_with_two_hands(6);
        assert_eq!(s.hands.len(), 2);
        assert_eq!(s.side_of(1), Handedness::Left);
        assert!(
            s.hands[0].present && !s.hands[1].present,
            "frame 0 has no left hand"
        );
        settle(&mut s);
        assert_eq!(s.drawn_hands().count(), 1);
        s.go_to_frame(3);
        assert!(s.hands[1].present);
        assert_eq!(s.hands[0].pose.pose[0], 0.03);
        assert_eq!(
            s.hands[1].pose.pose[0], 0.51,
            "the left hand's second frame"
        );
        settle(&mut s);
        let drawn: Vec<usize> = s.drawn_hands().map(|(i, _, _)| i).collect();
        assert_eq!(drawn, vec![0, 1]);
        // Each hand's outputs are for its own pose (the worker kept both requests).
        for h in &s.hands {
            assert_eq!(h.embeddings.frame.pose, h.pose.pose);
        }
        // Both hands show the main avatar (no left avatar): the left mirrored.
        assert_eq!(s.avatar_of(1).generation, s.avatar.generation);
    }

    #[test]
    fn edits_go_to_the_selected_hand_only_and_stay_in_its_track() {
        let mut s = session_with_two_hands(4);
        s.go_to_frame(1);
        s.select_hand(1);
        s.edit_pose(|p| p.pose[4] = 1.25);
        assert_eq!(s.hands[1].pose.pose[4], 1.25);
        assert_eq!(s.hands[0].pose.pose[4], 0.01, "the right hand is untouched");
        s.go_to_frame(2);
        s.go_to_frame(1);
        assert_eq!(s.hands[1].pose.pose[4], 1.25, "kept in the left track");
        let seq = s.sequence.as_ref().unwrap();
        assert_eq!(seq.scene.hands[1].1.sequence.frames[0].pose[4], 1.25);
        assert_eq!(seq.scene.hands[0].1.sequence.frames[1].pose[4], 0.01);
        // A hand not in the frame shown is not edited.
        s.go_to_frame(2);
        let before = s.hands[1].pose.clone();
        s.edit_pose(|p| p.pose[4] = -2.0);
        assert_eq!(s.hands[1].pose, before);
        assert!(!s.frame_edited());
    }

    #[test]
    fn a_left_avatar_takes_the_left_hand_only() {
        let mut s = session_with_two_hands(4);
        s.go_to_frame(1);
        settle(&mut s);
        let right_outputs = s.hands[0].embeddings.generation;
        let device = candle_core::Device::Cpu;
        let left = crate::synthetic::SyntheticSpec {
            mesh: crate::synthetic::SyntheticMesh::ToyHand {
                around: 10,
                rings_per_bone: 3,
            },
            seed: 7,
            ..crate::synthetic::SyntheticSpec::test_avatar()
        }
        .avatar(&device)
        .unwrap();
        let vertices = left.num_vertices();
        assert_ne!(vertices, s.avatar.avatar.num_vertices());
        let emb = left.embed(&PoseFrame::default()).unwrap();
        s.set_left_avatar(left, emb, None);
        assert_eq!(s.avatar_of(1).avatar.num_vertices(), vertices);
        assert_eq!(
            s.hands[0].embeddings.generation, right_outputs,
            "the right hand keeps its"
        );
        assert!(
            s.details_stale(),
            "the left hand's pose is recomputed with its avatar"
        );
        settle(&mut s);
        assert_eq!(s.hands[1].embeddings.embeddings.num_vertices, vertices);
        assert_eq!(s.drawn_hands().count(), 2);
        // Back to the main avatar, mirrored: recomputed with it.
        s.clear_left_avatar();
        assert_eq!(s.avatar_of(1).generation, s.avatar.generation);
        assert!(s.details_stale());
        assert_eq!(
            s.drawn_hands().count(),
            1,
            "not drawn with the other avatar's outputs"
        );
        settle(&mut s);
        let main = s.avatar.avatar.num_vertices();
        assert_eq!(s.hands[1].embeddings.embeddings.num_vertices, main);
        assert_eq!(s.drawn_hands().count(), 2);
    }

    #[test]
    fn a_track_converted_for_an_avatar_replaced_during_the_load_is_converted_again() {
        let mut s = session_with_sequence(1);
        let mut scene = session_with_two_hands(4).sequence.take().unwrap().scene;
        scene
            .hands
            .iter_mut()
            .for_each(|(_, l)| l.format = PoseFormat::Hamer);
        let original = scene.clone();
        let avatar = s.avatar.avatar.clone();
        let now = (*avatar.template.skeleton.pose_mean(), avatar.hand);
        // The right track was converted for the avatar shown now, the left for another.
        let before = ([0.1; crate::POSE_DIM], Handedness::Right);
        s.set_loaded_sequence(scene, "both.hamer.json".into(), [now, before]);
        let seq = s.sequence.as_ref().unwrap();
        assert_eq!(
            seq.scene.hands[0].1.sequence.frames,
            original.hands[0].1.sequence.frames
        );
        let mut expected = original.hands[1].1.sequence.frames[0].clone();
        crate::pose::reconvert_for_mean(&mut expected, &before.0, before.1, &now.0, now.1);
        assert_eq!(seq.scene.hands[1].1.sequence.frames[0], expected);
        assert_ne!(expected, original.hands[1].1.sequence.frames[0]);
    }
}
