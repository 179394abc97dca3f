//! `xhand export-mesh`: the posed fine mesh with per-vertex colours.

use std::path::PathBuf;

use clap::Args;

use super::common::{AvatarArgs, LeftAvatarArgs, PoseArgs};
use crate::mesh::export::{MeshFormat, SceneMesh};

/// Write the posed mesh (OBJ or PLY, chosen by the file extension) with per-vertex colours;
/// both hands of a file that holds both, in one mesh.
#[derive(Debug, Args)]
pub struct ExportMeshCmd {
    #[command(flatten)]
    pub avatar: AvatarArgs,
    #[command(flatten)]
    pub pose: PoseArgs,
    #[command(flatten)]
    pub left: LeftAvatarArgs,
    /// Colour vertices by albedo (default).
    #[arg(long, conflicts_with = "sh")]
    pub albedo: bool,
    /// Colour vertices by SH shading (albedo lit by the frame's or the avatar's SH).
    #[arg(long)]
    pub sh: bool,
    /// SH row of the avatar to use when the frame has no `sh`.
    #[arg(long, default_value_t = 0)]
    pub sh_view: usize,
    /// Output file (.obj or .ply).
    #[arg(long)]
    pub out: PathBuf,
}

impl ExportMeshCmd {
    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        let format = MeshFormat::from_path(&self.out)?;
        let device = crate::device::select_device(force_cpu);
        let avatar = self.avatar.load(&device)?;
        let left = match &self.left.left_avatar {
            Some(p) => Some(super::common::load_avatar(
                Some(p),
                self.left.left_mano.as_deref(),
                &device,
            )?),
            None => None,
        };
        let scenes = self.pose.load_scenes(&avatar, left.as_ref(), None)?;
        let i = self.pose.frame;
        scenes.check_frame(i)?;
        // Every hand of the frame, one after another in one mesh.
        let mut mesh = SceneMesh::default();
        for (side, frame) in scenes.hands_at(i) {
            let a = crate::hand::for_side(side, &avatar, left.as_ref());
            let posed = a.evaluate(frame, self.sh_view)?;
            let order = a.color_order;
            let colors: Vec<[f32; 3]> = if self.sh {
                (posed.vertex_sh_colors().into_iter())
                    .map(|c| order.to_rgb(c.map(|x| x.clamp(0.0, 1.0))))
                    .collect()
            } else {
                (posed.embeddings.albedo.chunks_exact(3))
                    .map(|c| order.to_rgb([c[0], c[1], c[2]]))
                    .collect()
            };
            let geo = &posed.geometry;
            mesh.push(&geo.vertices, colors, &a.template.faces, geo.drive.mirrored);
        }
        crate::image_io::write_atomically(&self.out, &mesh.bytes(format))?;
        let (vertices, faces) = (&mesh.vertices, &mesh.faces);
        println!(
            "wrote {} ({} vertices, {} faces)",
            self.out.display(),
            vertices.len(),
            faces.len()
        );
        Ok(())
    }
}
