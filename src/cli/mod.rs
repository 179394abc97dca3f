//! The `xhand` command line: one file per subcommand, each with `run(&self)`.

mod bake_default;
mod bench;
mod common;
mod convert_poses;
mod eval;
mod export_mesh;
mod import;
mod info;
mod make_test_avatar;
mod render;
mod view;

use clap::{Parser, Subcommand};

pub use common::{AvatarArgs, CameraArgs, NetsArgs, PoseArgs};
pub use view::ViewCmd;

/// Viewer and toolkit for XHand neural hand avatars.
#[derive(Debug, Parser)]
#[command(name = "xhand", version, about, long_about = None)]
pub struct Cli {
    /// Run the networks on the CPU even when a GPU build is available.
    #[arg(long, global = true)]
    pub cpu: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an avatar file (or an XHand checkpoint with --mano) and summarise it.
    Info(info::InfoCmd),
    /// Convert an XHand checkpoint (model.pth) and its MANO file into an avatar file.
    Import(import::ImportCmd),
    /// Evaluate the networks and skinning for one pose and write the results (safetensors).
    Eval(eval::EvalCmd),
    /// Render frames to PNG with the CPU reference renderer.
    Render(render::RenderCmd),
    /// Write the posed mesh with per-vertex colours (OBJ or PLY).
    ExportMesh(export_mesh::ExportMeshCmd),
    /// Convert a pose file to xhand pose JSON or MANO parameters (.npz).
    ConvertPoses(convert_poses::ConvertPosesCmd),
    /// Time every stage of a frame.
    Bench(bench::BenchCmd),
    /// Open the viewer window (the default without a subcommand).
    View(view::ViewCmd),
    /// Write a synthetic avatar with random networks, for testing.
    MakeTestAvatar(make_test_avatar::MakeTestAvatarCmd),
    /// Build the default avatar from the bundled MIT-licensed hand (trains its networks).
    BakeDefault(bake_default::BakeDefaultCmd),
}

impl Command {
    /// Runs the subcommand.
    pub fn run(&self, force_cpu: bool) -> anyhow::Result<()> {
        match self {
            Command::Info(c) => c.run(force_cpu),
            Command::Import(c) => c.run(force_cpu),
            Command::Eval(c) => c.run(force_cpu),
            Command::Render(c) => c.run(force_cpu),
            Command::ExportMesh(c) => c.run(force_cpu),
            Command::ConvertPoses(c) => c.run(force_cpu),
            Command::Bench(c) => c.run(force_cpu),
            Command::MakeTestAvatar(c) => c.run(force_cpu),
            Command::BakeDefault(c) => c.run(force_cpu),
            Command::View(c) => c.run(force_cpu),
        }
    }
}
