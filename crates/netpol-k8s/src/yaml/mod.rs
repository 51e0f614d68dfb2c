//! A positioned YAML tree built from saphyr-parser events, so that every mapping key and every
//! value knows its line and column. Plain scalars resolve like kubectl's YAML reader
//! (sigs.k8s.io/yaml on go-yaml v2, YAML 1.1): `yes`/`on`/`y` are booleans, `0x1f` is an integer.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, Span};

mod scalar;
mod tabs;

use scalar::resolve;
pub(crate) use scalar::resolve_plain;
pub(crate) use tabs::go_yaml_tabs;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

/// A resolved scalar. Non-string variants keep their source text for messages.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar {
    Str(String),
    Null(String),
    Bool(bool, String),
    Int(i64, String),
    Float(f64, String),
}

#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Map {
    pub entries: Vec<(Key, Node)>,
    /// Keys that appeared more than once: name and position of the later occurrence. The later
    /// value is the one kept in `entries`, as the API server's JSON decoding does.
    pub dups: Vec<(String, Pos)>,
}

impl Map {
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Map),
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

impl Node {
    pub fn null_at(pos: Pos) -> Node {
        Node {
            pos,
            kind: Kind::Scalar(Scalar::Null(String::new())),
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Scalar(Scalar::Null(_)))
    }

    /// `self[name]` when `self` is a mapping.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.as_map().and_then(|m| m.get(name))
    }

    /// A string field, if present and a string.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Node::as_str)
    }

    /// A short description of the node's type for messages: `bool (yes)`, `list`, ...
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Scalar(Scalar::Str(s)) => format!("string {s:?}"),
            Kind::Scalar(Scalar::Null(_)) => "null".to_string(),
            Kind::Scalar(Scalar::Bool(_, raw)) => format!("bool ({raw})"),
            Kind::Scalar(Scalar::Int(_, raw)) => format!("integer ({raw})"),
            Kind::Scalar(Scalar::Float(_, raw)) => format!("number ({raw})"),
            Kind::Seq(_) => "list".to_string(),
            Kind::Map(_) => "object".to_string(),
        }
    }

    fn size(&self) -> usize {
        match &self.kind {
            Kind::Scalar(_) => 1,
            Kind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Kind::Map(m) => 1 + m.entries.iter().map(|(_, v)| 1 + v.size()).sum::<usize>(),
        }
    }
}

/// The documents of one YAML stream, and the error that stopped parsing, if any. Documents
/// completed before the error are kept (kubectl also acts on the documents before a broken one).
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub docs: Vec<Node>,
    pub error: Option<(Pos, String)>,
}

/// Deeper nesting is refused: no Kubernetes object needs it, and it bounds every recursion
/// over the tree (decoding, cloning, dropping).
pub(crate) const MAX_DEPTH: usize = 128;
/// Cap on nodes produced by alias expansion, against "billion laughs" documents.
const MAX_ALIAS_NODES: usize = 1_000_000;

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        map: Map,
        key: Option<Key>,
        merges: Vec<Node>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, (Node, usize)>,
    alias_budget: usize,
}

type BuildResult = Result<(), (Pos, String)>;

impl Builder {
    fn new() -> Self {
        Builder {
            stack: Vec::new(),
            root: None,
            anchors: HashMap::new(),
            alias_budget: MAX_ALIAS_NODES,
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            let size = node.size();
            self.anchors.insert(anchor, (node.clone(), size));
        }
    }

    fn push_value(&mut self, node: Node) -> BuildResult {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map {
                map, key, merges, ..
            }) => match key.take() {
                None => {
                    let name = match node.kind {
                        Kind::Scalar(Scalar::Str(s)) => s,
                        Kind::Scalar(Scalar::Null(raw))
                        | Kind::Scalar(Scalar::Bool(_, raw))
                        | Kind::Scalar(Scalar::Int(_, raw))
                        | Kind::Scalar(Scalar::Float(_, raw)) => raw,
                        Kind::Seq(_) | Kind::Map(_) => {
                            return Err((
                                node.pos,
                                "a list or object as a mapping key is not supported".to_string(),
                            ))
                        }
                    };
                    *key = Some(Key {
                        name,
                        pos: node.pos,
                    });
                    Ok(())
                }
                Some(k) => {
                    if k.name == "<<" {
                        // A YAML merge key: go-yaml v2 (and so kubectl) supports it.
                        merges.push(node);
                        return Ok(());
                    }
                    insert_entry(map, k, node);
                    Ok(())
                }
            },
        }
    }

    fn event(&mut self, ev: Event<'_>, span: &Span) -> BuildResult {
        let pos = Pos::from_span(span);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    pos,
                    kind: Kind::Scalar(resolve(text, style, tag.as_deref())),
                };
                self.remember(anchor, &node);
                self.push_value(node)
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos)?;
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    map: Map::default(),
                    key: None,
                    merges: Vec::new(),
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(pos),
            Event::Alias(id) => self.alias(id, pos),
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => Ok(()),
        }
    }

    /// Ends the innermost sequence or mapping (applying its `<<` merges) and hands the
    /// finished node to its parent.
    fn close(&mut self, pos: Pos) -> BuildResult {
        let (node, anchor) = match self.stack.pop() {
            Some(Frame::Seq { pos, anchor, items }) => (
                Node {
                    pos,
                    kind: Kind::Seq(items),
                },
                anchor,
            ),
            Some(Frame::Map {
                pos,
                anchor,
                mut map,
                merges,
                ..
            }) => {
                apply_merges(&mut map, merges, pos)?;
                (
                    Node {
                        pos,
                        kind: Kind::Map(map),
                    },
                    anchor,
                )
            }
            None => return Err((pos, "unbalanced YAML events".to_string())),
        };
        self.remember(anchor, &node);
        self.push_value(node)
    }

    /// Expands an alias to a copy of its anchored node, within the alias budget.
    fn alias(&mut self, id: usize, pos: Pos) -> BuildResult {
        let Some((node, size)) = self.anchors.get(&id) else {
            return Err((pos, "alias to an unknown anchor".to_string()));
        };
        if *size > self.alias_budget {
            return Err((
                pos,
                "aliases expand to too many nodes (more than 1,000,000)".to_string(),
            ));
        }
        self.alias_budget -= size;
        let node = node.clone();
        self.push_value(node)
    }

    fn open(&self, pos: Pos) -> BuildResult {
        if self.stack.len() >= MAX_DEPTH {
            return Err((
                pos,
                format!("nesting deeper than {MAX_DEPTH} levels is not supported"),
            ));
        }
        Ok(())
    }
}

fn insert_entry(map: &mut Map, key: Key, value: Node) {
    // Linear search: manifest mappings are small, and this keeps the common path allocation-free.
    if let Some(slot) = map.entries.iter_mut().find(|(k, _)| k.name == key.name) {
        map.dups.push((key.name.clone(), key.pos));
        *slot = (key, value);
    } else {
        map.entries.push((key, value));
    }
}

fn apply_merges(map: &mut Map, merges: Vec<Node>, pos: Pos) -> BuildResult {
    if merges.is_empty() {
        return Ok(());
    }
    let mut present: HashSet<String> = map.entries.iter().map(|(k, _)| k.name.clone()).collect();
    for merged in merges {
        let sources = match merged.kind {
            Kind::Map(m) => vec![m],
            Kind::Seq(items) => {
                let mut maps = Vec::new();
                for item in items {
                    match item.kind {
                        Kind::Map(m) => maps.push(m),
                        _ => return Err((item.pos, "a merge key (<<) needs objects".to_string())),
                    }
                }
                maps
            }
            Kind::Scalar(_) => return Err((pos, "a merge key (<<) needs an object".to_string())),
        };
        // Explicit keys win over merged ones, and earlier merge sources over later ones.
        for source in sources {
            for (k, v) in source.entries {
                if present.insert(k.name.clone()) {
                    map.entries.push((k, v));
                }
            }
        }
    }
    Ok(())
}

/// Parses a YAML (or JSON) stream into positioned documents.
#[cfg(test)]
pub(crate) fn parse_stream(text: &str) -> Stream {
    let mut docs = Vec::new();
    let error = for_each_document(text, |d| docs.push(d));
    Stream { docs, error }
}

/// Parses a YAML (or JSON) stream, handing each document to `f` as soon as it is complete (so a
/// big stream is never held as a whole tree). Returns the error that stopped parsing, if any.
pub(crate) fn for_each_document(text: &str, mut f: impl FnMut(Node)) -> Option<(Pos, String)> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::new();
    let mut doc_pos = Pos { line: 1, col: 1 };
    while let Some(item) = parser.next_event() {
        let (event, span) = match item {
            Ok(x) => x,
            Err(e) => {
                let m = e.marker();
                return Some((
                    Pos {
                        line: m.line(),
                        col: m.col() + 1,
                    },
                    e.info().to_string(),
                ));
            }
        };
        match event {
            Event::DocumentStart(_) => {
                builder = Builder::new();
                doc_pos = Pos::from_span(&span);
            }
            Event::DocumentEnd => {
                let root = builder
                    .root
                    .take()
                    .unwrap_or_else(|| Node::null_at(doc_pos));
                f(root);
            }
            other => {
                if let Err(e) = builder.event(other, &span) {
                    return Some(e);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(s: &str) -> Scalar {
        resolve_plain(s.to_string())
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v2() {
        assert!(matches!(scalar("yes"), Scalar::Bool(true, _)));
        assert!(matches!(scalar("Off"), Scalar::Bool(false, _)));
        assert!(matches!(scalar("n"), Scalar::Bool(false, _)));
        assert!(matches!(scalar("~"), Scalar::Null(_)));
        assert!(matches!(scalar("53"), Scalar::Int(53, _)));
        assert!(matches!(scalar("0x1F"), Scalar::Int(31, _)));
        assert!(matches!(scalar("010"), Scalar::Int(8, _)));
        assert!(matches!(scalar("1_000"), Scalar::Int(1000, _)));
        assert!(matches!(scalar("-7"), Scalar::Int(-7, _)));
        assert!(matches!(scalar("1.5"), Scalar::Float(f, _) if f == 1.5));
        assert!(matches!(scalar("1e3"), Scalar::Float(f, _) if f == 1000.0));
        assert!(matches!(scalar("10.0.0.1"), Scalar::Str(_)));
        assert!(matches!(scalar("8.8.8.8/32"), Scalar::Str(_)));
        assert!(matches!(scalar("yess"), Scalar::Str(_)));
        assert!(matches!(scalar("-"), Scalar::Str(_)));
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let s = parse_stream("a: \"yes\"\nb: '80'\nc: yes\n");
        let doc = &s.docs[0];
        assert_eq!(doc.get_str("a"), Some("yes"));
        assert_eq!(doc.get_str("b"), Some("80"));
        assert!(matches!(
            doc.get("c").map(|n| &n.kind),
            Some(Kind::Scalar(Scalar::Bool(true, _)))
        ));
    }

    #[test]
    fn keys_and_values_carry_one_based_positions() {
        let s = parse_stream("---\nspec:\n  egress:\n    - to:\n      - ipBlock: {}\n");
        let spec = s.docs[0].get("spec").unwrap();
        let key = |m: &Map, n: &str| {
            m.entries
                .iter()
                .find(|(k, _)| k.name == n)
                .map(|(k, _)| k.clone())
        };
        let egress_key = key(spec.as_map().unwrap(), "egress").unwrap();
        assert_eq!(egress_key.pos, Pos { line: 3, col: 3 });
        let Kind::Seq(rules) = &spec.get("egress").unwrap().kind else {
            panic!("not a list")
        };
        let to = key(rules[0].as_map().unwrap(), "to").unwrap();
        assert_eq!(to.pos, Pos { line: 4, col: 7 });
    }

    #[test]
    fn a_duplicate_key_keeps_the_later_value_and_is_recorded() {
        let s = parse_stream("a: 1\nb: 2\na: 3\n");
        let m = s.docs[0].as_map().unwrap();
        assert_eq!(m.entries.len(), 2);
        assert!(matches!(
            m.get("a").unwrap().kind,
            Kind::Scalar(Scalar::Int(3, _))
        ));
        assert_eq!(m.dups, vec![("a".to_string(), Pos { line: 3, col: 1 })]);
    }

    #[test]
    fn anchors_aliases_and_merge_keys_expand() {
        let s = parse_stream("base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 5\n");
        let d = &s.docs[0];
        assert!(matches!(
            d.get("use").unwrap().get("x").unwrap().kind,
            Kind::Scalar(Scalar::Int(1, _))
        ));
        let merged = d.get("merged").unwrap();
        assert!(matches!(
            merged.get("x").unwrap().kind,
            Kind::Scalar(Scalar::Int(1, _))
        ));
        assert!(matches!(
            merged.get("y").unwrap().kind,
            Kind::Scalar(Scalar::Int(5, _))
        ));
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused_without_panicking() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            bomb.push_str(&format!(
                "l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(parse_stream(&bomb).error.is_some());
        let deep = "[".repeat(1000) + &"]".repeat(1000);
        assert!(parse_stream(&deep).error.is_some());
    }

    #[test]
    fn json_parses_as_yaml_with_positions() {
        let s = parse_stream("{\n  \"kind\": \"Pod\",\n  \"n\": 5\n}\n");
        let d = &s.docs[0];
        assert_eq!(d.get_str("kind"), Some("Pod"));
        let n = d
            .as_map()
            .unwrap()
            .entries
            .iter()
            .find(|(k, _)| k.name == "n")
            .unwrap();
        assert_eq!(n.0.pos, Pos { line: 3, col: 3 });
    }

    #[test]
    fn a_syntax_error_keeps_the_documents_before_it() {
        let s = parse_stream("a: 1\n---\nb: [1, 2\n");
        assert_eq!(s.docs.len(), 1);
        assert!(s.error.is_some());
    }
}
