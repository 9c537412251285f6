//! The `gatehouse` binary: everything it does is `gatehouse::cli::main`.

fn main() -> std::process::ExitCode {
    gatehouse::cli::main()
}
