use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = baileys_janitor::cli::Cli::parse();
    baileys_janitor::main_with(cli).into()
}
