fn main() -> std::process::ExitCode {
    sol::sol_zip::main()
}
