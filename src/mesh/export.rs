//! Writing posed meshes with per-vertex colours: Wavefront OBJ (`v x y z r g b`) and binary
//! PLY.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::bail;

/// Mesh file formats we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeshFormat {
    Obj,
    Ply,
}

impl MeshFormat {
    /// From a file extension (`obj` or `ply`, case-insensitive).
    pub fn from_path(path: &Path) -> anyhow::Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("obj") => Ok(Self::Obj),
            Some("ply") => Ok(Self::Ply),
            _ => bail!(
                "{}: unknown mesh format; use a .obj or .ply file name",
                path.display()
            ),
        }
    }
}

/// Several posed hands as one coloured mesh: each hand's faces index its own vertices, placed
/// after the hands before it; a mirrored hand's faces are re-wound so viewers see them from
/// outside.
#[derive(Clone, Debug, Default)]
pub struct SceneMesh {
    pub vertices: Vec<[f32; 3]>,
    pub colors: Vec<[f32; 3]>,
    pub faces: Vec<[u32; 3]>,
}

impl SceneMesh {
    /// Appends one hand (`colors` per vertex, RGB in [0, 1]).
    pub fn push(
        &mut self,
        vertices: &[[f32; 3]],
        colors: impl IntoIterator<Item = [f32; 3]>,
        faces: &[[u32; 3]],
        mirrored: bool,
    ) {
        let base = self.vertices.len() as u32;
        self.faces.extend(faces.iter().map(|f| {
            let f = if mirrored { [f[0], f[2], f[1]] } else { *f };
            f.map(|v| v + base)
        }));
        self.vertices.extend_from_slice(vertices);
        self.colors.extend(colors);
    }

    /// The file's bytes.
    pub fn bytes(&self, format: MeshFormat) -> Vec<u8> {
        mesh_bytes(format, &self.vertices, &self.colors, &self.faces)
    }
}

/// Serialises a triangle mesh with RGB colours in [0, 1].
pub fn mesh_bytes(
    format: MeshFormat,
    vertices: &[[f32; 3]],
    colors: &[[f32; 3]],
    faces: &[[u32; 3]],
) -> Vec<u8> {
    match format {
        MeshFormat::Obj => {
            let mut s = String::with_capacity(vertices.len() * 60 + faces.len() * 24);
            s.push_str("# posed hand mesh written by xhand\n");
            for (v, c) in vertices.iter().zip(colors) {
                let _ = writeln!(
                    s,
                    "v {} {} {} {:.4} {:.4} {:.4}",
                    v[0], v[1], v[2], c[0], c[1], c[2]
                );
            }
            for f in faces {
                let _ = writeln!(s, "f {} {} {}", f[0] + 1, f[1] + 1, f[2] + 1);
            }
            s.into_bytes()
        }
        MeshFormat::Ply => {
            let header = format!(
                "ply\nformat binary_little_endian 1.0\ncomment written by xhand\nelement vertex {}\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\nelement face {}\nproperty list uchar int vertex_indices\nend_header\n",
                vertices.len(),
                faces.len()
            );
            let mut b = header.into_bytes();
            for (v, c) in vertices.iter().zip(colors) {
                for x in v {
                    b.extend_from_slice(&x.to_le_bytes());
                }
                for x in c {
                    b.push((x.clamp(0.0, 1.0) * 255.0 + 0.5) as u8);
                }
            }
            for f in faces {
                b.push(3);
                for &i in f {
                    b.extend_from_slice(&(i as i32).to_le_bytes());
                }
            }
            b
        }
    }
}
