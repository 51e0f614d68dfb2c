//! netpol-nft: compiles the model for one node into one nftables table (`inet netpol`). Pure: it
//! produces text and never touches the kernel.
