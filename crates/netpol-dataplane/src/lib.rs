//! netpol-dataplane: the only crate that touches the kernel. It applies nftables rulesets
//! atomically, reads them back, and builds the lab (network namespaces, veths, listeners, probes).
