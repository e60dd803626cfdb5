fn main() -> std::process::ExitCode {
    sol::s3_ls::main()
}
