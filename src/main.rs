//! The `gatehouse` binary: the headless daemon (`serve`), the built-in demo
//! MCP server, and the CLI that drives a running Gatehouse.

fn main() -> std::process::ExitCode {
    gatehouse::cli::main()
}
