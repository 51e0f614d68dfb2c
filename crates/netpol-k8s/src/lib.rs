//! netpol-k8s: the only crate that knows Kubernetes wire types. It loads manifests (files,
//! directories, stdin; YAML, JSON, Lists), decodes them strictly, validates and defaults them as
//! the API server does, and converts them to the `netpol-core` model.
