fn main() -> std::process::ExitCode {
    s3_ls::main()
}
