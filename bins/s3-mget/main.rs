fn main() -> std::process::ExitCode {
    sol::s3_mget::main()
}
