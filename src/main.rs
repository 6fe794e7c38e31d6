//! The `selfplay` command line. Everything happens in the library: see `selfplay::cli`.

fn main() -> std::process::ExitCode {
    selfplay::cli::main()
}
