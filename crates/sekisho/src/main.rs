//! The `sekisho` binary: configuration, the admin CLI and wiring. Everything it does is also
//! available from the library crates.

mod app;
mod cli;
mod keys;
mod listen;
mod memory;

use std::process::ExitCode;

fn main() -> ExitCode {
    memory::return_large_blocks_to_the_system();
    let cli = match <cli::Cli as clap::Parser>::try_parse() {
        Ok(cli) => cli,
        // Help and version go out in full; usage errors are one line, like every failure.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let msg = e.to_string();
            let reason: Vec<&str> = msg
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let reason = reason.join(" ");
            eprintln!(
                "sekisho: {} (see sekisho --help)",
                reason.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sekisho: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, never a secret: errors carry key names and paths, not values.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("sekisho: {msg}");
            ExitCode::FAILURE
        }
    }
}
