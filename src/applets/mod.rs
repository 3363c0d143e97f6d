//! Thin front-ends: argv → a call into the library, output, exit code.

mod admin;
pub mod client;
pub mod daemon;
pub mod fork;
mod init;

use std::process::ExitCode;

/// Parses `args` for applet `name` with argh, printing help or errors as argh does.
pub fn parse<T: argh::FromArgs>(name: &str, args: &[String]) -> Result<T, ExitCode> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    T::from_args(&[name], &refs).map_err(|e| {
        if e.status.is_ok() {
            println!("{}", e.output);
            ExitCode::SUCCESS
        } else {
            eprintln!("{}", e.output);
            ExitCode::from(1)
        }
    })
}

/// A multi-threaded runtime sized for this machine.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("Error: failed to start the async runtime: {e}");
        ExitCode::from(1)
    })
}

/// Prints `Error: <e>` and returns exit status 1, as LXD's tools do.
pub fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("Error: {e}");
    ExitCode::from(1)
}
