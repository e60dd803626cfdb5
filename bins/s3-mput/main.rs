fn main() -> std::process::ExitCode {
    s3_mput::main()
}
