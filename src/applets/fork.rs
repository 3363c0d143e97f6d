//! Hidden applets the daemon re-executes itself as, so that no fork happens inside its async
//! runtime: `forkstart <run dir>` (a container's monitor) and `forkexec <run dir> <request>`
//! (one command inside a container).

use std::process::ExitCode;

pub fn forkstart(_name: &str, args: Vec<String>) -> ExitCode {
    let [run_dir] = args.as_slice() else {
        eprintln!("Usage: rxd forkstart <run dir> (internal; started by the daemon)");
        return ExitCode::from(2);
    };
    ExitCode::from(rxd::instance::monitor::run(std::path::Path::new(run_dir)) as u8)
}

pub fn forkexec(_name: &str, args: Vec<String>) -> ExitCode {
    let [run_dir, request] = args.as_slice() else {
        eprintln!("Usage: rxd forkexec <run dir> <request> (internal; started by the daemon)");
        return ExitCode::from(2);
    };
    let request: rxd::instance::exec::ExecRequest = match serde_json::from_str(request) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: bad exec request: {e}");
            return ExitCode::from(2);
        }
    };
    let code = rxd::instance::exec::helper(std::path::Path::new(run_dir), &request);
    ExitCode::from(code.clamp(0, 255) as u8)
}
