//! The last good version of every object the Kubernetes API source holds, kept on disk so that
//! it survives a restart.
//!
//! Why: the API server validates NetworkPolicies, but a VM CRD's status can hold anything (an
//! address that does not parse, say). While the agent runs, an object that turns invalid keeps
//! its last good version in the store; without a file, a restart at that moment would lose it
//! and the object would drop out of enforcement (a VM peer that was allowed becomes denied).
//!
//! The file (`kube-last-good.json` in the configured directory) holds, per source and object
//! key, the pruned JSON of the object's last version that converted. It is only a fallback: an
//! object is taken from it only when the API serves the same key in a version that does not
//! convert, so the file never brings back an object the API no longer has. It is written
//! atomically (temporary file and rename) at most once per `SAVE_INTERVAL` while anything
//! changed; an unreadable file is reported and ignored (an empty fallback, never a failure).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The file's name inside the state directory.
pub const FILE_NAME: &str = "kube-last-good.json";

/// How often changed last good versions are written out (at most).
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// The format version written in the file; a file of another version is ignored.
const VERSION: u64 = 1;

type Objects = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Default)]
struct Inner {
    /// source -> object key -> pruned JSON text of the last good version.
    objects: Objects,
    /// Changed since the last save.
    dirty: bool,
}

/// The last good versions, in memory and (when a directory is configured) on disk.
#[derive(Default)]
pub struct LastGood {
    path: Option<PathBuf>,
    inner: Mutex<Inner>,
}

impl LastGood {
    /// Keeps nothing: no directory configured (last good versions live only in the store).
    pub fn disabled() -> Self {
        LastGood::default()
    }

    /// Reads the state file of `dir` (creating the directory if needed). Problems are logged
    /// and leave an empty fallback: a missing or broken file must never stop enforcement.
    pub fn open(dir: &Path) -> Self {
        let path = dir.join(FILE_NAME);
        if let Err(error) = std::fs::create_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), %error, "cannot create the state directory; last good versions will not survive a restart");
        }
        let objects = match std::fs::read_to_string(&path) {
            Ok(text) => match parse(&text) {
                Ok(objects) => {
                    let n: usize = objects.values().map(BTreeMap::len).sum();
                    tracing::info!(file = %path.display(), objects = n, "read the last good versions of the previous run");
                    objects
                }
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "ignoring an unreadable state file");
                    Objects::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Objects::new(),
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "cannot read the state file; ignoring it");
                Objects::new()
            }
        };
        LastGood {
            path: Some(path),
            inner: Mutex::new(Inner {
                objects,
                dirty: false,
            }),
        }
    }

    /// The state file, when one is kept.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers `text` as the last good version of `key` of `source`.
    pub fn record(&self, source: &str, key: &str, text: &str) {
        if self.path.is_none() {
            return;
        }
        let mut inner = self.lock();
        let entries = inner.objects.entry(source.to_string()).or_default();
        if entries.get(key).map(String::as_str) != Some(text) {
            entries.insert(key.to_string(), text.to_string());
            inner.dirty = true;
        }
    }

    /// Forgets `key` of `source` (the object was deleted).
    pub fn forget(&self, source: &str, key: &str) {
        let mut inner = self.lock();
        let removed = inner
            .objects
            .get_mut(source)
            .and_then(|e| e.remove(key))
            .is_some();
        inner.dirty |= removed;
    }

    /// The last good version of `key` of `source`, if one is known.
    pub fn get(&self, source: &str, key: &str) -> Option<String> {
        self.lock()
            .objects
            .get(source)
            .and_then(|e| e.get(key))
            .cloned()
    }

    /// Replaces everything known of `source` (a completed relist: objects it did not list are
    /// gone from the API).
    pub fn replace_source(&self, source: &str, entries: BTreeMap<String, String>) {
        if self.path.is_none() {
            return;
        }
        let mut inner = self.lock();
        if inner.objects.get(source) != Some(&entries) {
            inner.objects.insert(source.to_string(), entries);
            inner.dirty = true;
        }
    }

    /// Writes the file if anything changed since the last save; `Ok(true)` when written.
    pub fn save_if_dirty(&self) -> std::io::Result<bool> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let text = {
            let mut inner = self.lock();
            if !inner.dirty {
                return Ok(false);
            }
            inner.dirty = false;
            render(&inner.objects)
        };
        let result = write_atomic(path, &text);
        if result.is_err() {
            // Try again at the next save.
            self.lock().dirty = true;
        }
        result.map(|()| true)
    }
}

/// `{"version":1,"sources":{"kube:pods":{"a/p1":{...}}}}`; the objects are written as the JSON
/// they are (each text is already valid JSON), not as strings.
fn render(objects: &Objects) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = format!("{{\"version\":{VERSION},\"sources\":{{");
    for (i, (source, entries)) in objects.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(source));
        out.push_str(":{");
        for (j, (key, text)) in entries.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&quote(key));
            out.push(':');
            out.push_str(text);
        }
        out.push('}');
    }
    out.push_str("}}\n");
    out
}

fn parse(text: &str) -> Result<Objects, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))?;
    if value["version"].as_u64() != Some(VERSION) {
        return Err(format!(
            "field `version`: expected {VERSION}, found {}",
            value["version"]
        ));
    }
    let sources = value["sources"]
        .as_object()
        .ok_or("field `sources`: not an object")?;
    let mut objects = Objects::new();
    for (source, entries) in sources {
        let entries = entries
            .as_object()
            .ok_or_else(|| format!("field `sources.{source}`: not an object"))?;
        objects.insert(
            source.clone(),
            entries
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect(),
        );
    }
    Ok(objects)
}

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    // The rename must not expose a file whose content is not on disk yet (a node crash).
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_good_versions_survive_a_reopen_and_forgotten_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let lg = LastGood::open(dir.path());
        lg.record("kube:vms", "a/vm1", r#"{"kind":"VirtualMachine","n":1}"#);
        lg.record("kube:vms", "a/vm2", r#"{"kind":"VirtualMachine","n":2}"#);
        lg.forget("kube:vms", "a/vm2");
        assert!(lg.save_if_dirty().unwrap());
        assert!(!lg.save_if_dirty().unwrap(), "nothing changed since");
        let again = LastGood::open(dir.path());
        assert_eq!(
            again.get("kube:vms", "a/vm1").as_deref(),
            Some(r#"{"kind":"VirtualMachine","n":1}"#)
        );
        assert_eq!(again.get("kube:vms", "a/vm2"), None);
    }

    #[test]
    fn a_broken_state_file_is_ignored_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "{\"version\":1,\n\"sources\":[").unwrap();
        assert_eq!(LastGood::open(dir.path()).get("kube:vms", "a/vm1"), None);
        let error = parse("{\"version\":1,\n\"sources\":[").unwrap_err();
        assert!(error.starts_with("line 2"), "{error}");
        assert!(parse(r#"{"version":9,"sources":{}}"#)
            .unwrap_err()
            .contains("version"));
    }

    #[test]
    fn a_disabled_store_of_last_good_versions_keeps_nothing() {
        let lg = LastGood::disabled();
        lg.record("kube:vms", "a/vm1", "{}");
        assert_eq!(lg.get("kube:vms", "a/vm1"), None);
        assert!(!lg.save_if_dirty().unwrap());
    }
}
