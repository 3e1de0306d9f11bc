fn main() {
    std::process::exit(vss::run());
}
