fn main() {
    std::process::exit(etop::app::main());
}
