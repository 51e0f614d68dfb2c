//! The one narrow layer through which nftables is touched: `nft` invoked with a whole script on
//! stdin (one atomic transaction per call), optionally inside a named network namespace.
//!
//! Functions here only ever name the table they are given; other tables are never read or changed.

use crate::cmd;
use crate::error::DataplaneError;
use crate::netns::Netns;

const FAMILIES: [&str; 6] = ["ip", "ip6", "inet", "arp", "bridge", "netdev"];

fn validate_table(family: &str, name: &str) -> Result<(), DataplaneError> {
    if !FAMILIES.contains(&family) {
        return Err(DataplaneError::InvalidName {
            what: "nftables family",
            value: family.to_owned(),
            reason: "expected one of ip, ip6, inet, arp, bridge, netdev",
        });
    }
    let valid = !name.is_empty()
        && name.len() <= 255
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        return Err(DataplaneError::InvalidName {
            what: "nftables table name",
            value: name.to_owned(),
            reason: "must start with a letter and hold only letters, digits, '_', '-', '.'",
        });
    }
    Ok(())
}

fn nft(
    netns: Option<&str>,
    operation: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<cmd::Finished, DataplaneError> {
    let finished = cmd::run(netns, "nft", args, stdin)?;
    if finished.success {
        Ok(finished)
    } else {
        Err(DataplaneError::Nft {
            operation: operation.to_owned(),
            netns: netns.map(str::to_owned),
            stderr: finished.stderr,
        })
    }
}

/// Applies `script` as one transaction (`nft -f -`): either all of it takes effect or none.
pub fn apply(netns: Option<&str>, script: &str) -> Result<(), DataplaneError> {
    nft(netns, "apply", &["-f", "-"], Some(script)).map(|_| ())
}

/// Checks `script` against the current ruleset without applying it (`nft -c -f -`).
pub fn check(netns: Option<&str>, script: &str) -> Result<(), DataplaneError> {
    nft(netns, "check", &["-c", "-f", "-"], Some(script)).map(|_| ())
}

/// Whether `family name` exists (`nft list tables FAMILY`).
pub fn table_exists(netns: Option<&str>, family: &str, name: &str) -> Result<bool, DataplaneError> {
    validate_table(family, name)?;
    let finished = nft(netns, "list tables", &["list", "tables", family], None)?;
    let wanted = format!("table {family} {name}");
    Ok(finished.stdout.lines().any(|line| line.trim() == wanted))
}

/// How much of a table a listing shows. Both omit counter values and timeouts (`nft -s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listing {
    /// Chains, rules and set declarations without set elements (`nft -t`): milliseconds even
    /// with a million elements, but blind to element changes.
    Terse,
    /// Everything including set elements: exact, but listing 1M elements takes ~20 s here.
    Full,
}

/// Lists one table, or `None` when it does not exist.
pub fn list_table_with(
    netns: Option<&str>,
    family: &str,
    name: &str,
    listing: Listing,
) -> Result<Option<String>, DataplaneError> {
    validate_table(family, name)?;
    if listing == Listing::Terse {
        // `nft -t list table` still fetches every set element into nft's cache (0.2 s for a
        // 33k-element table here) while `nft -t list ruleset` does not (10 ms), and prints the
        // same text for the table.
        let finished = nft(
            netns,
            "list ruleset",
            &["-t", "-s", "list", "ruleset", family],
            None,
        )?;
        return Ok(table_block(&finished.stdout, family, name));
    }
    let args: &[&str] = &["-s", "list", "table", family, name];
    match nft(netns, "list table", args, None) {
        Ok(finished) => Ok(Some(finished.stdout)),
        // nft's message for a missing table is not a stable interface: ask instead.
        Err(error) => match table_exists(netns, family, name) {
            Ok(false) => Ok(None),
            _ => Err(error),
        },
    }
}

/// The `table FAMILY NAME { ... }` block of a ruleset listing (through its closing `}` at the
/// start of a line), or `None` when the listing has no such table.
fn table_block(listing: &str, family: &str, name: &str) -> Option<String> {
    let header = format!("table {family} {name} {{");
    let mut lines = listing.lines();
    lines.by_ref().find(|l| *l == header)?;
    let mut block = header;
    block.push('\n');
    for line in lines {
        block.push_str(line);
        block.push('\n');
        if line == "}" {
            return Some(block);
        }
    }
    // A listing cut short is not the table.
    None
}

/// Lists one table tersely (no set elements, no counter values), or `None` when it is absent.
pub fn list_table(
    netns: Option<&str>,
    family: &str,
    name: &str,
) -> Result<Option<String>, DataplaneError> {
    list_table_with(netns, family, name, Listing::Terse)
}

/// The table as nft prints it in JSON (`nft -j list table`), counters included, as text for the
/// crate that knows what the table holds to read (`netpol_nft::CounterReading`); `None` when
/// absent.
pub fn table_json_text(
    netns: Option<&str>,
    family: &str,
    name: &str,
) -> Result<Option<String>, DataplaneError> {
    json_listing(netns, family, name, "list table", &["table"])
}

/// The named counters of one table as nft prints them in JSON (`nft -j list counters table`),
/// without the rest of the table (cheap also for tables with many set elements); `None` when the
/// table is absent.
pub fn counters_json_text(
    netns: Option<&str>,
    family: &str,
    name: &str,
) -> Result<Option<String>, DataplaneError> {
    json_listing(netns, family, name, "list counters", &["counters", "table"])
}

/// `nft -j list WHAT... FAMILY NAME` as text, or `None` when the table is absent.
fn json_listing(
    netns: Option<&str>,
    family: &str,
    name: &str,
    operation: &str,
    what: &[&str],
) -> Result<Option<String>, DataplaneError> {
    validate_table(family, name)?;
    if !table_exists(netns, family, name)? {
        return Ok(None);
    }
    let mut args = vec!["-j", "list"];
    args.extend_from_slice(what);
    args.extend([family, name]);
    let finished = nft(netns, operation, &args, None)?;
    Ok(Some(finished.stdout))
}

/// [`table_json_text`], parsed as JSON.
pub fn table_json(
    netns: Option<&str>,
    family: &str,
    name: &str,
) -> Result<Option<serde_json::Value>, DataplaneError> {
    let Some(text) = table_json_text(netns, family, name)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| DataplaneError::Parse(format!("nft -j output is not JSON: {e}")))
}

/// Deletes the table; a missing table is not an error.
pub fn delete_table(netns: Option<&str>, family: &str, name: &str) -> Result<(), DataplaneError> {
    validate_table(family, name)?;
    // nft 1.0.6 has no `destroy`: declaring the table first makes the delete always valid, and
    // both happen in one transaction so nothing else sees the intermediate state.
    apply(
        netns,
        &format!("table {family} {name}\ndelete table {family} {name}\n"),
    )
}

/// What a table looked like when it was known to be right, normalized by the kernel itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    family: String,
    name: String,
    listing: Listing,
    text: String,
}

impl Fingerprint {
    /// The normalized listing this fingerprint compares against.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The table's family and name.
    pub fn table(&self) -> (&str, &str) {
        (&self.family, &self.name)
    }

    /// Terse or full.
    pub fn listing(&self) -> Listing {
        self.listing
    }
}

/// Drops what differs between two listings of the same content: blank lines and trailing blanks.
/// Counter values and timeouts are already absent because listings are stateless (`nft -s`).
fn normalize(listing: &str) -> String {
    let mut out = String::with_capacity(listing.len());
    for line in listing.lines() {
        let line = line.trim_end();
        if !line.is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Takes a fingerprint of the table as it is loaded now; `None` when it is absent.
pub fn fingerprint(
    netns: Option<&str>,
    family: &str,
    name: &str,
    listing: Listing,
) -> Result<Option<Fingerprint>, DataplaneError> {
    Ok(
        list_table_with(netns, family, name, listing)?.map(|text| Fingerprint {
            family: family.to_owned(),
            name: name.to_owned(),
            listing,
            text: normalize(&text),
        }),
    )
}

/// Applies `script` and immediately fingerprints `family name`, for later [`verify`] calls.
pub fn apply_and_fingerprint(
    netns: Option<&str>,
    script: &str,
    family: &str,
    name: &str,
    listing: Listing,
) -> Result<Fingerprint, DataplaneError> {
    validate_table(family, name)?;
    apply(netns, script)?;
    fingerprint(netns, family, name, listing)?.ok_or_else(|| {
        DataplaneError::Parse(format!(
            "the script was applied but table {family} {name} does not exist afterwards"
        ))
    })
}

/// Fingerprints what `script` would produce, without touching any live namespace: the script is
/// applied in a scratch namespace and listed there. Use it when only the script is at hand (e.g.
/// after a restart). The script must not depend on other tables existing.
pub fn fingerprint_of_script(
    script: &str,
    family: &str,
    name: &str,
    listing: Listing,
) -> Result<Fingerprint, DataplaneError> {
    validate_table(family, name)?;
    let scratch = Netns::create("nftscratch")?;
    apply_and_fingerprint(Some(scratch.name()), script, family, name, listing)
}

/// How the loaded table compares with a fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    /// Identical (apart from counter values).
    InSync,
    /// The table is gone.
    Missing,
    /// The table differs. Lines are compared as multisets; both lists empty means only the order
    /// of lines changed (e.g. rules reordered).
    Changed {
        /// Lines of the fingerprint missing from the loaded table.
        only_expected: Vec<String>,
        /// Lines of the loaded table missing from the fingerprint.
        only_actual: Vec<String>,
    },
}

impl Drift {
    /// True unless in sync.
    pub fn is_drift(&self) -> bool {
        !matches!(self, Drift::InSync)
    }
}

/// Compares the loaded table with `expected`, using the same kind of listing.
pub fn verify(netns: Option<&str>, expected: &Fingerprint) -> Result<Drift, DataplaneError> {
    let Some(actual) = fingerprint(netns, &expected.family, &expected.name, expected.listing)?
    else {
        return Ok(Drift::Missing);
    };
    if actual.text == expected.text {
        return Ok(Drift::InSync);
    }
    let (only_expected, only_actual) = line_difference(&expected.text, &actual.text);
    Ok(Drift::Changed {
        only_expected,
        only_actual,
    })
}

fn line_difference(expected: &str, actual: &str) -> (Vec<String>, Vec<String>) {
    use std::collections::HashMap;
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for line in expected.lines() {
        *counts.entry(line).or_default() += 1;
    }
    for line in actual.lines() {
        *counts.entry(line).or_default() -= 1;
    }
    let mut only_expected = Vec::new();
    let mut only_actual = Vec::new();
    // Walk the texts (not the map) so the output keeps the listing's order.
    for line in expected.lines() {
        if let Some(count) = counts.get_mut(line) {
            if *count > 0 {
                *count -= 1;
                only_expected.push(line.trim().to_owned());
            }
        }
    }
    for line in actual.lines() {
        if let Some(count) = counts.get_mut(line) {
            if *count < 0 {
                *count += 1;
                only_actual.push(line.trim().to_owned());
            }
        }
    }
    (only_expected, only_actual)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_block_is_cut_from_a_ruleset_listing_between_its_header_and_closing_brace() {
        let listing = "table inet other {\n\tchain c {\n\t}\n}\ntable inet netpol {\n\tchain forward {\n\t\tct state established accept\n\t}\n}\ntable inet netpol2 {\n}\n";
        assert_eq!(
            table_block(listing, "inet", "netpol").as_deref(),
            Some(
                "table inet netpol {\n\tchain forward {\n\t\tct state established accept\n\t}\n}\n"
            )
        );
        assert_eq!(table_block(listing, "inet", "missing"), None);
        assert_eq!(
            table_block("table inet netpol {\n\tchain x {\n", "inet", "netpol"),
            None
        );
    }

    use super::*;

    #[test]
    fn table_names_that_could_inject_commands_are_rejected() {
        assert!(validate_table("inet", "netpol; flush ruleset").is_err());
        assert!(validate_table("inet", "").is_err());
        assert!(validate_table("ether", "netpol").is_err());
        assert!(validate_table("inet", "netpol").is_ok());
    }

    #[test]
    fn normalization_ignores_blank_lines_and_trailing_spaces() {
        assert_eq!(normalize("a  \n\n\tb\n"), normalize("a\n\tb"));
        assert_ne!(normalize("a\nb\n"), normalize("b\na\n"));
    }

    #[test]
    fn line_difference_reports_each_side_and_respects_duplicates() {
        let (gone, new) = line_difference("x\ny\ny\n", "y\nz\n");
        assert_eq!(gone, vec!["x", "y"]);
        assert_eq!(new, vec!["z"]);
    }
}
