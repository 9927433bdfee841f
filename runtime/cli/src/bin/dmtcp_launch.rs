//! `dmtcp_launch`: start a program under checkpoint control (see `dmtcp_cli::launch`).

fn main() {
    dmtcp_cli::launch::main();
}
