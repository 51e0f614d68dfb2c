//! Incremental updates held against full loads in the real kernel: loading the old table and
//! then `update_script(old, new)` must leave exactly the table that loading `new` directly leaves
//! (compared as nft's JSON listing without handles and counter values, with set elements and
//! top-level objects in a canonical order, since hash sets list in no fixed order).

use netpol_dataplane::{nft, Netns};
use netpol_nft::update_script;
use serde_json::Value;

use super::{nft_available, require_root};

/// These tests load tables into the real kernel: without root or nft they fail (CI runs as root
/// with nftables installed), they never skip.
#[track_caller]
pub fn require_kernel() {
    require_root();
    assert!(
        nft_available(),
        "netpol-nft kernel tests need nft (apt-get install -y nftables)"
    );
}

/// Removes what differs between equal tables loaded different ways.
fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("handle");
            m.remove("packets");
            m.remove("bytes");
            for (_, x) in m.iter_mut() {
                strip(x);
            }
            if let Some(Value::Array(elems)) = m.get_mut("elem") {
                elems.sort_by_key(|e| e.to_string());
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

/// nft 1.0.6 lists (and `get`s) a few elements of a `mark . inet_proto . inet_service` interval
/// map with the mark's bytes swapped: which ones depends on the kernel's dump order, so the same
/// element reads `0xcc4f0000 . tcp . 0-7999` in one namespace and `0x00004fcc . tcp . 0-7999` in
/// another, where a full load of the script adding `0xcc4f0000` put it. Class marks live in bits 16-31
/// (the default range these tests compile with) and are never below 0x10000 except class 0, so a
/// listed mark in 1..0x10000 is one of those and is swapped back.
fn unswap_tier_marks(item: &mut Value) {
    let Some(map) = item.get_mut("map") else {
        return;
    };
    if map["type"] != serde_json::json!(["mark", "inet_proto", "inet_service"]) {
        return;
    }
    fn fix(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(parts)) = m.get_mut("concat") {
                    if let Some(mark) = parts.first_mut() {
                        if let Some(n) = mark.as_u64().filter(|n| (1..0x1_0000).contains(n)) {
                            *mark = Value::from(u32::try_from(n).unwrap().swap_bytes());
                        }
                    }
                    return;
                }
                m.values_mut().for_each(fix);
            }
            Value::Array(a) => a.iter_mut().for_each(fix),
            _ => {}
        }
    }
    if let Some(elems) = map.get_mut("elem") {
        fix(elems);
    }
}

/// The table as sorted canonical lines: one per object, rules numbered within their chain.
fn canonical(ns: &str) -> Vec<String> {
    let v = nft::table_json(Some(ns), "inet", "netpol")
        .unwrap()
        .expect("table present");
    let mut out = Vec::new();
    let mut rule_seq: std::collections::BTreeMap<String, usize> = Default::default();
    for item in v["nftables"].as_array().unwrap() {
        let mut item = item.clone();
        if item.get("metainfo").is_some() {
            continue;
        }
        unswap_tier_marks(&mut item);
        strip(&mut item);
        if let Some(rule) = item.get("rule") {
            let chain = rule["chain"].as_str().unwrap_or("").to_string();
            let n = rule_seq.entry(chain.clone()).or_default();
            out.push(format!("rule {chain} #{n}: {item}"));
            *n += 1;
        } else {
            out.push(item.to_string());
        }
    }
    out.sort();
    out
}

/// Loads `old`, applies the update to `new` and compares with loading `new` directly.
pub fn check_update(old: &netpol_nft::Ruleset, new: &netpol_nft::Ruleset) -> Result<(), String> {
    let script = update_script(old, new).ok_or("update_script gave None")?;
    if let Ok(dir) = std::env::var("NETPOL_UPDATE_DUMP") {
        let _ = std::fs::write(format!("{dir}/old.nft"), &old.text);
        let _ = std::fs::write(format!("{dir}/new.nft"), &new.text);
        let _ = std::fs::write(format!("{dir}/update.nft"), &script);
    }
    let a = Netns::create("nftupd").map_err(|e| e.to_string())?;
    nft::apply(Some(a.name()), &old.text).map_err(|e| format!("old: {e}"))?;
    nft::apply(Some(a.name()), &script).map_err(|e| format!("update: {e}\n{script}"))?;
    let b = Netns::create("nftupd").map_err(|e| e.to_string())?;
    nft::apply(Some(b.name()), &new.text).map_err(|e| format!("new: {e}"))?;
    let (got, want) = (canonical(a.name()), canonical(b.name()));
    if got != want {
        let only_got: Vec<&String> = got.iter().filter(|l| !want.contains(l)).collect();
        let only_want: Vec<&String> = want.iter().filter(|l| !got.contains(l)).collect();
        return Err(format!(
            "tables differ\nonly after update: {only_got:#?}\nonly in new: {only_want:#?}\nscript:\n{script}"
        ));
    }
    Ok(())
}
