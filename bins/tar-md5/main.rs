fn main() -> std::process::ExitCode {
    sol::tar_md5::main()
}
