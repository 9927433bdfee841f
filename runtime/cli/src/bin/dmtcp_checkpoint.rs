//! `dmtcp_checkpoint`: DMTCP's deprecated name for `dmtcp_launch`.

fn main() {
    eprintln!("dmtcp_checkpoint: deprecated, use dmtcp_launch (same options)");
    dmtcp_cli::launch::main();
}
