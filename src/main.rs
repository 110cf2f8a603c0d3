//! The `taskscope` binary: parse arguments, run, print one error line and
//! pick the exit code in one place.
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;
use taskscope::cli::{Cli, exit};
use taskscope::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo target is a target, not a viewer: it keeps glibc's defaults.
    if !matches!(cli.command, taskscope::cli::Command::DemoTarget(_)) {
        taskscope::malloc::tune();
    }
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!(
                "taskscope: error: {}",
                taskscope::text::sanitize(&msg, 2000)
            );
            ExitCode::from(exit::USAGE)
        }
    }
}
