pub mod cli {
    #[derive(clap::Parser)]
    #[command(name = "tar-md5", version)]
    pub struct Cli {}
    pub const EXTRA_MAN: &str = "";
}
pub fn main() -> std::process::ExitCode { std::process::ExitCode::SUCCESS }
