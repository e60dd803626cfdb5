fn main() -> std::process::ExitCode {
    s3_mget::main()
}
