use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = baileys_janitor::cli::Cli::parse();
    // The crash tests' hook (core::fault): unset in production, where every point is a no-op.
    if let Some(spec) = std::env::var_os("BAILEYS_JANITOR_DEBUG_KILL_AT") {
        baileys_janitor::core::fault::arm(&spec.to_string_lossy());
    }
    baileys_janitor::main_with(cli).into()
}
