//! The shell walkthroughs of the README and the guide (`docs/src`), run as
//! written against the real `ibiki-server`, each answer compared with the
//! one printed under its command: a doc whose answers no longer match what
//! the server prints fails here until it is updated.
//!
//! The convention (also in `docs/src/development.md`): an HTML comment, which
//! GitHub and mdBook do not show, right before a fenced block says what the
//! block is to the walkthrough it names.
//!
//! - `<!-- walkthrough NAME: server -->`: the block starts the server (or
//!   restarts it: the running one is stopped). Bash runs it, with
//!   `cargo run -p ibiki-examples --bin ibiki-server [-- ARGS]` and
//!   `ibiki-server ARGS` standing for the binary under test, listening on a
//!   free port of its own.
//! - `<!-- walkthrough NAME: log -->`: every line of the block shows, in
//!   order, within the lines the server has printed (stdout and stderr).
//! - `<!-- walkthrough NAME: file PATH -->`: the block is written to PATH.
//! - `<!-- walkthrough NAME: expect PATH -->`: the block is what PATH holds,
//!   written by an earlier command (for an answer too long for `# ` lines).
//! - `<!-- walkthrough NAME: run -->`: the block's commands run in bash, in
//!   the walkthrough's own directory (shell variables carry over to its next
//!   blocks), and each command's output must be its answer: the `# ` lines
//!   right after it (none: it prints nothing). A command is a run of lines
//!   that are neither blank nor `#`; a `#` line after a blank one is a
//!   comment.
//! - `<!-- not run: REASON -->`: a shell block left alone on purpose. Every
//!   `sh`, `bash`, `console` or `shell` block is marked one way or the
//!   other, or `every_shell_block_is_marked` fails.
//!
//! Commands reach the server as `localhost:8080` (or `127.0.0.1:8080`), and
//! another port written in a server block (`--metrics-listen
//! 127.0.0.1:9180`) stands for a free one; the actual ports are written back
//! as the doc's in what is compared. A walkthrough that uses
//! `postgres://postgres@127.0.0.1:5432/test` runs on `DATABASE_URL`, in a
//! schema of its own (its search path, and `IBIKI_DATABASE_SCHEMA`), and is
//! skipped without it (not in CI). Before comparing, both sides are masked:
//! RFC 3339 times, client keys (`ibk_…`) and their prefixes, endpoint
//! secrets (`whsec_…`), and a generated admin token. A walkthrough whose
//! Python imports a package of [`PYTHON_PACKAGES`] is skipped, saying so,
//! when `python3` lacks it (never in CI).
//!
//! `WALKTHROUGHS=overwrite` writes each changed answer into its doc instead
//! of failing (check the diff before committing it).
#![cfg(unix)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;

/// The database URL the docs write; a walkthrough that uses it needs
/// PostgreSQL.
const DOC_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The port the docs' server listens on.
const DOC_PORT: u16 = 8080;
/// The separator the runner prints between the outputs of commands.
const SEPARATOR: char = '\u{1e}';
/// How long a block may run, or a server take to start.
const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Reading the docs.

/// What a marker says a block is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Server,
    Log,
    File(String),
    Expect(String),
    Run,
}

/// A marker: `Ok((walkthrough, kind))`, or `Err(reason)` for `not run`.
type Mark = Result<(String, Kind), String>;

/// A fenced block of a markdown file.
#[derive(Debug, Clone)]
struct Block {
    /// The file, for `WALKTHROUGHS=overwrite`.
    path: PathBuf,
    /// `path:line` of its opening fence.
    place: String,
    /// The first word of its info string.
    lang: String,
    body: String,
    /// The line number of its first body line.
    first_line: usize,
    /// The marker before it.
    mark: Option<Mark>,
}

/// The markdown files whose shell blocks are walkthroughs.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("read the workspace")
        .filter_map(|entry| {
            let readme = entry.ok()?.path().join("README.md");
            readme.is_file().then_some(readme)
        })
        .collect();
    crates.sort();
    files.extend(crates);
    let mut stack = vec![root.join("docs").join("src")];
    let mut book = Vec::new();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                book.push(path);
            }
        }
    }
    book.sort();
    files.extend(book);
    files
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds examples/")
        .to_path_buf()
}

/// Reads a marker comment: `Some(Ok(..))` for a walkthrough's,
/// `Some(Err(reason))` for `not run`, `None` for any other line. A comment
/// that starts like a marker but does not parse panics, naming it.
fn marker(line: &str, place: &str) -> Option<Mark> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    if let Some(reason) = inner.strip_prefix("not run:") {
        return Some(Err(reason.trim().to_owned()));
    }
    let rest = inner.strip_prefix("walkthrough ")?;
    let (name, what) = rest
        .split_once(':')
        .unwrap_or_else(|| bad_marker(place, line));
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bad_marker(place, line);
    }
    let words: Vec<&str> = what.split_whitespace().collect();
    let kind = match words.as_slice() {
        ["server"] => Kind::Server,
        ["log"] => Kind::Log,
        ["run"] => Kind::Run,
        ["file", path] => Kind::File((*path).to_owned()),
        ["expect", path] => Kind::Expect((*path).to_owned()),
        _ => bad_marker(place, line),
    };
    Some(Ok((name.to_owned(), kind)))
}

fn bad_marker(place: &str, line: &str) -> ! {
    panic!(
        "{place}: a walkthrough marker is `<!-- walkthrough NAME: server|log|run|file PATH|expect PATH -->`, \
         not `{}`",
        line.trim()
    )
}

/// Every fenced block of `text`, with the marker right before it (blank
/// lines may stand between). A marker before anything else panics.
fn blocks(text: &str, file: &str, path: &Path) -> Vec<Block> {
    let mut found = Vec::new();
    let mut pending: Option<(String, Mark)> = None;
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let place = format!("{file}:{}", i + 1);
        if let Some(mark) = marker(line, &place) {
            if let Some((earlier, _)) = &pending {
                panic!("{earlier}: a marker must be followed by a fenced block");
            }
            pending = Some((place, mark));
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = line.len() - trimmed.len();
            let mut body = String::new();
            for (_, inner) in lines.by_ref() {
                if inner.trim_start().starts_with("```") {
                    break;
                }
                body.push_str(inner.get(indent..).unwrap_or(inner.trim_start()));
                body.push('\n');
            }
            found.push(Block {
                path: path.to_path_buf(),
                place,
                lang: info.split([',', ' ']).next().unwrap_or_default().to_owned(),
                body,
                first_line: i + 2,
                mark: pending.take().map(|(_, mark)| mark),
            });
        } else if !line.trim().is_empty()
            && let Some((earlier, _)) = &pending
        {
            panic!("{earlier}: a marker must be followed by a fenced block");
        }
    }
    if let Some((earlier, _)) = pending {
        panic!("{earlier}: a marker must be followed by a fenced block");
    }
    found
}

/// A walkthrough: its blocks in the order of the file.
#[derive(Debug)]
struct Walkthrough {
    file: String,
    name: String,
    blocks: Vec<(Kind, Block)>,
}

impl Walkthrough {
    fn needs_postgres(&self) -> bool {
        self.blocks
            .iter()
            .any(|(_, block)| block.body.contains(DOC_DATABASE_URL))
    }

    /// The Python packages its blocks import (`from PACKAGE…`/`import
    /// PACKAGE`) beyond the standard library: those a reader installs.
    fn python_packages(&self) -> Vec<&'static str> {
        PYTHON_PACKAGES
            .into_iter()
            .filter(|package| {
                self.blocks.iter().any(|(_, block)| {
                    block.body.contains(&format!("from {package}"))
                        || block.body.contains(&format!("import {package}"))
                })
            })
            .collect()
    }

    /// Whether `python3` can import what it needs; without it the
    /// walkthrough is skipped, saying so, except in CI, which installs them
    /// (`.ci/run`).
    fn runnable_with_python(&self) -> bool {
        let missing: Vec<&str> = self
            .python_packages()
            .into_iter()
            .filter(|package| {
                !Command::new("python3")
                    .args(["-c", &format!("import {package}")])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success())
            })
            .collect();
        if missing.is_empty() {
            return true;
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "walkthrough {} of {}: python3 cannot import {missing:?} (CI installs them)",
            self.name,
            self.file
        );
        eprintln!(
            "skipped: walkthrough {} of {}: python3 cannot import {missing:?} (pip install {})",
            self.name,
            self.file,
            missing.join(" ")
        );
        false
    }
}

/// Python packages a walkthrough may use, installed by `.ci/run`.
const PYTHON_PACKAGES: [&str; 1] = ["standardwebhooks"];

/// The walkthroughs of every doc file.
fn walkthroughs() -> Vec<Walkthrough> {
    let root = workspace_root();
    let mut all: Vec<Walkthrough> = Vec::new();
    for path in doc_files(&root) {
        let text = std::fs::read_to_string(&path).expect("read a doc");
        let file = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        all.extend(walkthroughs_of(&text, &file, &path));
    }
    all
}

fn walkthroughs_of(text: &str, file: &str, path: &Path) -> Vec<Walkthrough> {
    let mut by_name: BTreeMap<String, Walkthrough> = BTreeMap::new();
    for block in blocks(text, file, path) {
        if let Some(Ok((name, kind))) = block.mark.clone() {
            by_name
                .entry(name.clone())
                .or_insert_with(|| Walkthrough {
                    file: file.to_owned(),
                    name,
                    blocks: Vec::new(),
                })
                .blocks
                .push((kind, block));
        }
    }
    by_name.into_values().collect()
}

/// A command of a `run` block and its answer.
#[derive(Debug)]
struct Step {
    line: usize,
    /// How many lines the command takes.
    command_lines: usize,
    command: String,
    expected: Vec<String>,
}

fn steps(block: &Block) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut current: Option<Step> = None;
    for (i, line) in block.body.lines().enumerate() {
        if line.trim().is_empty() {
            steps.extend(current.take());
        } else if let Some(answer) = line.strip_prefix('#') {
            if let Some(step) = current.as_mut() {
                step.expected
                    .push(answer.strip_prefix(' ').unwrap_or(answer).to_owned());
            }
        } else {
            if current.as_ref().is_some_and(|s| !s.expected.is_empty()) {
                steps.extend(current.take());
            }
            let step = current.get_or_insert_with(|| Step {
                line: block.first_line + i,
                command_lines: 0,
                command: String::new(),
                expected: Vec::new(),
            });
            step.command_lines += 1;
            step.command.push_str(line);
            step.command.push('\n');
        }
    }
    steps.extend(current);
    steps
}

// ---------------------------------------------------------------------------
// Masking what differs from run to run.

static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
        .expect("a regex")
});
static KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"ibk_[A-Za-z0-9_-]{43}").expect("a regex"));
static KEY_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"ibk_[A-Za-z0-9_-]{8}").expect("a regex"));
static ENDPOINT_SECRET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"whsec_[A-Za-z0-9+/=]{32,88}").expect("a regex"));
static GENERATED_TOKEN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(admin token \(generated[^)]*\): )[0-9a-f]{64}").expect("a regex")
});

/// One line with what differs between runs replaced by a placeholder.
fn mask(line: &str) -> String {
    let line = TIME.replace_all(line, "[time]");
    let line = KEY.replace_all(&line, "ibk_[key]");
    let line = KEY_PREFIX.replace_all(&line, "ibk_[prefix]");
    let line = ENDPOINT_SECRET.replace_all(&line, "whsec_[secret]");
    let line = GENERATED_TOKEN.replace_all(&line, "${1}[token]");
    line.trim_end().to_owned()
}

// ---------------------------------------------------------------------------
// Running a walkthrough.

/// A server a walkthrough started, killed when dropped.
struct Server {
    child: Child,
    /// Every line it printed so far (stdout and stderr, in order).
    output: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The PostgreSQL a walkthrough runs on.
struct Database {
    /// `DATABASE_URL` with the walkthrough's schema as its search path
    /// (where its own tables go).
    url: String,
    schema: String,
    /// ibiki's schema (`IBIKI_DATABASE_SCHEMA`), left for the server to
    /// create.
    store_schema: String,
}

/// What a walkthrough runs with: its directory, its server, its ports.
struct Runner {
    /// Holds `work/` (the commands' working directory and `HOME`) and the
    /// shell variables between blocks.
    dir: PathBuf,
    server: Option<Server>,
    /// The doc's ports and the actual ones.
    ports: Vec<(u16, u16)>,
    database: Option<Database>,
    /// Changed answers are written into the docs instead of failing.
    overwrite: bool,
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.server = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Functions standing for the binary under test; `exec` in a server block,
/// so the process started is the server itself.
fn prelude(exec: bool) -> String {
    let exec = if exec { "exec " } else { "" };
    format!(
        r#"ibiki-server() {{ {exec}"$IBIKI_WALKTHROUGH_BIN" "$@"; }}
cargo() {{
  if [ "$#" -ge 5 ] && [ "$1 $2 $3 $4 $5" = "run -p ibiki-examples --bin ibiki-server" ]; then
    shift 5; [ "${{1-}}" = "--" ] && shift
    ibiki-server "$@"
  else
    echo "walkthrough: only 'cargo run -p ibiki-examples --bin ibiki-server' runs here, not 'cargo $*'" >&2
    return 127
  fi
}}
"#
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Runner {
    fn new(database: Option<Database>, overwrite: bool) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ibiki-walkthrough-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("work")).expect("create the walkthrough's directory");
        Self {
            dir,
            server: None,
            ports: Vec::new(),
            database,
            overwrite,
        }
    }

    fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// The doc's text as it runs here: its ports and database URL replaced.
    fn forward(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (doc, actual) in &self.ports {
            for host in ["localhost", "127.0.0.1"] {
                text = text.replace(&format!("{host}:{doc}"), &format!("127.0.0.1:{actual}"));
            }
        }
        if let Some(db) = &self.database {
            text = text.replace(DOC_DATABASE_URL, &db.url);
        }
        text
    }

    /// What ran here as the doc would show it: the actual ports, database
    /// URL and schema written back as the doc's.
    fn back(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (doc, actual) in &self.ports {
            text = text.replace(&format!("127.0.0.1:{actual}"), &format!("127.0.0.1:{doc}"));
        }
        if let Some(db) = &self.database {
            text = text
                .replace(&db.url, DOC_DATABASE_URL)
                .replace(&db.store_schema, "ibiki")
                .replace(&db.schema, "ibiki");
        }
        text
    }

    /// A bash with nothing of the test's environment but `PATH`.
    fn bash(&self, script: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(script)
            .current_dir(self.work())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.work())
            .env("LANG", "C.UTF-8")
            .env("IBIKI_WALKTHROUGH_BIN", env!("CARGO_BIN_EXE_ibiki-server"))
            .stdin(Stdio::null());
        if let Some(db) = &self.database {
            command.env("IBIKI_DATABASE_SCHEMA", &db.store_schema);
        }
        command
    }

    fn run(&mut self, walkthrough: &str, kind: &Kind, block: &Block) -> Result<(), String> {
        match kind {
            Kind::Server => self.start(block),
            Kind::Log => self.check_log(block),
            Kind::File(path) => std::fs::write(self.work().join(path), &block.body)
                .map_err(|e| format!("{}: writing {path}: {e}", block.place)),
            Kind::Expect(path) => self.expect(walkthrough, path, block),
            Kind::Run => self.run_block(walkthrough, block),
        }
    }

    /// The block against the file an earlier command wrote.
    fn expect(&self, walkthrough: &str, path: &str, block: &Block) -> Result<(), String> {
        let actual = std::fs::read_to_string(self.work().join(path))
            .map_err(|e| format!("{}: reading {path}: {e}", block.place))?;
        let step = Step {
            line: block.first_line,
            command_lines: 0,
            command: format!("cat {path}\n"),
            expected: block.body.lines().map(str::to_owned).collect(),
        };
        let actual = self.back(&actual);
        match compare(walkthrough, &block.place, &step, &actual) {
            Err(failure) if !self.overwrite => Err(failure),
            Err(_) => {
                edit(block, &step, &actual, "");
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }

    fn start(&mut self, block: &Block) -> Result<(), String> {
        self.server = None;
        // Every port the block names, other than the server's own, is a free
        // one here.
        static PORT: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"(?:localhost|127\.0\.0\.1):(\d+)").expect("a regex"));
        let named = block.body.replace(DOC_DATABASE_URL, "");
        for port in PORT.captures_iter(&named) {
            let doc: u16 = port[1]
                .parse()
                .map_err(|_| format!("{}: a port", block.place))?;
            if doc != DOC_PORT && !self.ports.iter().any(|(d, _)| *d == doc) {
                self.ports.push((doc, free_port()));
            }
        }
        self.ports.retain(|(doc, _)| *doc != DOC_PORT);
        let script = format!("{}exec 2>&1\n{}", prelude(true), self.forward(&block.body));
        let mut child = self
            .bash(&script)
            .env("IBIKI_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: bash: {e}", block.place))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let output = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("the output's lock").push(line);
            }
        });
        let mut server = Server { child, output };
        let started = Instant::now();
        loop {
            let address = server
                .output
                .lock()
                .expect("the output's lock")
                .iter()
                .find_map(|l| Some(l.split_once("listening address=")?.1.trim().to_owned()));
            if let Some(address) = address {
                let port = address
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse().ok())
                    .ok_or_else(|| format!("{}: listening on {address}?", block.place))?;
                self.ports.push((DOC_PORT, port));
                self.server = Some(server);
                return Ok(());
            }
            let exited = server.child.try_wait().ok().flatten();
            if exited.is_some() || started.elapsed() > LIMIT {
                std::thread::sleep(Duration::from_millis(100));
                let printed = server.output.lock().expect("the output's lock").join("\n");
                return Err(format!(
                    "{}: the server did not start ({}):\n{}\n  it printed:\n{}",
                    block.place,
                    exited.map_or("no address within 60 s".to_owned(), |s| s.to_string()),
                    indent(block.body.trim_end()),
                    indent(&printed)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every line of the block, in order, within what the server printed;
    /// waits a few seconds for lines still to come.
    fn check_log(&self, block: &Block) -> Result<(), String> {
        let Some(server) = &self.server else {
            return Err(format!("{}: a log block, but no server runs", block.place));
        };
        let expected: Vec<String> = block.body.lines().map(mask).collect();
        let started = Instant::now();
        loop {
            let printed: Vec<String> = server
                .output
                .lock()
                .expect("the output's lock")
                .iter()
                .map(|l| mask(&self.back(l)))
                .collect();
            let mut at = 0;
            let mut missing = None;
            for line in &expected {
                match printed[at..].iter().position(|p| p.contains(line.trim())) {
                    Some(i) => at += i + 1,
                    None => {
                        missing = Some(line.clone());
                        break;
                    }
                }
            }
            let Some(missing) = missing else {
                return Ok(());
            };
            if started.elapsed() > Duration::from_secs(5) {
                return Err(format!(
                    "{}: the server did not print, in this order:\n{}\n  first missing:\n{}\n  \
                     it printed:\n{}",
                    block.place,
                    indent(block.body.trim_end()),
                    indent(&missing),
                    indent(&printed.join("\n"))
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn run_block(&self, walkthrough: &str, block: &Block) -> Result<(), String> {
        let steps = steps(block);
        let state = self.dir.join("variables");
        // Variables of the earlier blocks in; this block's out. Bash's own
        // variables (there before the first line) are not carried.
        let mut script = String::from("__ibiki_base=\" $(compgen -v | tr '\\n' ' ') \"\n");
        script.push_str(&prelude(false));
        let _ = writeln!(script, "[ -f '{0}' ] && . '{0}'", state.display());
        script.push_str("exec 2>&1\n");
        for step in &steps {
            let _ = writeln!(script, "printf '\\036'\n{}", self.forward(&step.command));
        }
        let _ = writeln!(
            script,
            "printf '\\036'\nfor __ibiki_v in $(compgen -v); do case \"$__ibiki_base\" in \
             *\" $__ibiki_v \"*) ;; *) case \"$__ibiki_v\" in __ibiki*|BASH*|PIPESTATUS|_) ;; *) declare -p \
             \"$__ibiki_v\";; esac;; esac; done > '{}'",
            state.display()
        );
        let mut child = self
            .bash(&script)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: bash: {e}", block.place))?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut bytes);
            bytes
        });
        let started = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if started.elapsed() > LIMIT {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.wait();
        let printed = String::from_utf8_lossy(&reader.join().expect("the reader")).into_owned();
        let parts: Vec<&str> = printed.split(SEPARATOR).collect();
        for (i, step) in steps.iter().enumerate() {
            let Some(actual) = parts.get(i + 1).filter(|_| i + 2 < parts.len()) else {
                return Err(format!(
                    "{}:{}: walkthrough {walkthrough:?}: the block stopped (or took over {} s) \
                     at:\n{}\n  it printed:\n{}",
                    block.place.rsplit_once(':').map_or("", |(f, _)| f),
                    step.line,
                    LIMIT.as_secs(),
                    indent(step.command.trim_end()),
                    indent(&self.back(parts.get(i + 1).copied().unwrap_or_default()))
                ));
            };
            let actual = self.back(actual);
            if let Err(failure) = compare(walkthrough, &block.place, step, &actual) {
                if !self.overwrite {
                    return Err(failure);
                }
                edit(block, step, &actual, "# ");
            }
        }
        if let Some(extra) = parts.first().filter(|p| !p.trim().is_empty()) {
            return Err(format!(
                "{}: before its first command: {extra}",
                block.place
            ));
        }
        Ok(())
    }
}

/// Whether changed answers are written into the docs (`WALKTHROUGHS=overwrite`).
fn overwrite() -> bool {
    std::env::var("WALKTHROUGHS").is_ok_and(|v| v == "overwrite")
}

/// A changed answer to write into its doc: `len` lines from line `first`
/// (1-based) become `lines`.
struct Edit {
    path: PathBuf,
    first: usize,
    len: usize,
    lines: Vec<String>,
}

static EDITS: Mutex<Vec<Edit>> = Mutex::new(Vec::new());

/// Writes the changed answers into their docs, the last first so earlier
/// line numbers hold.
fn apply_edits() {
    let mut edits = std::mem::take(&mut *EDITS.lock().expect("the edits' lock"));
    edits.sort_by(|a, b| (&a.path, b.first).cmp(&(&b.path, a.first)));
    let mut files: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for edit in edits {
        let lines = files.entry(edit.path.clone()).or_insert_with(|| {
            std::fs::read_to_string(&edit.path)
                .expect("read a doc")
                .lines()
                .map(str::to_owned)
                .collect()
        });
        let at = edit.first - 1;
        lines.splice(at..at + edit.len, edit.lines);
        eprintln!(
            "walkthroughs: rewrote an answer at {}:{}",
            edit.path.display(),
            edit.first
        );
    }
    for (path, lines) in files {
        std::fs::write(&path, lines.join("\n") + "\n").expect("write a doc");
    }
}

/// Records `actual` as the new answer of `step`, each line after `prefix`.
fn edit(block: &Block, step: &Step, actual: &str, prefix: &str) {
    let actual = actual.trim_end_matches('\n');
    EDITS.lock().expect("the edits' lock").push(Edit {
        path: block.path.clone(),
        first: step.line + step.command_lines,
        len: step.expected.len(),
        lines: if actual.is_empty() {
            Vec::new()
        } else {
            actual
                .split('\n')
                .map(|l| format!("{prefix}{l}").trim_end().to_owned())
                .collect()
        },
    });
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The step's answer against what it printed, both masked.
fn compare(walkthrough: &str, place: &str, step: &Step, actual: &str) -> Result<(), String> {
    let actual = actual.trim_end_matches('\n');
    let actual_lines: Vec<&str> = if actual.is_empty() {
        Vec::new()
    } else {
        actual.split('\n').collect()
    };
    let expected: Vec<String> = step.expected.iter().map(|l| mask(l)).collect();
    let got: Vec<String> = actual_lines.iter().map(|l| mask(l)).collect();
    if expected == got {
        return Ok(());
    }
    let first = expected
        .iter()
        .zip(&got)
        .position(|(e, g)| e != g)
        .unwrap_or(expected.len().min(got.len()));
    let file = place.rsplit_once(':').map_or(place, |(f, _)| f);
    Err(format!(
        "{file}:{}: walkthrough {walkthrough:?}: the answer changed.\n  command:\n{}\n  \
         expected (as written):\n{}\n  actual:\n{}\n  first difference, line {} (masked):\n    \
         expected: {}\n    actual:   {}\n  Update the doc if the new answer is right.",
        step.line,
        indent(step.command.trim_end()),
        indent(&step.expected.join("\n")),
        indent(actual),
        first + 1,
        expected.get(first).map_or("(nothing)", String::as_str),
        got.get(first).map_or("(nothing)", String::as_str),
    ))
}

/// Runs one walkthrough from its first block to its last; the first
/// failure ends it.
fn run(
    walkthrough: &Walkthrough,
    database: Option<Database>,
    overwrite: bool,
) -> Result<(), String> {
    let mut runner = Runner::new(database, overwrite);
    for (kind, block) in &walkthrough.blocks {
        runner.run(&walkthrough.name, kind, block)?;
    }
    Ok(())
}

/// Runs the walkthroughs in parallel and fails with every failure.
fn run_all(selected: Vec<Walkthrough>, database: impl Fn() -> Option<Database> + Sync) {
    assert!(!selected.is_empty(), "no walkthrough found");
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = selected
            .iter()
            .map(|w| {
                let database = &database;
                scope.spawn(move || run(w, database(), overwrite()))
            })
            .collect();
        handles
            .into_iter()
            .zip(&selected)
            .filter_map(|(handle, w)| match handle.join() {
                Ok(Ok(())) => {
                    eprintln!("walkthrough {} ({}): ok", w.name, w.file);
                    None
                }
                Ok(Err(failure)) => Some(failure),
                Err(_) => Some(format!("walkthrough {} ({}) panicked", w.name, w.file)),
            })
            .collect()
    });
    apply_edits();
    assert!(
        failures.is_empty(),
        "{} of {} walkthroughs failed:\n\n{}",
        failures.len(),
        selected.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn walkthroughs_on_the_memory_store() {
    let selected = walkthroughs()
        .into_iter()
        .filter(|w| !w.needs_postgres() && w.runnable_with_python())
        .collect();
    run_all(selected, || None);
}

#[cfg(feature = "postgres")]
#[test]
fn walkthroughs_on_postgres() {
    use ibiki_postgres::testing::{SchemaGuard, database_url, unique_schema};

    let selected: Vec<Walkthrough> = walkthroughs()
        .into_iter()
        .filter(Walkthrough::needs_postgres)
        .collect();
    let Some(url) = database_url() else {
        return;
    };
    let guards = Mutex::new(Vec::new());
    run_all(selected, || {
        let schema = unique_schema();
        let store_schema = format!("{schema}_store");
        let mut guards = guards.lock().expect("the guards' lock");
        guards.push(SchemaGuard::new(&url, &schema));
        guards.push(SchemaGuard::new(&url, &store_schema));
        let create = Command::new("psql")
            .args([url.as_str(), "-qc", &format!("CREATE SCHEMA \"{schema}\"")])
            .env_remove("PGOPTIONS")
            .output()
            .expect("psql (PostgreSQL's client) runs the walkthroughs' SQL");
        assert!(
            create.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&create.stderr)
        );
        let separator = if url.contains('?') { '&' } else { '?' };
        Some(Database {
            url: format!("{url}{separator}options=-c%20search_path%3D{schema}"),
            schema,
            store_schema,
        })
    });
}

#[test]
fn every_shell_block_is_marked() {
    let root = workspace_root();
    let mut unmarked = Vec::new();
    for path in doc_files(&root) {
        let text = std::fs::read_to_string(&path).expect("read a doc");
        let file = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        for block in blocks(&text, &file, &path) {
            let shell = matches!(block.lang.as_str(), "sh" | "bash" | "console" | "shell");
            if shell && block.mark.is_none() {
                unmarked.push(block.place);
            }
        }
    }
    assert!(
        unmarked.is_empty(),
        "shell blocks without a marker: run them as a walkthrough \
         (`<!-- walkthrough NAME: server|run -->`) or say why not (`<!-- not run: REASON -->`):\n{}",
        unmarked.join("\n")
    );
}

#[test]
fn every_walkthrough_is_found_and_read() {
    let all = walkthroughs();
    for w in &all {
        let runs = w.blocks.iter().filter(|(k, _)| *k == Kind::Run).count();
        assert!(
            runs > 0,
            "walkthrough {} ({}) runs no command",
            w.name,
            w.file
        );
        for (kind, block) in &w.blocks {
            if *kind == Kind::Run {
                assert!(
                    !steps(block).is_empty(),
                    "{}: a run block without a command",
                    block.place
                );
            }
        }
    }
}

/// The runner itself: a changed answer fails, naming the command, the
/// answer written and the one printed; masked parts may differ.
#[test]
fn a_changed_answer_fails_and_a_masked_one_passes() {
    let doc = "<!-- walkthrough check: run -->\n```sh\nGREETING=hello\n\n\
               # Says hello.\necho \"$GREETING\"\n# goodbye\n```\n";
    let path = Path::new("doc.md");
    let failure =
        run(&walkthroughs_of(doc, "doc.md", path)[0], None, false).expect_err("a changed answer");
    for part in ["doc.md:6", "echo \"$GREETING\"", "    goodbye", "    hello"] {
        assert!(failure.contains(part), "{part:?} is not in:\n{failure}");
    }

    let doc = "<!-- walkthrough check: run -->\n```sh\n\
               echo \"at $(date -u +%Y-%m-%dT%H:%M:%S.%NZ)\"\n# at 2026-01-02T03:04:05.6Z\n\
               printf 'ibk_%043d\\n' 7\n# ibk_qOBHvLOy-4VdyUQlBvaM4BmUc2K2SsV5_GEYv4SeTtI\n\
               NAME=ibiki\n```\n\n<!-- walkthrough check: run -->\n```sh\necho \"$NAME\"\n# ibiki\n```\n";
    run(&walkthroughs_of(doc, "doc.md", path)[0], None, false).expect("masked answers match");
}
