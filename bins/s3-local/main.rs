fn main() -> std::process::ExitCode {
    s3_local::main()
}
