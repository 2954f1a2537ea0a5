//! `niping`: SAP's NI test program (server, client, self test); see `saprouter::niping`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(saprouter::niping::main(&args));
}
