#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    disasterpiece::cli::main()
}
