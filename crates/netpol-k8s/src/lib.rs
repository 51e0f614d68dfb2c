//! netpol-k8s: the only crate that knows Kubernetes wire types. It loads manifests (files,
//! directories, stdin; YAML, JSON, Lists), decodes them strictly, validates and defaults them as
//! the API server does, and converts them to the `netpol-core` model. Besides NetworkPolicy,
//! the admin tiers: ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`),
//! AdminNetworkPolicy and BaselineAdminNetworkPolicy (`v1alpha1`), validated by their CRDs'
//! OpenAPI and CEL rules.
//!
//! Errors are reported like kubectl would report them, but with the file, line and column of the
//! offending key or value, the field path, and a hint. Objects that are fine keep loading when
//! others are rejected.
//!
//! What netpol reads (kinds, versions, fields) is one table, [`schema`]; the rule that makes a
//! VM, its instance and its launcher pods one workload is one function, [`fold`] (and a
//! controller and its Pods, [`fold::controllers`]). The agent uses
//! both directly (it watches and prunes by the schema, and folds what its sources hold).

mod de;
pub mod fold;
mod load;
mod render;
pub mod schema;
mod validate;
mod yaml;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use netpol_core::Cluster;

pub use fold::{
    fold_workloads, ControllerFold, ControllerFolding, Fold, FoldReason, Folding, Owner,
};
pub use render::render_manifests;

/// What to do with unknown and duplicate fields, like `kubectl --validate=strict|warn|ignore`.
/// Type errors and API validation errors always reject the object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ValidationMode {
    /// Reject the object (an error diagnostic per field).
    #[default]
    Strict,
    /// Keep the object without the field, with a warning.
    Warn,
    /// Keep the object without the field, silently.
    Ignore,
}

/// Options of [`load_paths`] and [`load_str`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// What unknown and duplicate fields do.
    pub validation: ValidationMode,
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The object (or file) was rejected.
    Error,
    /// The object loaded, but maybe not as its author meant.
    Warning,
    /// Information: something was skipped or folded, as intended.
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// What a diagnostic is about, for callers that act on some of them (the text is for people).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// Any diagnostic without a kind of its own.
    #[default]
    Other,
    /// Objects use a namespace that no loaded Namespace defines; it is assumed to exist with only
    /// its `kubernetes.io/metadata.name` label. `object` is `Namespace NAME`.
    UndefinedNamespace,
    /// A VirtualMachineInstance or virt-launcher Pod was folded into its VM, or a Pod, ReplicaSet
    /// or Job into its controller (see [`fold`]).
    Folded,
    /// A field the schema does not know (often one under the wrong parent); dropped in warn
    /// mode, rejecting the object in strict mode. `field_path` and `hint` say where it belongs.
    UnknownField,
    /// A field given twice; in warn mode the later value is used.
    DuplicateField,
}

/// One message about the input, pointing at the file, line and column it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// What it is about, for programs.
    pub kind: DiagnosticKind,
    /// The path as given (or found in a directory), `-` for standard input.
    pub file: String,
    /// 1-based; 0 when the message is about the whole file (it could not be read).
    pub line: usize,
    /// 1-based; 0 together with `line`.
    pub column: usize,
    /// `NetworkPolicy test-project/allow-x`, `Namespace foo`, ...
    pub object: Option<String>,
    /// `spec.egress[0].to[0].ports`
    pub field_path: Option<String>,
    /// What is wrong, in the API server's words where it has some.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic of no particular kind, without object, field path or hint.
    pub(crate) fn at(severity: Severity, file: &str, pos: yaml::Pos, message: String) -> Self {
        Diagnostic {
            severity,
            kind: DiagnosticKind::Other,
            file: file.to_string(),
            line: pos.line,
            column: pos.col,
            object: None,
            field_path: None,
            message,
            hint: None,
        }
    }

    pub(crate) fn object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    pub(crate) fn field(mut self, path: impl Into<String>) -> Self {
        self.field_path = Some(path.into());
        self
    }

    /// The field path, unless it is the object's root (empty).
    pub(crate) fn field_unless_root(mut self, path: String) -> Self {
        self.field_path = if path.is_empty() { None } else { Some(path) };
        self
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    pub(crate) fn kind(mut self, kind: DiagnosticKind) -> Self {
        self.kind = kind;
        self
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: error: Object ns/name: message at field.path`, then `  hint: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {}: ", self.severity)?;
        if let Some(o) = &self.object {
            write!(f, "{o}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(p) = &self.field_path {
            if !self.message.contains(p.as_str()) {
                write!(f, " at {p}")?;
            }
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// The result of loading: the cluster made of every object that loaded, and every diagnostic.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The objects that loaded.
    pub cluster: Cluster,
    /// Every message, in input order (cross-object ones last).
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// Whether any diagnostic is an error (some object or file was rejected).
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Loads files, directories (recursively: files ending `.yaml`, `.yml` or `.json`, in sorted
/// order) and `-` (standard input). A path that cannot be read is an error diagnostic; the others
/// still load.
pub fn load_paths(paths: &[impl AsRef<Path>], opts: &LoadOptions) -> Loaded {
    let mut loader = load::Loader::new(*opts);
    for p in paths {
        let p = p.as_ref();
        if p == Path::new("-") {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => load_text(&mut loader, "-", &text),
                Err(e) => loader.file_error(
                    "-",
                    yaml::Pos::default(),
                    format!("cannot read standard input: {e}"),
                ),
            }
            continue;
        }
        let mut files = Vec::new();
        let mut visited = Vec::new();
        collect(p, true, &mut files, &mut visited, &mut loader);
        for f in files {
            let name = f.display().to_string();
            match std::fs::read(&f) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => load_text(&mut loader, &name, &text),
                    Err(_) => {
                        loader.file_error(&name, yaml::Pos::default(), "not UTF-8 text".to_string())
                    }
                },
                Err(e) => {
                    loader.file_error(&name, yaml::Pos::default(), format!("cannot read: {e}"))
                }
            }
        }
    }
    finish(loader)
}

/// Loads one text (a file's content, or standard input) named `source_name` in diagnostics.
pub fn load_str(source_name: &str, text: &str, opts: &LoadOptions) -> Loaded {
    let mut loader = load::Loader::new(*opts);
    load_text(&mut loader, source_name, text);
    finish(loader)
}

/// Loads several texts (`(source name, text)`, e.g. files read from a git revision) as one
/// input, like [`load_paths`] loads several files.
pub fn load_texts<'a>(
    texts: impl IntoIterator<Item = (&'a str, &'a str)>,
    opts: &LoadOptions,
) -> Loaded {
    load_texts_in_namespace(texts, opts, "default")
}

/// [`load_texts`], with namespaced objects that have no `metadata.namespace` in `namespace`
/// instead of `default`: what `kubectl apply -n NAMESPACE` (or with a context whose namespace it
/// is) would create from the texts.
pub fn load_texts_in_namespace<'a>(
    texts: impl IntoIterator<Item = (&'a str, &'a str)>,
    opts: &LoadOptions,
    namespace: &str,
) -> Loaded {
    let mut loader = load::Loader::new(*opts).in_namespace(namespace);
    for (name, text) in texts {
        load_text(&mut loader, name, text);
    }
    finish(loader)
}

/// The objects of one text as they are, before the steps that need every object: no VM folding
/// (see [`fold`]) and no implicit namespaces. For callers that assemble many texts and then fold
/// once, like the agent's store (folding each text on its own first could fold differently).
pub fn load_fragment(source_name: &str, text: &str, opts: &LoadOptions) -> Loaded {
    load_fragment_in_namespace(source_name, text, opts, "default")
}

/// [`load_fragment`], with namespaced objects that have no `metadata.namespace` in `namespace`
/// (see [`load_texts_in_namespace`]).
pub fn load_fragment_in_namespace(
    source_name: &str,
    text: &str,
    opts: &LoadOptions,
    namespace: &str,
) -> Loaded {
    let mut loader = load::Loader::new(*opts).in_namespace(namespace);
    load_text(&mut loader, source_name, text);
    let (cluster, diagnostics) = loader.objects();
    Loaded {
        cluster,
        diagnostics,
    }
}

fn finish(loader: load::Loader) -> Loaded {
    let (cluster, diagnostics) = loader.finish();
    Loaded {
        cluster,
        diagnostics,
    }
}

fn load_text(loader: &mut load::Loader, name: &str, text: &str) {
    // A UTF-8 byte order mark is legal at the start of YAML and JSON files from some editors.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (text, tabs) = yaml::go_yaml_tabs(text);
    for pos in tabs {
        loader.tab_warning(name, pos);
    }
    let error = yaml::for_each_document(&text, |doc| loader.document(name, &doc));
    if let Some((pos, message)) = error {
        loader.file_error(name, pos, format!("cannot parse YAML: {message}"));
    }
}

fn is_manifest(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn collect(
    p: &Path,
    explicit: bool,
    files: &mut Vec<PathBuf>,
    visited: &mut Vec<PathBuf>,
    loader: &mut load::Loader,
) {
    let name = p.display().to_string();
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(e) => {
            loader.file_error(&name, yaml::Pos::default(), format!("cannot read: {e}"));
            return;
        }
    };
    if !meta.is_dir() {
        if explicit || is_manifest(p) {
            files.push(p.to_path_buf());
        }
        return;
    }
    // Symlinked directories could loop.
    if let Ok(canonical) = std::fs::canonicalize(p) {
        if visited.contains(&canonical) {
            return;
        }
        visited.push(canonical);
    }
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(p) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            loader.file_error(
                &name,
                yaml::Pos::default(),
                format!("cannot read directory: {e}"),
            );
            return;
        }
    };
    entries.sort();
    for e in entries {
        collect(&e, false, files, visited, loader);
    }
}
