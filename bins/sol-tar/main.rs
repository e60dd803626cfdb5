fn main() -> std::process::ExitCode {
    sol::sol_tar::main()
}
