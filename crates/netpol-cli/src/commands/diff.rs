//! `netpol diff`: loads two versions of the manifests (two paths, paths at a git revision and
//! in the working tree, or the live cluster and the cluster once the manifests are applied to it),
//! computes both connectivity maps (on two threads) and prints what changed and which objects
//! explain it. Exit 0 no change in connectivity, 1 changed, 2 error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use netpol_core::analysis::diff::{diff_maps, object_changes};
use netpol_core::{Analyzer, Cluster, ConnectivityMap, EvalOptions};
use netpol_k8s::{LoadOptions, Loaded, ValidationMode};

use crate::cli::{DiffArgs, DiffFormat, InputArgs, Validate};
use crate::input;

mod live;
use crate::render::diff::{render_json, render_markdown, render_text, DiffView};

pub fn run(args: &DiffArgs) -> Result<u8> {
    let opts = EvalOptions {
        ipblock_matches_workloads: args.ipblock_matches_workloads,
    };
    let given = args.cluster.given();
    if !args.live && !given.is_empty() {
        bail!(
            "{} read the live cluster of --live; without --live, diff compares manifests",
            given.join(", ")
        );
    }
    let (old, new) = match &args.git {
        Some(rev) => git_sides(args, rev)?,
        None if args.live => live::sides(args)?,
        None => path_sides(args)?,
    };
    let (old_map, new_map) = maps(&old.cluster, &new.cluster, opts);
    let diff = diff_maps(&old.cluster, &old_map, &new.cluster, &new_map);
    let changes = object_changes(&old.cluster, &new.cluster);
    let view = DiffView::new(&diff, &changes, args.limit);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.output {
        DiffFormat::Text => out.write_all(render_text(&view).as_bytes())?,
        DiffFormat::Md => out.write_all(render_markdown(&view).as_bytes())?,
        DiffFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &render_json(&view))?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    input::partial_answer(
        old.had_errors || new.had_errors,
        old.unread_kinds || new.unread_kinds,
        "diff",
    )?;
    Ok(if diff.is_unchanged() { 0 } else { 1 })
}

/// The connectivity maps of both clusters, computed side by side (the two cores of a CI runner).
pub fn maps(old: &Cluster, new: &Cluster, opts: EvalOptions) -> (ConnectivityMap, ConnectivityMap) {
    std::thread::scope(|scope| {
        let other = scope.spawn(|| Analyzer::new(old, opts).connectivity_map());
        let new_map = Analyzer::new(new, opts).connectivity_map();
        let old_map = match other.join() {
            Ok(map) => map,
            // The analyzer does not panic on valid clusters; if it did, fail as loudly here.
            Err(panic) => std::panic::resume_unwind(panic),
        };
        (old_map, new_map)
    })
}

fn input_args(args: &DiffArgs, paths: Vec<PathBuf>) -> InputArgs {
    InputArgs {
        paths,
        validate: args.validate,
        ipblock_matches_workloads: args.ipblock_matches_workloads,
        resolve: args.resolve.clone(),
        live: crate::cli::LiveArgs::default(),
    }
}

/// OLD and NEW given as two paths.
fn path_sides(args: &DiffArgs) -> Result<(input::Input, input::Input)> {
    let [old, new] = args.paths.as_slice() else {
        bail!(
            "netpol diff needs two paths, OLD and NEW (got {}), or --git REV [PATH...]",
            args.paths.len()
        );
    };
    if old == Path::new("-") && new == Path::new("-") {
        bail!("only one of OLD and NEW can be `-` (standard input)");
    }
    let old = input::load(&input_args(args, vec![old.clone()]))?;
    let new = input::load(&input_args(args, vec![new.clone()]))?;
    Ok((old, new))
}

/// OLD: the paths at git revision `rev`; NEW: the same paths in the working tree.
fn git_sides(args: &DiffArgs, rev: &str) -> Result<(input::Input, input::Input)> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    if paths.iter().any(|p| p == Path::new("-")) {
        bail!("--git compares paths in git with the working tree: `-` (standard input) is not one");
    }
    let commit = git(
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
        None,
    )
    .map_err(|e| anyhow!("{rev} is not a git revision here: {e}"))?;
    let commit = String::from_utf8_lossy(&commit).trim().to_string();
    let files = git_files(&commit, &paths)?;
    let texts = git_texts(rev, &commit, &files)?;
    let loaded = netpol_k8s::load_texts(
        texts.iter().map(|(n, t)| (n.as_str(), t.as_str())),
        &LoadOptions {
            validation: validation(args.validate),
        },
    );
    let old = from_loaded(loaded, args.ipblock_matches_workloads);
    let new = input::load(&input_args(args, paths))?;
    Ok((old, new))
}

fn validation(v: Validate) -> ValidationMode {
    match v {
        Validate::Strict => ValidationMode::Strict,
        Validate::Warn => ValidationMode::Warn,
        Validate::Ignore => ValidationMode::Ignore,
    }
}

/// Prints the diagnostics, as [`input::load`] does for files.
fn from_loaded(loaded: Loaded, ipblock_matches_workloads: bool) -> input::Input {
    for diagnostic in &loaded.diagnostics {
        eprintln!("{diagnostic}");
    }
    input::Input {
        had_errors: loaded.has_errors(),
        cluster: loaded.cluster,
        opts: EvalOptions {
            ipblock_matches_workloads,
        },
        unread_kinds: false,
        namespace_read: None,
    }
}

/// Runs git (the `git` on PATH) and returns its stdout; its stderr, or how it failed, as the error.
fn git(args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut child = Command::new("git")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run git (is it installed and on PATH?)")?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => {
            let bytes = bytes.to_vec();
            // Written from a thread so that a large output cannot block git on a full pipe.
            Some(std::thread::spawn(move || pipe.write_all(&bytes)))
        }
        _ => None,
    };
    let out = child.wait_with_output().context("waiting for git")?;
    if let Some(w) = writer {
        w.join()
            .map_err(|_| anyhow!("writing to git failed"))?
            .context("writing to git")?;
    }
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let err = if err.is_empty() {
            format!("git {} failed ({})", args.join(" "), out.status)
        } else {
            err
        };
        bail!("{err}");
    }
    Ok(out.stdout)
}

/// The files under `paths` at `commit` (relative to the current directory, as git lists them):
/// every file a path names itself, and the `.yaml`, `.yml` and `.json` files under a directory,
/// as [`netpol_k8s::load_paths`] picks them in the working tree.
fn git_files(commit: &str, paths: &[PathBuf]) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for path in paths {
        let p = path.display().to_string();
        let listed = git(
            &["ls-tree", "-r", "-z", "--name-only", commit, "--", &p],
            None,
        )
        .with_context(|| format!("listing {p} at {commit}"))?;
        let names: Vec<String> = listed
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        if names.is_empty() {
            eprintln!("netpol: note: {p} does not exist at {commit}: everything in it is new");
        }
        let named_itself = names.len() == 1 && same_path(&names[0], &p);
        files.extend(names.into_iter().filter(|n| {
            named_itself
                || matches!(
                    Path::new(n).extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        }));
    }
    Ok(files)
}

fn same_path(a: &str, b: &str) -> bool {
    Path::new(a.trim_start_matches("./")) == Path::new(b.trim_start_matches("./"))
}

/// The contents of `files` at `commit`, through one `git cat-file --batch`, named `REV:path`.
fn git_texts(rev: &str, commit: &str, files: &[String]) -> Result<Vec<(String, String)>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let request: String = files.iter().map(|f| format!("{commit}:./{f}\n")).collect();
    let out = git(&["cat-file", "--batch"], Some(request.as_bytes()))?;
    let mut rest = out.as_slice();
    let mut texts = Vec::with_capacity(files.len());
    for f in files {
        let name = format!("{rev}:{f}");
        let newline = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| anyhow!("git cat-file ended early, before {name}"))?;
        let header = String::from_utf8_lossy(&rest[..newline]).into_owned();
        rest = &rest[newline + 1..];
        let size: usize = match header.split(' ').collect::<Vec<_>>().as_slice() {
            [_, "blob", size] => size
                .parse()
                .map_err(|_| anyhow!("git cat-file: bad header {header:?}"))?,
            _ => bail!("cannot read {name} from git: {header}"),
        };
        if rest.len() < size + 1 {
            bail!("git cat-file ended early, in {name}");
        }
        let text = String::from_utf8(rest[..size].to_vec())
            .map_err(|_| anyhow!("{name}: not UTF-8 text"))?;
        rest = &rest[size + 1..];
        texts.push((name, text));
    }
    Ok(texts)
}

/// `netpol bench --diff-rounds N`: the whole diff (both maps on two threads, the diff, the text
/// with the default limit) of the cluster against an edited copy, `rounds` times, with
/// percentiles; then once against the cluster of the next seed (nearly every pair changes).
pub fn bench(cluster: &Cluster, params: &netpol_core::synth::SynthParams, rounds: usize) {
    let edited = edit_for_bench(cluster);
    let mut times = Vec::with_capacity(rounds);
    let mut summary = String::new();
    for _ in 0..rounds {
        let (ms, line) = time_diff(cluster, &edited);
        times.push(ms);
        summary = line;
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "diff         {:>9.1} ms  (p50; p90 {:.1}, max {:.1}, {rounds} rounds; edited copy: {summary})",
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
    let other = netpol_core::synth::generate(&netpol_core::synth::SynthParams {
        seed: params.seed + 1,
        ..*params
    });
    let (ms, line) = time_diff(cluster, &other);
    println!("diff seed+1  {ms:>9.1} ms  ({line})");
}

/// A pull request's worth of change: every 200th workload removed, every 100th policy removed,
/// the first ingress rule of every 100th other policy dropped.
fn edit_for_bench(cluster: &Cluster) -> Cluster {
    let mut edited = cluster.clone();
    let mut i = 0;
    edited.workloads.retain(|_| {
        i += 1;
        i % 200 != 0
    });
    let mut i = 0;
    edited.policies.retain(|_| {
        i += 1;
        i % 100 != 0
    });
    for p in edited.policies.iter_mut().skip(50).step_by(100) {
        if !p.ingress.is_empty() {
            p.ingress.remove(0);
        }
    }
    edited
}

fn time_diff(old: &Cluster, new: &Cluster) -> (f64, String) {
    let started = std::time::Instant::now();
    let opts = EvalOptions::default();
    let (old_map, new_map) = maps(old, new, opts);
    let diff = diff_maps(old, &old_map, new, &new_map);
    let changes = object_changes(old, new);
    let view = DiffView::new(&diff, &changes, 100);
    let text = render_text(&view);
    let ms = super::bench::ms(started);
    let c = diff.counts();
    let line = format!(
        "{} pairs changed ({} gained, {} lost, {} ports), {} endpoints removed, {} objects, {} bytes of text",
        c.total(),
        c.gained,
        c.lost,
        c.changed,
        diff.removed().len(),
        changes.len(),
        text.len()
    );
    (ms, line)
}
