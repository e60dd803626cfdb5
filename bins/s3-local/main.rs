fn main() -> std::process::ExitCode {
    sol::s3_local::main()
}
