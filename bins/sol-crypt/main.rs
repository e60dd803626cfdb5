fn main() -> std::process::ExitCode {
    sol_crypt::main()
}
