//! The `okrsync` binary: everything lives in the library; see `okrsync --help`.

fn main() -> std::process::ExitCode {
    okrsync::cli::main()
}
