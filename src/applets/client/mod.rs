pub fn main(_n: &str, _a: Vec<String>) -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
