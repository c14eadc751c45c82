//! The `oms` binary: parses the command line and runs the server (see `oms::server`).

use clap::Parser;

/// mimalloc instead of the system allocator: the engine allocates and frees many small objects
/// from many threads (records, orders, messages), where glibc malloc's free-list consolidation
/// showed up as the top cost in profiles (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use oms::server::{Cli, init_logging, serve};

#[tokio::main]
async fn main() {
    let args = Cli::parse().serve_args();
    init_logging(args.log_format);
    if let Err(e) = serve(args).await {
        tracing::error!(error = %e, "oms cannot continue");
        eprintln!("oms: error: {e}");
        std::process::exit(e.exit_code());
    }
}
