//! The multi-call entry point: `basename(argv[0])` picks the applet (`lxd` or `lxc`); invoked
//! as `rxd`, the first argument does. Hidden internal applets used for re-exec live in the same
//! table.

mod applets;

use std::process::ExitCode;

type Applet = fn(&str, Vec<String>) -> ExitCode;

const APPLETS: &[(&str, Applet)] = &[
    ("lxd", applets::daemon::main),
    ("lxc", applets::client::main),
    // Internal: the daemon re-executes itself as these (see src/applets/fork.rs).
    ("forkstart", applets::fork::forkstart),
    ("forkexec", applets::fork::forkexec),
];

fn usage() -> String {
    let mut s = String::from(
        "rxd: an LXD-compatible clustered system-container manager\n\n\
         Usage: rxd <applet> [args...]   or invoke through a symlink named after the applet\n\n\
         Applets:\n",
    );
    s.push_str("  lxd    the daemon and its offline admin tool (lxd --help)\n");
    s.push_str("  lxc    the command line client (lxc --help)\n");
    s
}

fn main() -> ExitCode {
    rxd::tls::install_default_provider();
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    let mut name = std::path::Path::new(&argv0).file_name().and_then(|n| n.to_str()).unwrap_or("rxd").to_string();
    if !APPLETS.iter().any(|(n, _)| *n == name) {
        args.remove(0);
        match args.first().map(String::as_str) {
            None | Some("--help") | Some("-h") | Some("help") => {
                print!("{}", usage());
                return if args.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS };
            }
            Some("--version") => {
                println!("{}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            Some(first) => name = first.to_string(),
        }
    }
    match APPLETS.iter().find(|(n, _)| *n == name) {
        Some((n, run)) => run(n, args.into_iter().skip(1).collect()),
        None => {
            eprintln!("Error: unknown applet \"{name}\" (known: lxd, lxc; see rxd --help)");
            ExitCode::from(2)
        }
    }
}
