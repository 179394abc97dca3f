//! `xhand eval`: per-vertex network outputs and posed geometry for one pose.

use std::path::PathBuf;

use clap::Args;

use super::common::{AvatarArgs, NetsArgs, PoseArgs};
use crate::NUM_JOINTS;
use crate::avatar::write::TensorWriter;

/// Evaluate one pose and write delta, codes, albedo, skinning weights, vertices, normals
/// and SH colours to a safetensors file.
#[derive(Debug, Args)]
pub struct EvalCmd {
    #[command(flatten)]
    pub avatar: AvatarArgs,
    #[command(flatten)]
    pub pose: PoseArgs,
    #[command(flatten)]
    pub nets: NetsArgs,
    /// SH row of the avatar to use when the frame has no `sh`.
    #[arg(long, default_value_t = 0)]
    pub sh_view: usize,
    /// Output file (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

impl EvalCmd {
    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        let (avatar, engine) = self.nets.load(&self.avatar, force_cpu)?;
        let frame = self.pose.selected(&avatar)?;
        let posed = engine.evaluate(&avatar, &frame, self.sh_view)?;
        let e = &posed.embeddings;
        let v = e.num_vertices;
        let flat = |x: &[[f32; 3]]| -> Vec<f32> { x.iter().flatten().copied().collect() };
        let mut w = TensorWriter::new();
        w.f32("delta", &[v, 3], &e.delta)
            .f32("code_delta", &[v, e.code_delta_dim], &e.code_delta)
            .f32("albedo", &[v, 3], &e.albedo)
            .f32("code_albedo", &[v, e.code_albedo_dim], &e.code_albedo)
            .f32("lbs_weights", &[v, NUM_JOINTS], &e.lbs_weights)
            .f32("vertices", &[v, 3], &flat(&posed.geometry.vertices))
            .f32("normals", &[v, 3], &flat(&posed.geometry.normals))
            .f32("sh_color", &[v, 3], &flat(&posed.vertex_sh_colors()))
            .meta("avatar", &avatar.name)
            .meta("frame", &self.pose.frame.to_string())
            .meta("color_order", avatar.color_order.as_str())
            .meta("nets", &engine.describe());
        w.save(&self.out)?;
        println!("wrote {} ({} vertices)", self.out.display(), v);
        Ok(())
    }
}
