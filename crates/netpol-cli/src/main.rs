//! netpol: the command-line front end. Thin: parsing arguments, calling the library crates,
//! printing.

fn main() {
    println!("netpol");
}
