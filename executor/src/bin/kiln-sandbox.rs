//! The sandbox helper as a binary of its own, for the executor's tests and
//! benchmark (`Runtime::with_helper(env!("CARGO_BIN_EXE_kiln-sandbox"))`).
//! kiln itself re-executes its own binary instead.

fn main() {
    executor::run_if_requested();
    eprintln!("kiln-sandbox: this program is started by kiln's executor, not by hand");
    std::process::exit(2);
}
