fn main() -> std::process::ExitCode {
    sol_tar::main()
}
