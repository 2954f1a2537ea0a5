//! `saprouter`: SAP's command line, letter for letter. Start functions (`-r`, `-i`) run the
//! daemon; the lower-case admin functions talk to a running router. The command line is
//! read and run by `saprouter::cli`; this file only parses, answers what needs no runtime,
//! and runs the rest.

#[path = "saprouter/alloc.rs"]
mod alloc;

use std::process::ExitCode;

use saprouter::cli::{check, command, explain, run, Invocation};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let request = match Invocation::parse(&args) {
        Ok(Invocation::Help) => {
            print!("{}", command::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("{}", command::version_text());
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Check) => return ExitCode::from(check::main(&args)),
        Ok(Invocation::Explain) => return ExitCode::from(explain::main(&args)),
        Ok(Invocation::Run(request)) => request,
        Err(err) => return err.report(),
    };
    alloc::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("saprouter: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run::run(request))
}
