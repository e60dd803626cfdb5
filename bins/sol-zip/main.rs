fn main() -> std::process::ExitCode {
    sol_zip::main()
}
