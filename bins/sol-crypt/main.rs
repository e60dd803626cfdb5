fn main() -> std::process::ExitCode {
    sol::sol_crypt::main()
}
