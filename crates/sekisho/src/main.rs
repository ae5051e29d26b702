//! The `sekisho` binary: configuration, the admin CLI and wiring. Everything it does is also
//! available from the library crates.

mod app;
mod cli;
mod keys;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = <cli::Cli as clap::Parser>::parse();
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
