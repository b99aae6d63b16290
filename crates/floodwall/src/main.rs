//! The `floodwall` command: a thin front end over the library crates.

mod cli;

fn main() {
    if let Err(error) = cli::run() {
        eprintln!("floodwall: {error:#}");
        std::process::exit(1);
    }
}
