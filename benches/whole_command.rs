//! The whole command is the benchmark: the real release `pluvo-sync` binary, as an operator runs
//! it, on generated exports of 10k, 100k and (optionally) 1M people, against a real `pluvo-sim`
//! process.
//!
//! The in-process `plan` bench starts after the export is parsed, mapped and the snapshot loaded;
//! what a user waits for is all of that, plus opening the database and ending the process. So
//! per size this bench runs, each as its own process, timing its wall clock and reading its peak
//! RSS from `/usr/bin/time -f %M` (GNU time; the child's own `getrusage`, so the bench's and the
//! simulator's memory are not counted):
//!
//! 1. **first-load `sync`** into an empty tenant: the setup for the rest. The simulator runs
//!    without a rate limit and the client with generous pacing (see [`PACING`]), so it measures
//!    pluvo-sync and pluvo-sim, not a rate limit; a first load at a real tenant's rate is the
//!    `first_load` bench's subject.
//! 2. **no-op `plan`** and **no-op `sync`**: the same export again; nothing to send.
//! 3. **churn `plan`** and **churn `sync`**: a realistic day, drawn from a seeded RNG (the same
//!    people every run): 0.2 % joiners, 0.2 % leavers, 0.5 % moved to another department, 1 %
//!    renamed.
//!
//! Exports and databases live in a temp dir that is deleted after each size.
//!
//! Sizes: arguments (`cargo bench --bench whole_command -- 10k 100k 1M`) or `WHOLE_SIZES`
//! (`10000,100000`); the default is 10k and 100k. The `pluvo-sim` binary is built next to
//! `pluvo-sync` in the same profile first (`cargo build -p pluvo-sim`), so both are current.
//! `WHOLE_PLUVO_SYNC=path/to/pluvo-sync` measures that binary instead, with the `pluvo-sim`
//! beside it: another build to compare with, or `target/release/pluvo-sync` from a quick
//! `cargo test --bench whole_command` (debug build of the bench itself) after
//! `cargo build --release -p pluvo-sync -p pluvo-sim`.
//!
//! `WHOLE_KEEP=1` keeps each size's directory (export, config and database after the churn sync)
//! and prints its path, to profile a command by hand (`perf record pluvo-sync --config … plan`);
//! the simulator is gone by then, so only `plan` runs there.
//!
//! Prints figures; asserts nothing but that every command succeeded, so a noisy machine cannot
//! make it flake.

mod common;

use std::io::{BufRead as _, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use common::{CLIENT_ID, CLIENT_SECRET, Employee, MAPPING, employee, write_export};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// The client's pacing for every run here, stated in the output: the simulator has no rate limit,
/// so this measures the program, not the limit.
const PACING: &str = "rate_per_second = 100000\nburst = 100\nconcurrency = 4\nbatch_size = 100";

/// The churn's RNG seed: the same day of changes on every run.
const CHURN_SEED: u64 = 15;

const DEPARTMENTS: [&str; 4] = ["Sales", "Finance", "Engineering", "HR"];
const SURNAMES: [&str; 3] = ["van Dijk", "Hendriks", "Kok"];

fn main() -> anyhow::Result<()> {
    let sizes = sizes()?;
    // Another build can be measured (say, main's, to compare), or a release build from a debug
    // build of this bench, which needs no second, dev-featured release build of every crate.
    let (pluvo_sync, pluvo_sim) = match std::env::var_os("WHOLE_PLUVO_SYNC") {
        Some(binary) => {
            let binary = PathBuf::from(binary);
            let sim = binary.with_file_name("pluvo-sim");
            ensure!(sim.exists(), "no pluvo-sim beside {}", binary.display());
            (binary, sim)
        }
        None => {
            let binary = PathBuf::from(env!("CARGO_BIN_EXE_pluvo-sync"));
            let sim = build_sim(&binary)?;
            (binary, sim)
        }
    };
    ensure!(
        Path::new(TIME).exists(),
        "{TIME} (GNU time) is needed to read each command's peak RSS: apt-get install time"
    );
    println!("whole command: {}", pluvo_sync.display());
    println!("  pacing: {}", PACING.replace('\n', ", "));
    println!("  churn: 0.2% joiners, 0.2% leavers, 0.5% moves, 1% renames (seed {CHURN_SEED})\n");
    println!(
        "{:>9}  {:<18} {:>9} {:>10}  result",
        "people", "command", "wall", "peak RSS"
    );
    for people in sizes {
        run_size(&pluvo_sync, &pluvo_sim, people)?;
    }
    Ok(())
}

/// The sizes asked for: `10k`, `100000`, `1M`, from the arguments or `WHOLE_SIZES`.
fn sizes() -> anyhow::Result<Vec<usize>> {
    // cargo bench passes `--bench`; flags are not sizes.
    let mut raw: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    if raw.is_empty()
        && let Ok(list) = std::env::var("WHOLE_SIZES")
    {
        raw = list.split(',').map(str::to_owned).collect();
    }
    if raw.is_empty() {
        return Ok(vec![10_000, 100_000]);
    }
    raw.iter()
        .map(|size| {
            let size = size.trim().to_ascii_lowercase();
            let (digits, factor) = match size.strip_suffix('m') {
                Some(digits) => (digits, 1_000_000),
                None => match size.strip_suffix('k') {
                    Some(digits) => (digits, 1_000),
                    None => (size.as_str(), 1),
                },
            };
            digits
                .parse::<usize>()
                .map(|n| n * factor)
                .with_context(|| format!("{size:?} is not a size like 10000, 100k or 1M"))
        })
        .collect()
}

/// Builds `pluvo-sim` in the profile `pluvo-sync` was built in, and returns its path.
fn build_sim(pluvo_sync: &Path) -> anyhow::Result<PathBuf> {
    let dir = pluvo_sync
        .parent()
        .context("the pluvo-sync binary has a directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "pluvo-sim", "--bin", "pluvo-sim"]);
    if dir.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .context("while running cargo build -p pluvo-sim")?;
    ensure!(status.success(), "cargo build -p pluvo-sim failed");
    Ok(dir.join("pluvo-sim"))
}

const TIME: &str = "/usr/bin/time";

/// One measured command.
struct Measured {
    wall: Duration,
    peak_rss_kib: u64,
    stdout: String,
}

fn run_size(pluvo_sync: &Path, pluvo_sim: &Path, people: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let export = dir.path().join("export.csv");
    let config = dir.path().join("pluvo-sync.toml");
    let mut sim = Sim::start(pluvo_sim)?;
    std::fs::write(
        &config,
        format!(
            "[source.csv]\npath = \"{export}\"\n\n{MAPPING}\n\n[pluvo]\nurl = \"{url}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{PACING}\n\n[sync]\ndatabase = \"{database}\"\ntime_zone = \"Europe/Amsterdam\"\n",
            export = export.display(),
            url = sim.url,
            database = dir.path().join("pluvo-sync.db").display(),
        ),
    )?;
    let command = |args: &[&str]| {
        let mut command = Command::new(pluvo_sync);
        command.arg("--config").arg(&config).args(args);
        command
    };

    let mut staff = (0..people)
        .map(employee)
        .collect::<anyhow::Result<Vec<_>>>()?;
    write_file(&export, &staff)?;
    let first = measure(dir.path(), command(&["sync"]))?;
    report(people, "first-load sync", &first);
    let plan = measure(dir.path(), command(&["plan"]))?;
    report(people, "no-op plan", &plan);
    let noop = measure(dir.path(), command(&["sync"]))?;
    report(people, "no-op sync", &noop);

    churn(&mut staff, people)?;
    write_file(&export, &staff)?;
    drop(staff);
    let plan = measure(dir.path(), command(&["plan"]))?;
    report(people, "churn plan", &plan);
    let sync = measure(dir.path(), command(&["sync"]))?;
    report(people, "churn sync", &sync);
    sim.stop();
    println!();
    if std::env::var_os("WHOLE_KEEP").is_some() {
        let kept = dir.keep();
        println!(
            "kept {} (export, config, database) for profiling by hand",
            kept.display()
        );
    }
    Ok(())
}

fn write_file(path: &Path, staff: &[Employee]) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    write_export(&mut out, staff)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// A day of HR changes, the same on every run: joiners at the end, leavers removed, moves and
/// renames in place.
fn churn(staff: &mut Vec<Employee>, people: usize) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(CHURN_SEED);
    staff.retain(|_| !rng.random_bool(0.002));
    for e in staff.iter_mut() {
        if rng.random_bool(0.005) {
            let at = DEPARTMENTS.iter().position(|d| *d == e.department);
            e.department = DEPARTMENTS[at.map_or(0, |at| (at + 1) % DEPARTMENTS.len())];
        }
        if rng.random_bool(0.01) {
            e.last = SURNAMES[rng.random_range(0..SURNAMES.len())];
        }
    }
    for i in people..people + people / 500 {
        staff.push(employee(i)?);
    }
    Ok(())
}

/// Runs `command` under GNU time, in `dir`; fails unless it exits 0.
fn measure(dir: &Path, command: Command) -> anyhow::Result<Measured> {
    let rusage = dir.join("time.out");
    let mut timed = Command::new(TIME);
    timed
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rusage)
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn");
    let started = Instant::now();
    let output = timed.output().context("while running pluvo-sync")?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "{:?} exited {}:\n{stdout}\n{}",
            command.get_args().collect::<Vec<_>>(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let peak_rss_kib = std::fs::read_to_string(&rusage)?
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .context("GNU time wrote no peak RSS")?;
    Ok(Measured {
        wall,
        peak_rss_kib,
        stdout,
    })
}

fn report(people: usize, what: &str, measured: &Measured) {
    // The first line says what the command did: the plan's summary or the run's result.
    let result = measured
        .stdout
        .lines()
        .find(|line| line.contains("create ") || line.starts_with("run "))
        .unwrap_or("")
        .trim();
    let result = result.split_once(": ").map_or(result, |(_, rest)| rest);
    println!(
        "{people:>9}  {what:<18} {:>8.2}s {:>6} MiB  {result}",
        measured.wall.as_secs_f64(),
        measured.peak_rss_kib / 1024,
    );
}

/// A `pluvo-sim` process with the example tenant and no rate limit.
struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(binary: &Path) -> anyhow::Result<Self> {
        let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sim-seed.toml");
        let mut child = Command::new(binary)
            .arg("--seed")
            .arg(seed)
            .args(["--rate", "0"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("while starting pluvo-sim")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("pluvo-sim's stdout")?).read_line(&mut line)?;
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("pluvo-sim said {line:?}, not where it listens"))?
            .to_owned();
        Ok(Self { child, url })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}
