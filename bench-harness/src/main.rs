use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use regent_bench::alloc::Counting;
use regent_bench::compare::{self, CompareArgs};
use regent_bench::duplicate::{self, DuplicateArgs};
use regent_bench::engine::{self, EngineArgs};
use regent_bench::instructions::{self, ChildArgs, InstructionsArgs};
use regent_bench::limits::{self, LimitsArgs};
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
    /// regent in a simulated runtime at scale: spawn, sends, broadcasts and churn, teardown
    Scale(ScaleArgs),
    /// regent beside the peer registries (dashmap, RwLock<HashMap>) on the same keys
    Engine(EngineArgs),
    /// regent's duplicate registries beside peer bags: dispatch, hot-key churn, memory
    Duplicate(DuplicateArgs),
    /// regent beside every peer (scc, papaya, flurry, dashmap, rwlock, Elixir's Registry)
    /// on every workload
    Compare(CompareArgs),
    /// This machine's dependent and independent random-access time over a table-sized array
    Limits(LimitsArgs),
    /// Instructions per operation of each Rust peer, counted by callgrind (needs valgrind)
    Instructions(InstructionsArgs),
    /// One phase of one peer, run by `instructions` under callgrind
    #[command(hide = true)]
    InstructionsChild(ChildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command.unwrap_or(Command::Scale(cli.scale)) {
        Command::Scale(args) => scale::run(&args),
        Command::Engine(args) => engine::run(&args),
        Command::Duplicate(args) => duplicate::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Limits(args) => limits::run(&args),
        Command::Instructions(args) => instructions::run(&args),
        Command::InstructionsChild(args) => instructions::child(&args).map(|()| PathBuf::new()),
    };
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
