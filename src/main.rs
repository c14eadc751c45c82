//! The `oms` binary: parses the command line and runs the server (see `oms::server`).

use clap::Parser;

/// mimalloc instead of the system allocator: the engine allocates and frees many small objects
/// from many threads (records, orders, messages), where glibc malloc's free-list consolidation
/// showed up as the top cost in profiles (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use oms::server::{Cli, Command, LogFormat, init_logging, read_model, serve};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let (format, result) = match cli.command {
        Some(Command::ReadModel(command)) => {
            init_logging(LogFormat::Text);
            abort_on_panic();
            (LogFormat::Text, read_model(command).await)
        }
        _ => {
            let args = cli.serve_args();
            let format = args.log_format;
            init_logging(format);
            abort_on_panic();
            (format, serve(args).await)
        }
    };
    if let Err(e) = result {
        // Said once, on stderr: as a log record when logs are JSON (a machine reads them),
        // else as a plain line (the log's own line would say it a second time).
        match format {
            LogFormat::Json => tracing::error!(error = %e, "oms cannot continue"),
            LogFormat::Text => eprintln!("oms: error: {e}"),
        }
        std::process::exit(e.exit_code());
    }
}

/// Crash-only (ARCHITECTURE.md, "Panics"): a panic is a bug whose damage cannot be bounded (an
/// actor's half-changed state, a durable record the feed never publishes), so the process
/// stops at once instead of serving on. The supervisor restarts it and recovery rebuilds the
/// state from the log. Release builds are compiled with `panic = "abort"`; this hook makes every
/// build abort, after the default hook has printed the message and its location.
fn abort_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        tracing::error!(panic = %info, "a panic is a bug: aborting; restart to recover from the log");
        std::process::abort();
    }));
}
