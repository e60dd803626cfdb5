fn main() -> std::process::ExitCode {
    sol_index::main()
}
