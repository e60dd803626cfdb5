fn main() -> std::process::ExitCode {
    sol::s3_mput::main()
}
