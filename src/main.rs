//! warroom's entry point: error reporting, TLS provider, CLI dispatch. Nothing else.

use std::process::ExitCode;

use clap::Parser;
use warroom::cli::{self, Cli, Command};

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("warroom: cannot install error reporting: {e}");
    }
    // Over color-eyre's: a panic anywhere gives the terminal back and ends warroom.
    warroom::panics::install();
    // kube and reqwest both use rustls; exactly one process-wide provider avoids the
    // "cannot determine the CryptoProvider" panic on the first TLS connection.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // warroom honours NO_COLOR itself (ui::no_color) and keeps bold and reverse; crossterm's
    // own handling writes a colour change as a bare `ESC[m`, which resets bold and reverse too.
    crossterm::style::Colored::set_ansi_color_disabled(false);
    let cli = Cli::parse();
    // Commands that run for a while log to a file; the screen is the console's.
    let _log = match cli.command {
        Command::Demo(_)
        | Command::Run(_)
        | Command::Sim(_)
        | Command::Watch(_)
        | Command::Rehearse(_) => match warroom::logging::init(cli.log_level.as_deref()) {
            Ok(guard) => Some(guard),
            Err(e) => {
                eprintln!("warroom: warning: no log file: {e}");
                None
            }
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warroom: cannot start the async runtime: {e}");
            return ExitCode::from(cli::exit::FAILURE);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => cli::demo(args).await,
            Command::Run(args) => cli::run(args).await,
            Command::Sim(args) => cli::sim(args).await,
            Command::Validate(args) => cli::validate(args),
            Command::Schema => cli::schema(),
            Command::Report(args) => cli::report(args),
            Command::Watch(args) => cli::watch(args).await,
            Command::Rehearse(args) => cli::rehearse(args).await,
        }
    });
    // Source tasks may still be waiting on sockets; they hold nothing worth waiting for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}
