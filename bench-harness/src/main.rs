use std::process::ExitCode;

use clap::{Parser, Subcommand};
use regent_bench::alloc::Counting;
use regent_bench::engine::{self, EngineArgs};
use regent_bench::scale::{self, ScaleArgs};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Benchmarks for the regent process registry. Without a subcommand, runs `scale`.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    scale: ScaleArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// regent alone at runtime scale: register, look up, exit every process
    Scale(ScaleArgs),
    /// regent beside the peer registries (dashmap, RwLock<HashMap>) on the same keys
    Engine(EngineArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command.unwrap_or(Command::Scale(cli.scale)) {
        Command::Scale(args) => scale::run(&args),
        Command::Engine(args) => engine::run(&args),
    };
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
