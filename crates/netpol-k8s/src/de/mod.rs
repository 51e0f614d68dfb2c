//! A serde `Deserializer` over the positioned tree. Because k8s-openapi's types call
//! `deserialize_struct` with the list of their field names, this deserializer sees the schema of
//! every object it decodes: it reports unknown and duplicate fields with their exact path and
//! position (and skips them), and type errors carry the position of the offending value.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::yaml::{Kind, Map, Node, Pos, Scalar};

mod hints;

pub(crate) use hints::closest;
use hints::unknown_field;

/// One segment of a field path.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Seg<'a> {
    /// A struct field: rendered `.name`.
    Field(&'a str),
    /// A key of a map such as `labels`: rendered `[key]`.
    Key(&'a str),
    Index(usize),
}

/// A field path as a linked list living on the decoder's stack: no allocation until rendered.
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Option<Seg<'a>>,
    depth: usize,
}

impl<'a> Path<'a> {
    pub fn root() -> Path<'static> {
        Path {
            parent: None,
            seg: None,
            depth: 0,
        }
    }

    fn child(&'a self, seg: Seg<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Some(seg),
            depth: self.depth + 1,
        }
    }

    fn segs(&self) -> Vec<Seg<'a>> {
        let mut out = Vec::with_capacity(self.depth);
        let mut cur = Some(self);
        while let Some(p) = cur {
            if let Some(s) = p.seg {
                out.push(s);
            }
            cur = p.parent;
        }
        out.reverse();
        out
    }

    fn render(&self) -> String {
        render_segs(&self.segs())
    }
}

pub(crate) fn render_segs(segs: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Field(name) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(name);
            }
            Seg::Key(k) => {
                s.push('[');
                s.push_str(k);
                s.push(']');
            }
            Seg::Index(i) => {
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
    s
}

/// An error that stops decoding an object (a type error, mostly).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DeError {
    pub message: String,
    pub hint: Option<String>,
    /// Field path and position; filled by the innermost node that sees the error.
    pub at: Option<(String, Pos)>,
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            hint: None,
            at: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IssueKind {
    Unknown,
    Duplicate,
}

/// An unknown or duplicate field, found while decoding and skipped.
#[derive(Clone, Debug)]
pub(crate) struct FieldIssue {
    pub kind: IssueKind,
    pub name: String,
    pub path: String,
    pub pos: Pos,
    pub hint: Option<String>,
    /// What dropping the field changes, for the warning of `--validate=warn`.
    pub consequence: Option<String>,
}

struct StructFrame<'n> {
    name: &'static str,
    fields: &'static [&'static str],
    depth: usize,
    node: &'n Node,
}

pub(crate) struct Ctx<'n> {
    check_unknown: bool,
    issues: Vec<FieldIssue>,
    frames: Vec<StructFrame<'n>>,
}

/// Decodes `node` into `T`. With `check_unknown`, fields that `T`'s schema does not know are
/// reported and skipped; without, they are ignored (for kinds whose schema netpol only partly
/// knows). Duplicate fields are always reported.
pub(crate) fn decode<T: DeserializeOwned>(
    node: &Node,
    check_unknown: bool,
) -> (Result<T, DeError>, Vec<FieldIssue>) {
    let ctx = RefCell::new(Ctx {
        check_unknown,
        issues: Vec::new(),
        frames: Vec::new(),
    });
    let root = Path::root();
    let result = T::deserialize(NodeDe {
        node,
        path: &root,
        ctx: &ctx,
    });
    (result, ctx.into_inner().issues)
}

struct NodeDe<'n, 'p, 'c> {
    node: &'n Node,
    path: &'p Path<'p>,
    ctx: &'c RefCell<Ctx<'n>>,
}

impl NodeDe<'_, '_, '_> {
    fn locate(&self, mut e: DeError) -> DeError {
        if e.at.is_none() {
            e.at = Some((self.path.render(), self.node.pos));
        }
        e
    }

    fn type_error(&self, expected: &str) -> DeError {
        let hint = match (&self.node.kind, expected) {
            (Kind::Scalar(Scalar::Bool(_, raw)), "string") => Some(format!(
                "YAML reads unquoted {raw} as a boolean; quote it: \"{raw}\""
            )),
            (Kind::Scalar(Scalar::Int(_, raw)), "string")
            | (Kind::Scalar(Scalar::Float(_, raw)), "string") => Some(format!(
                "YAML reads unquoted {raw} as a number; quote it: \"{raw}\""
            )),
            (Kind::Scalar(Scalar::Str(s)), "integer") if s.trim().parse::<i64>().is_ok() => {
                Some(format!("remove the quotes: {}", s.trim()))
            }
            _ => None,
        };
        DeError {
            message: format!("expected {expected}, got {}", self.node.describe()),
            hint,
            at: Some((self.path.render(), self.node.pos)),
        }
    }
}

macro_rules! ints {
    ($($m:ident),*) => {$(
        fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let r = match &self.node.kind {
                Kind::Scalar(Scalar::Int(i, _)) => v.visit_i64(*i),
                // Go's JSON decoding leaves the zero value for null.
                Kind::Scalar(Scalar::Null(_)) => v.visit_i64(0),
                _ => return Err(self.type_error("integer")),
            };
            r.map_err(|e| self.locate(e))
        }
    )*};
}

impl<'de, 'n, 'p, 'c> de::Deserializer<'de> for NodeDe<'n, 'p, 'c> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Scalar(Scalar::Null(_)) => v.visit_unit(),
            Kind::Scalar(Scalar::Bool(b, _)) => v.visit_bool(*b),
            Kind::Scalar(Scalar::Int(i, _)) => v.visit_i64(*i),
            Kind::Scalar(Scalar::Float(f, _)) => v.visit_f64(*f),
            Kind::Scalar(Scalar::Str(s)) => v.visit_str(s),
            Kind::Seq(items) => v.visit_seq(self.seq_access(items)),
            Kind::Map(m) => v.visit_map(self.map_access(m, None)),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Scalar(Scalar::Bool(b, _)) => v.visit_bool(*b),
            Kind::Scalar(Scalar::Null(_)) => v.visit_bool(false),
            _ => return Err(self.type_error("boolean")),
        };
        r.map_err(|e| self.locate(e))
    }

    ints!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Scalar(Scalar::Int(i, _)) => v.visit_f64(*i as f64),
            Kind::Scalar(Scalar::Float(f, _)) => v.visit_f64(*f),
            Kind::Scalar(Scalar::Null(_)) => v.visit_f64(0.0),
            _ => return Err(self.type_error("number")),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Scalar(Scalar::Str(s)) => v.visit_str(s),
            Kind::Scalar(Scalar::Null(_)) => v.visit_str(""),
            _ => return Err(self.type_error("string")),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Seq(_) => self.deserialize_seq(v),
            _ => self.deserialize_str(v),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_none().map_err(|e| self.locate(e))
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            v.visit_unit().map_err(|e| self.locate(e))
        } else {
            Err(self.type_error("null"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        let located = NodeDe {
            node: self.node,
            path: self.path,
            ctx: self.ctx,
        };
        v.visit_newtype_struct(self).map_err(|e| located.locate(e))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Seq(items) => v.visit_seq(self.seq_access(items)),
            Kind::Scalar(Scalar::Null(_)) => v.visit_seq(self.seq_access(&[])),
            _ => return Err(self.type_error("list")),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Map(m) => v.visit_map(self.map_access(m, None)),
            Kind::Scalar(Scalar::Null(_)) => v.visit_map(self.map_access(&EMPTY_MAP, None)),
            _ => return Err(self.type_error("object")),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let map = match &self.node.kind {
            Kind::Map(m) => m,
            Kind::Scalar(Scalar::Null(_)) => &EMPTY_MAP,
            _ => return Err(self.type_error("object")),
        };
        self.ctx.borrow_mut().frames.push(StructFrame {
            name,
            fields,
            depth: self.path.depth,
            node: self.node,
        });
        let r = v.visit_map(self.map_access(map, Some(fields)));
        self.ctx.borrow_mut().frames.pop();
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Scalar(Scalar::Str(s)) => v.visit_enum(s.as_str().into_deserializer()),
            _ => return Err(self.type_error("string")),
        };
        r.map_err(|e: DeError| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

static EMPTY_MAP: Map = Map {
    entries: Vec::new(),
    dups: Vec::new(),
};

impl<'n, 'p, 'c> NodeDe<'n, 'p, 'c> {
    fn seq_access(&self, items: &'n [Node]) -> SeqAcc<'n, 'p, 'c> {
        SeqAcc {
            items: items.iter().enumerate(),
            path: self.path,
            ctx: self.ctx,
        }
    }

    fn map_access(
        &self,
        map: &'n Map,
        fields: Option<&'static [&'static str]>,
    ) -> MapAcc<'n, 'p, 'c> {
        if !map.dups.is_empty() {
            let mut ctx = self.ctx.borrow_mut();
            let segs = self.path.segs();
            for (name, pos) in &map.dups {
                let mut full = segs.clone();
                full.push(if fields.is_some() {
                    Seg::Field(name)
                } else {
                    Seg::Key(name)
                });
                ctx.issues.push(FieldIssue {
                    kind: IssueKind::Duplicate,
                    name: name.clone(),
                    path: render_segs(&full),
                    pos: *pos,
                    hint: Some(format!(
                        "remove one of the \"{name}\" keys; the later one wins when kept"
                    )),
                    consequence: None,
                });
            }
        }
        MapAcc {
            entries: map.entries.iter(),
            value: None,
            path: self.path,
            ctx: self.ctx,
            fields,
        }
    }
}

struct SeqAcc<'n, 'p, 'c> {
    items: std::iter::Enumerate<std::slice::Iter<'n, Node>>,
    path: &'p Path<'p>,
    ctx: &'c RefCell<Ctx<'n>>,
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_, '_, '_> {
    type Error = DeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let child = self.path.child(Seg::Index(i));
        seed.deserialize(NodeDe {
            node,
            path: &child,
            ctx: self.ctx,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAcc<'n, 'p, 'c> {
    entries: std::slice::Iter<'n, (crate::yaml::Key, Node)>,
    value: Option<&'n (crate::yaml::Key, Node)>,
    path: &'p Path<'p>,
    ctx: &'c RefCell<Ctx<'n>>,
    fields: Option<&'static [&'static str]>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'_, '_, '_> {
    type Error = DeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for entry in self.entries.by_ref() {
            if let Some(fields) = self.fields {
                let name = entry.0.name.as_str();
                if !fields.contains(&name) {
                    let mut ctx = self.ctx.borrow_mut();
                    if ctx.check_unknown {
                        let issue = unknown_field(&ctx.frames, self.path, &entry.0);
                        ctx.issues.push(issue);
                        continue;
                    }
                }
            }
            self.value = Some(entry);
            let key: de::value::StrDeserializer<'_, DeError> =
                entry.0.name.as_str().into_deserializer();
            return seed.deserialize(key).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        let Some(entry) = self.value.take() else {
            return Err(de::Error::custom("a value was requested before its key"));
        };
        let seg = if self.fields.is_some() {
            Seg::Field(&entry.0.name)
        } else {
            Seg::Key(&entry.0.name)
        };
        let child = self.path.child(seg);
        seed.deserialize(NodeDe {
            node: &entry.1,
            path: &child,
            ctx: self.ctx,
        })
    }
}
