//! The `eddy` binary: parse the command line and hand over to [`eddy::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    eddy::cli::main()
}
