//! `xhand export-mesh`: the posed fine mesh with per-vertex colours.

use std::path::PathBuf;

use clap::Args;

use super::common::{AvatarArgs, PoseArgs};
use crate::mesh::export::{MeshFormat, mesh_bytes};

/// Write the posed mesh (OBJ or PLY, chosen by the file extension) with per-vertex colours.
#[derive(Debug, Args)]
pub struct ExportMeshCmd {
    #[command(flatten)]
    pub avatar: AvatarArgs,
    #[command(flatten)]
    pub pose: PoseArgs,
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
        let frame = self.pose.selected(&avatar)?;
        let posed = avatar.evaluate(&frame, self.sh_view)?;
        let order = avatar.color_order;
        let colors: Vec<[f32; 3]> = if self.sh {
            posed
                .vertex_sh_colors()
                .into_iter()
                .map(|c| order.to_rgb(c.map(|x| x.clamp(0.0, 1.0))))
                .collect()
        } else {
            posed
                .embeddings
                .albedo
                .chunks_exact(3)
                .map(|c| order.to_rgb([c[0], c[1], c[2]]))
                .collect()
        };
        let mut faces = avatar.template.faces.clone();
        if posed.geometry.drive.mirrored {
            // Mirrored geometry: re-wind so viewers see outward faces.
            for f in &mut faces {
                f.swap(1, 2);
            }
        }
        let bytes = mesh_bytes(format, &posed.geometry.vertices, &colors, &faces);
        crate::image_io::write_atomically(&self.out, &bytes)?;
        println!(
            "wrote {} ({} vertices, {} faces)",
            self.out.display(),
            posed.geometry.vertices.len(),
            faces.len()
        );
        Ok(())
    }
}
