fn main() -> std::process::ExitCode {
    sol_jobs::main()
}
