//! The `gatehouse` binary: the headless daemon (`serve`), the built-in demo
//! MCP server, and the CLI that drives a running Gatehouse.

mod bridge;
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
