fn main() -> std::process::ExitCode {
    tar_md5::main()
}
