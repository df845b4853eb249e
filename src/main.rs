#![forbid(unsafe_code)]

//! The command line: argument handling and printing around the `disasterpiece` library, and
//! the embedded simulated cluster (`disasterpiece-sim`) for `demo` and `sim`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
