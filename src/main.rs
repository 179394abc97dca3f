//! The `xhand` binary: parses the command line and runs a subcommand of the library.

use clap::Parser;
use xhand::cli::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(cmd) => cmd.run(cli.cpu),
        None => xhand::cli::ViewCmd::default().with_defaults().run(cli.cpu),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
