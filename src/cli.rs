//! The command line. Doc comments here are the `--help` text and the man page
//! (man/etop.1 is generated from this definition).

use crate::agent::SortKey;
use crate::views::Format;
use crate::views::ets::EtsSort;
use crate::views::ports::PortSort;
use crate::views::procs::model::NameStyle;
use crate::views::threads::ThreadSort;
use crate::views::watch::WatchFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub const EXAMPLES: &str = "\
Examples:
  etop demo@db1                      top 10 processes by reductions, every 5 s
  etop --sort msgq -i 2 demo         biggest mailboxes on the local node 'demo'
  etop --once --sort memory demo@db1 | grep worker
                                     one frame as plain text, for pipes
  etop -n 12 -i 5 --format csv demo > load-test.csv
                                     a minute of frames as CSV
  etop --once --format json demo | jq '.rows[0]'
  etop --cookie-file /srv/app/releases/COOKIE demo@db1.example.com
  etop                               the one node running on this host, cookie found
  etop nodes                         the nodes on this host and where their cookies are
  etop threads --once demo           the VM's OS threads: scheduler CPU, context switches
  etop ports --once demo             the ports (sockets...) with the most traffic
  etop ets -s growth demo            the ETS tables that grow fastest
  etop msacc --duration 5 --format csv demo > msacc.csv
                                     where the VM's threads spend their time
  etop watch --fail-if 'mq>10000' --fail-if 'mq.grows>=5' --for 10m demo
                                     a load-test gate: exit 7 when one holds
  etop --cluster --sort msgq rabbit@mq1
                                     biggest mailboxes of the whole cluster
  etop ports --once a@db1 b@db2      the busiest ports of two nodes, merged
  etop --tls-cert me.pem --tls-key me.key --tls-ca ca.pem demo@db1.example.com
                                     a node with -proto_dist inet_tls (a local one
                                     needs no flags: its own options are used)
  etop completions bash              a completion script for bash, zsh or fish

Keys on a terminal:
  q, Esc or Ctrl-C quits; the table redraws when the terminal is resized.

Environment:
  ERLANG_COOKIE   the node's cookie (before the node's own and ~/.erlang.cookie)
  ERL_EPMD_PORT   EPMD's port, as for erl
  COLUMNS         the text width when not writing to a terminal
  NO_COLOR        no styling in --help and usage errors (etop's output has no colour)

Exit codes:
  0  ok, quit, or the output pipe was closed
  1  unexpected failure
  2  usage error, no cookie (the line says where the node's is), several local
     nodes and none named
  3  node unreachable: EPMD down, unknown name, refused, timeout
  4  cookie rejected, or connection not allowed
  5  connection lost and not regained (batch: retried for 3 intervals, at least 10 s);
     with several nodes: none answered for as long
  6  the node answered but a remote call failed
  7  etop watch: a --fail-if condition held
  8  TLS distribution: a certificate refused (the node's by etop, or etop's by the node)";

/// What each view prints, for the man page's OUTPUT section (blocks separated
/// by blank lines; a block's first line is its caption).
pub const MAN_OUTPUT: &str = "\
The process table, etop --once --sort msgq demo:
demo@db1  2026-11-26 14:23:10  sorted by message queue, reductions over 1.0 s
Load:  cpu       100%    Memory:  total       29.7M    binary    802K
       procs     5050             processes   18.6M    code      5.2M
       runq         1             atom         272K    ets       481K
OS:    rss      54.5M (VM total 29.7M, overhead 24.7M)  threads 20  host cpu 100% of 2  load 2.29 1.52 0.87
Pid         Name or Initial Func  Reds  Memory  MsgQ  Current Function
<0.5087.0>  metrics_worker        1945    326K  2178  timer:sleep/1
<0.0.0>     init                     1   21.1K     0  init:loop/1

Local nodes, etop nodes:
Node            OS pid  User  Dist port  OTP     ERTS    Cookie from                       TLS
demo@db1          7448  app       42449  25      13.1.5  releases/COOKIE                   yes
worker@db1       21578  app       37799  25.2.3  13.1.5  $HOME/.erlang.cookie of user app  no

OS threads, etop threads --once demo:
  TID  Thread           S  CPU%  User%  Sys%  VolCS  InvolCS  Core
21590  2_scheduler      R  98.9   97.9   1.0      0       29     1
21589  1_scheduler      R  97.9   97.9   0.0      0      430     0

Ports, etop ports --once demo:
Port         Name      Owner                 Owner Pid  Local            Remote  RecvCnt  RecvOct  SendCnt  SendOct  Queue
#Port<0.9>   udp_inet  metrics_exporter      <0.96.0>   127.0.0.1:39390                0        0     1638     1.6M      0
#Port<0.10>  tcp_inet  xmpp_listener:init/1  <0.98.0>   [::]:5222                      0        0        0        0      0

ETS tables, etop ets -s growth demo:
Table       Id  Owner       Type  Access  Size  Memory  +Size  +Memory
demo_cache      <0.2088.0>  set   public  6800    759K  +2000    +219K

A whole cluster, etop --cluster --once --sort msgq a@db1:
cluster of 4 nodes via a@db1  2026-11-30 06:08:17  sorted by message queue, reductions over 1.0 s
Node  CPU  Procs  RunQ  Memory  MaxMsgQ  State
a      0%    101     0   17.5M        0  ok
b      0%    101     0   17.2M        0  ok
c      1%    102     0   19.5M    16697  ok
d       -      -     -       -        -  no answer for 4 s: lost the connection to d@db1: closed; retrying
all    0%    304     0   54.2M    16697  3 of 4 answered
Node  Pid        Name or Initial Func  Reds  Memory   MsgQ  Current Function
c     <0.137.0>  metrics_worker        5326    2.3M  16697  timer:sleep/1
a     <0.0.0>    init                     1   21.1K      0  init:loop/1

Microstate accounting, etop msacc -d 2 demo (first table; a per-state table follows):
Thread type          Threads   aux  check_io  emulator    gc  other  port   sleep
dirty_cpu_scheduler        2  0.0%      0.0%      0.0%  0.0%   0.0%  0.0%  100.0%
scheduler                  2  0.5%      0.0%     47.0%  4.2%   1.8%  0.5%   46.0%";

/// top for Erlang and Elixir nodes: which processes eat reductions, memory and
/// mailbox space, and where they are.
///
/// etop attaches to a running node as a hidden distribution node (EPMD and the
/// cookie handshake), loads no code there, and computes the top N on the node
/// with compiled stdlib, so each refresh costs the node little.
#[derive(Debug, Parser)]
#[command(
    name = "etop",
    version = env!("ETOP_VERSION"),
    after_help = EXAMPLES,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub top: TopArgs,
}

/// The process table, etop's main view.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    #[command(flatten)]
    pub procs: ProcArgs,

    #[command(flatten)]
    pub session: Session,
}

/// What every view of a node takes: which node, how frames come, how they
/// are written, how to connect.
#[derive(Debug, Clone, Args)]
pub struct Session {
    /// The node: name@host; a bare name or an OS pid for a node on this host;
    /// nothing for the node RELEASE_NODE names (inside a release's shell), else
    /// the only node on this host.
    #[arg(value_name = "NODE")]
    pub node: Option<String>,

    #[command(flatten)]
    pub nodes: ClusterArgs,

    #[command(flatten)]
    pub frames: FrameArgs,

    #[command(flatten)]
    pub out: OutputArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the Erlang and Elixir nodes running on this host: name, OS pid,
    /// user, distribution port, OTP release, where the cookie comes from, and
    /// whether it speaks TLS distribution.
    #[command(after_help = "Examples:\n  etop nodes\n  etop nodes --format json | jq .node")]
    Nodes {
        /// Output format: a table, CSV rows, or one JSON object per node.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,

        #[command(flatten)]
        host: HostArgs,
    },
    /// The VM's OS threads (schedulers, dirty schedulers, async pool, aux)
    /// with CPU per interval, state, context switches and the core they last
    /// ran on. Needs no cookie; works on a node that is not distributed.
    #[command(
        after_help = "Examples:\n  etop threads --once demo\n  etop threads --pid 4242 -s vcs",
        mut_arg("lines", |a| a.help("How many threads to show. On a terminal, at most what fits"))
    )]
    Threads {
        /// The node: a name, a bare name or an OS pid of a node on this host.
        #[arg(value_name = "NODE", conflicts_with = "pid")]
        node: Option<String>,
        /// The beam.smp OS process id.
        #[arg(long, value_name = "PID")]
        pid: Option<u32>,
        /// What to sort threads by.
        #[arg(short, long, value_enum, default_value = "cpu")]
        sort: ThreadSort,
        #[command(flatten)]
        frames: FrameArgs,
        #[command(flatten)]
        out: OutputArgs,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Every port (TCP/UDP sockets, files, spawned programs) and socket-module
    /// socket: owner, addresses, and packets and bytes in and out per interval.
    #[command(
        after_help = "Examples:\n  etop ports --once demo\n  etop ports -s send_oct -i 2 demo@db1",
        mut_arg("lines", |a| a.help("How many ports to show. On a terminal, at most what fits"))
    )]
    Ports {
        /// What to sort ports by.
        #[arg(short, long, value_enum, default_value = "bytes")]
        sort: PortSort,
        #[command(flatten)]
        session: Session,
    },
    /// Every ETS table: owner, type, size, memory, and growth per interval.
    #[command(
        after_help = "Examples:\n  etop ets --once demo\n  etop ets -s growth -i 10 demo",
        mut_arg("lines", |a| a.help("How many tables to show. On a terminal, at most what fits"))
    )]
    Ets {
        /// What to sort tables by.
        #[arg(short, long, value_enum, default_value = "memory")]
        sort: EtsSort,
        #[command(flatten)]
        session: Session,
    },
    /// One process in detail: registered name, initial and current call,
    /// stack, status, mailbox length, memory, heap and stack sizes,
    /// reductions and their rate, garbage collection, links, monitors and
    /// monitored-by (counts, and the first with their names), trap_exit,
    /// priority, group leader, parent and ancestors, binary memory. Never its
    /// mailbox, state or dictionary. One snapshot, unless -n or -i ask for
    /// more.
    #[command(
        after_help = "Examples:\n  etop proc '<0.123.0>' demo\n  etop proc '<0.123.0>' --format json demo | jq .links",
        mut_arg("lines", |a| a.hide(true))
    )]
    Proc {
        /// The process, as the node's shell prints it: <0.123.0>.
        #[arg(value_name = "PID", value_parser = parse_pid)]
        pid: String,
        #[command(flatten)]
        session: Session,
    },
    /// A load-test gate: sample the node as the main view does and judge
    /// each --fail-if condition on every frame. When one holds, print one
    /// line naming the node, the process (pid, name, current function) or
    /// ETS table, the values and the frame, and exit 7. When --for elapses,
    /// or on SIGTERM or Ctrl-C, print a summary (frames taken; for each
    /// condition the worst value seen and where) and exit 0. A lost node is
    /// retried as in the main view, then exit 5.
    #[command(after_help = WATCH_HELP)]
    Watch(WatchArgs),
    /// Microstate accounting: where the VM's threads spend their time
    /// (emulator, gc, check_io, port, sleep...) over a window. The flag is
    /// turned on for the window and put back as it was, also if etop is
    /// interrupted or the connection drops.
    #[command(
        after_help = "Examples:\n  etop msacc demo\n  etop msacc --duration 5 --format csv demo > msacc.csv"
    )]
    Msacc {
        /// The node: name@host; a bare name or an OS pid for a node on this
        /// host; nothing for the node RELEASE_NODE names (inside a release's
        /// shell), else the only node on this host.
        #[arg(value_name = "NODE")]
        node: Option<String>,
        /// Seconds to measure. Ctrl-C ends the window early and still reports.
        #[arg(short, long, value_name = "SECS", default_value = "10",
              value_parser = parse_interval, allow_negative_numbers = true)]
        duration: f64,
        /// Also one row per thread.
        #[arg(long)]
        threads: bool,
        #[command(flatten)]
        out: OutputArgs,
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print a completion script for a shell, generated from etop's own
    /// definition of its commands and flags.
    #[command(
        after_help = "Examples:\n  etop completions bash > ~/.local/share/bash-completion/completions/etop\n  \
                            etop completions zsh > ~/.zfunc/_etop\n  \
                            etop completions fish > ~/.config/fish/completions/etop.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// The shells `etop completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// The completion script for this shell.
    pub fn script(self) -> Vec<u8> {
        use clap::CommandFactory;
        let shell = match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        };
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "etop", &mut out);
        out
    }
}

/// The closing text of `etop watch --help`: the conditions' syntax.
pub const WATCH_HELP: &str = "\
Conditions (the syntax of --filter, and of `/` on a terminal):
  mq>10000  mem>512M  reds>1000000  reds_pct>50
                    a process: mailbox, memory (K, M, G: powers of 1024),
                    reductions in the interval, their share of the node's
  mq.grows>=5       a mailbox that grew in each of the last 5 frames
  mem.grows>=5      a process's memory, the same
  ets.mem.grows>=5  an ETS table's memory, the same
  node.mem>4G       the node's memory (erlang:memory(total))
  node.procs>80%    processes against the limit; node.ports, node.atoms,
                    node.ets too, as counts or shares of their limits
  runq>schedulers   the run queue against the number of schedulers
  worker            a word in the name, initial call or current function
                    (a table's name or owner, beside ets terms)
  and, or, ( )      `mq>1000 worker` is `mq>1000 and worker`
A condition holds when it holds for one process (or table) in the frame.
Each process field is checked on the top rows of the sort by that field,
so the worst process is always among them. A condition cannot speak of
processes and tables at once: give two. With --cluster (or several
NODEs) a condition holds when it holds on any node, and the line names it.

Examples:
  etop watch --fail-if 'mq>10000' --for 10m demo@ci
  etop watch --cluster --fail-if 'mq>10000' --for 10m app1@web1
  etop watch --fail-if 'mq.grows>=5' --fail-if 'node.procs>80%' -i 2 demo
  etop watch --fail-if 'ets.mem.grows>=10' --format json demo > watch.jsonl
  etop watch --keep-going --fail-if 'reds_pct>50' --for 1h demo

Exit codes: 0 no condition held (--for elapsed, or a signal); 2 a condition
does not parse (before connecting); 5 the node was lost (with several
nodes: none answered); 7 a condition held.";

/// `etop watch`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// The node: name@host; a bare name or an OS pid for a node on this host;
    /// nothing for the only node on this host.
    #[arg(value_name = "NODE")]
    pub node: Option<String>,

    /// A condition that fails the run, in the filter syntax with the terms
    /// below. Repeat for more; the run fails when any one holds.
    #[arg(long = "fail-if", value_name = "EXPR", required = true)]
    pub fail_if: Vec<String>,

    /// Stop after this long and pass if no condition held: seconds, or
    /// with a unit (90s, 10m, 1h). Without it, until a condition holds or a
    /// signal.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<f64>,

    /// Seconds between frames; fractions allowed.
    #[arg(short, long, value_name = "SECS", default_value = "5", value_parser = parse_interval)]
    pub interval: f64,

    /// How many processes (and tables) each sort brings. Growth is seen in
    /// the rows of consecutive frames.
    #[arg(short, long, value_name = "N", default_value = "20",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub lines: u32,

    /// Do not stop at the first condition that holds: say when each starts
    /// and stops holding, and exit 7 at the end if any held.
    #[arg(long)]
    pub keep_going: bool,

    /// Output format: lines, or JSON Lines events (became_true,
    /// became_false) with the summary as the last line.
    #[arg(long, value_enum, default_value = "text")]
    pub format: WatchFormat,

    /// Say what etop is doing (cookie source, our node name) on standard error.
    #[arg(short, long)]
    pub verbose: bool,

    #[command(flatten)]
    pub nodes: ClusterArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ProcArgs {
    /// What to sort by.
    #[arg(short, long, value_enum, default_value = "reductions")]
    pub sort: SortArg,

    /// Show total reductions since each process started instead of the
    /// reductions in the interval.
    #[arg(short, long)]
    pub accumulate: bool,

    /// How to write module and process names: Elixir style
    /// (`Demo.Worker.handle_cast/2`) when the node runs Elixir, or as chosen.
    #[arg(long, value_enum, default_value = "auto")]
    pub names: NameStyle,

    /// Show each scheduler's utilisation in the header (normal and dirty CPU
    /// schedulers). JSON frames always carry them.
    #[arg(long)]
    pub schedulers: bool,

    /// Only processes that match: words that must appear in the name,
    /// initial call or current function, and conditions such as
    /// `mq>100 mem>10M reds>1000` (fields mq, mem, reds, reds_pct, heap,
    /// bin; units K, M, G; `and`, `or`, parentheses). The same as `/` on a
    /// terminal.
    #[arg(long, value_name = "EXPR", value_parser = parse_filter)]
    pub filter: Option<FilterArg>,
}

/// A `--filter` as typed and as parsed.
#[derive(Debug, Clone)]
pub struct FilterArg {
    pub text: String,
    pub expr: crate::views::filter::Expr,
}

fn parse_filter(s: &str) -> Result<FilterArg, String> {
    match crate::views::filter::parse(s, &crate::views::filter::ProcFields) {
        Ok(Some(expr)) => Ok(FilterArg {
            text: s.to_string(),
            expr,
        }),
        Ok(None) => Err("the filter is empty".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sort keys as typed on the command line; etop's spellings are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    /// Reductions (BEAM's unit of CPU work) in the interval. Cheap: at 1M
    /// processes about 0.08x what OTP's etop collector costs the node per
    /// refresh (make bench; README, "Cost on the target").
    #[value(alias = "reds", alias = "runtime")]
    Reductions,
    /// Process memory: heap, stack, mailbox and internal structures. Every
    /// process must answer: about 0.75x the collector at 1M.
    #[value(alias = "mem")]
    Memory,
    /// Messages waiting in the mailbox. Cheap: about 0.09x the collector.
    #[value(alias = "msg_q", alias = "message_queue_len")]
    Msgq,
    /// Total heap size: young and old heap and stack. Every process must
    /// answer: about 0.74x the collector at 1M, like the memory sort.
    #[value(alias = "total_heap_size")]
    Heap,
    /// Off-heap (refc) binaries each process refers to. The costliest sort,
    /// every process listing every binary it holds: about 0.9x the
    /// collector at 1M.
    #[value(alias = "bin")]
    Binary,
}

impl From<SortArg> for SortKey {
    fn from(s: SortArg) -> SortKey {
        match s {
            SortArg::Reductions => SortKey::Reductions,
            SortArg::Memory => SortKey::Memory,
            SortArg::Msgq => SortKey::Msgq,
            SortArg::Heap => SortKey::Heap,
            SortArg::Binary => SortKey::Binary,
        }
    }
}

/// The nodes besides NODE: more named ones, or NODE's whole cluster. The
/// process, port and ETS views merge them into one table; `etop watch`
/// judges its conditions on each.
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
    /// More nodes, watched with NODE: each node's top N merged into one
    /// table with a Node column and a line per node above it (etop watch: a
    /// condition holds when it holds on any of them). NODE's cookie is used
    /// for all, and the --tls-* flags apply to all.
    #[arg(value_name = "MORE_NODES")]
    pub more_nodes: Vec<String>,

    /// Watch NODE's whole cluster: NODE and every node it is connected to
    /// (erlang:nodes()), with NODE's cookie, reached as NODE reaches them
    /// (its EPMD port, its TLS files). Nodes that join are added at the
    /// next frame; a node that stops answering is marked and attached
    /// again when it is back.
    #[arg(long, conflicts_with = "more_nodes")]
    pub cluster: bool,

    /// Like --cluster, and also the hidden nodes NODE is connected to
    /// (remote shells, tools), never another etop session.
    #[arg(long, conflicts_with = "more_nodes")]
    pub cluster_hidden: bool,
}

impl ClusterArgs {
    /// Several nodes: `--cluster`, or more than one NODE.
    pub fn any(&self) -> bool {
        self.cluster || self.cluster_hidden || !self.more_nodes.is_empty()
    }
}

impl Session {
    /// Several nodes in one view: `--cluster`, or more than one NODE.
    pub fn is_cluster(&self) -> bool {
        self.nodes.any()
    }
}

/// How often, how many, and for how long frames are shown.
#[derive(Debug, Clone, Args)]
pub struct FrameArgs {
    /// Seconds between frames; fractions allowed. With --once: the length of
    /// the sampling window (1 s unless given).
    // A negative number is a value to refuse with its range, not `-1`
    // (`--once`) or a missing value.
    #[arg(short, long, value_name = "SECS", value_parser = parse_interval,
          allow_negative_numbers = true)]
    pub interval: Option<f64>,

    /// How many processes to show: on a terminal, as many as fit unless
    /// given; otherwise 10.
    #[arg(short, long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub lines: Option<u32>,

    /// Stop after N frames.
    #[arg(short = 'n', long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub iterations: Option<u64>,

    /// Print one frame and exit. Rates still cover a real window: etop
    /// samples twice, one interval apart (unless --accumulate).
    #[arg(short = '1', long)]
    pub once: bool,

    /// Print frames one after another instead of repainting the screen.
    /// Automatic when standard output is not a terminal.
    #[arg(short, long)]
    pub batch: bool,
}

impl FrameArgs {
    /// Rows to show when the screen does not decide.
    pub fn rows(&self) -> usize {
        self.lines.unwrap_or(10) as usize
    }

    /// The interval between frames, or the window of a --once run.
    pub fn interval_secs(&self) -> f64 {
        match (self.interval, self.once) {
            (Some(i), _) => i,
            (None, true) => 1.0,
            (None, false) => 5.0,
        }
    }
}

/// What is printed, and how much etop says about itself.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format: a table, CSV rows, or one JSON object per frame (JSON Lines).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Say what etop is doing (cookie source, our node name) on standard error.
    #[arg(short, long)]
    pub verbose: bool,

    /// Append one JSON line per sample to this file: the request's wall time,
    /// the node's own time for it, bytes on the connection. For benchmarks.
    #[arg(long, value_name = "PATH", hide = true)]
    pub stats_file: Option<PathBuf>,
}

/// Where to look for the BEAMs on this host.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// Where to look for local nodes: the proc filesystem of this host, or
    /// e.g. /host/proc from inside a container.
    #[arg(long, value_name = "PATH", default_value = "/proc")]
    pub proc_root: PathBuf,
}

/// How to reach the node.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Read the cookie from this file.
    #[arg(long, value_name = "PATH")]
    pub cookie_file: Option<PathBuf>,

    /// The cookie itself. Other users can see it in the process list: prefer
    /// --cookie-file or ERLANG_COOKIE.
    #[arg(long, value_name = "COOKIE")]
    pub cookie: Option<String>,

    /// Connect to this distribution port directly instead of asking EPMD.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Our own node name's first part: letters, digits, '_' and '-' (default
    /// etop_<user>; a number is appended when another etop holds it).
    #[arg(long, value_name = "NAME", value_parser = parse_our_name)]
    pub name: Option<String>,

    #[command(flatten)]
    pub host: HostArgs,

    /// The heap ceiling of every process etop starts on the node, in MB
    /// (or with a unit: 512M, 2G). A frame that needs more is stopped by the
    /// VM and reported; the node is untouched. Default: twice what a frame
    /// needs (about 0.5 KB per process, port or table) plus 8 MB, at most
    /// half of the node's memory, at least 4 MB.
    #[arg(long, value_name = "MB", value_parser = parse_size)]
    pub agent_max_heap: Option<u64>,

    /// Seconds to wait for EPMD, the connection and the handshake, and for
    /// the whole setup after it.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_interval,
          allow_negative_numbers = true)]
    pub connect_timeout: f64,

    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS distribution (nodes started with `-proto_dist inet_tls`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "TLS distribution")]
pub struct TlsArgs {
    /// Our client certificate (PEM; a chain may follow it), for a node
    /// started with -proto_dist inet_tls. Any --tls-* flag makes etop speak
    /// TLS and replaces the node's own options entirely; with none, etop
    /// uses the client options (certfile, keyfile, cacertfile) of a local
    /// node's -ssl_dist_optfile or -ssl_dist_opt.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM, unencrypted). Default: read
    /// from the --tls-cert file.
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// The CA certificates (PEM) the node's certificate must be signed by.
    /// Its certificate must also hold the host part of the node's name.
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
}

impl Cli {
    /// Parses the command line. A command's flags go after its name:
    /// `etop --format json nodes` would otherwise read `nodes` as a node.
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut cmd = Cli::command();
        let matches = cmd.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let s = &cli.top.session;
        if cli.command.is_none()
            && let Some(node) = s
                .node
                .iter()
                .chain(&s.nodes.more_nodes)
                .find(|n| cmd.find_subcommand(n).is_some())
        {
            return Err(cmd.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "'{node}' is a command: give its flags after it, as in 'etop {node} --help'"
                ),
            ));
        }
        Ok(cli)
    }
}

/// A pid as the node's shell prints it, `<0.123.0>` (the brackets may be
/// left out).
fn parse_pid(s: &str) -> Result<String, String> {
    let t = s.trim();
    let inner = t.strip_prefix('<').unwrap_or(t);
    let inner = inner.strip_suffix('>').unwrap_or(inner);
    let parts: Vec<&str> = inner.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Ok(format!("<{inner}>"))
    } else {
        Err(format!(
            "'{s}' is not a pid; give it as the node's shell prints it: <0.123.0>"
        ))
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v.is_finite() && (0.05..=86_400.0).contains(&v)) {
        return Err(format!("'{s}' is out of range (0.05 to 86400 seconds)"));
    }
    Ok(v)
}

/// A length of time in seconds: a number, or a number with s, m or h.
fn parse_duration(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "'{s}' is not a duration (use seconds, or 90s, 10m, 1h)"
            ));
        }
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (use seconds, or 90s, 10m, 1h)"))?;
    let secs = v * scale;
    if !(secs.is_finite() && (0.05..=30.0 * 86_400.0).contains(&secs)) {
        return Err(format!("'{s}' is out of range (0.05 seconds to 30 days)"));
    }
    Ok(secs)
}

/// A size in bytes: a number of MB, or a number with K, M or G.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].to_ascii_uppercase()),
        None => (t, "M".to_string()),
    };
    let shift = match unit.trim_end_matches('B') {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("'{s}' is not a size (use MB, or 512M, 2G)")),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size (use MB, or 512M, 2G)"))?;
    let bytes = v * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= (1u64 << 20) as f64 && bytes <= (1u64 << 40) as f64) {
        return Err(format!("'{s}' is out of range (1 MB to 1 TB)"));
    }
    Ok(bytes as u64)
}

/// The longest `--name` taken: room is left for `_N`, '@' and the host in
/// the 255 characters a node name may have.
const OUR_NAME_MAX: usize = 200;

/// `--name`: what erl accepts before the '@' of a node name, no more.
fn parse_our_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the name is empty".into());
    }
    if s.contains('@') {
        return Err("give only the part before '@': etop adds this host's name".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "'{}' cannot appear in a node name; use letters, digits, '_' and '-'",
            crate::text::terminal_safe(c.encode_utf8(&mut [0; 4]))
        ));
    }
    if s.len() > OUR_NAME_MAX {
        return Err(format!("longer than {OUR_NAME_MAX} characters"));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::parse_args(std::iter::once("etop").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let t = parse(&["demo@vm"]).unwrap().top;
        let c = &t.session;
        assert_eq!(c.node.as_deref(), Some("demo@vm"));
        assert_eq!(t.procs.sort, SortArg::Reductions);
        assert_eq!(c.frames.interval_secs(), 5.0);
        assert_eq!((c.frames.lines, c.frames.rows()), (None, 10));
        assert_eq!(c.out.format, Format::Text);
        assert!(!c.frames.once && !c.frames.batch && !t.procs.accumulate);
    }

    #[test]
    fn accepts_etops_sort_spellings() {
        for (arg, want) in [
            ("msg_q", SortArg::Msgq),
            ("msgq", SortArg::Msgq),
            ("mem", SortArg::Memory),
            ("memory", SortArg::Memory),
            ("reds", SortArg::Reductions),
            ("runtime", SortArg::Reductions),
        ] {
            assert_eq!(
                parse(&["-s", arg, "n"]).unwrap().top.procs.sort,
                want,
                "{arg}"
            );
        }
        assert!(parse(&["-s", "cpu", "n"]).is_err());
    }

    #[test]
    fn interval_fractions_and_once_window() {
        let secs = |a: &[&str]| parse(a).unwrap().top.session.frames.interval_secs();
        assert_eq!(secs(&["-i", "0.5", "n"]), 0.5);
        assert_eq!(secs(&["--once", "n"]), 1.0);
        assert_eq!(secs(&["-1", "-i", "3", "n"]), 3.0);
        assert!(parse(&["-i", "0", "n"]).is_err());
        assert!(parse(&["-i", "abc", "n"]).is_err());
        assert!(parse(&["-l", "0", "n"]).is_err());
    }

    #[test]
    fn negative_seconds_are_out_of_range_not_missing() {
        for args in [
            &["-i", "-1", "n"][..],
            &["--interval", "-1", "n"],
            &["--interval", "-0.5", "n"],
            &["--connect-timeout", "-3", "n"],
            &["msacc", "-d", "-1", "n"],
            &["ports", "-i", "-2", "n"],
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(
                e.contains("out of range (0.05 to 86400 seconds)"),
                "{args:?}: {e}"
            );
            assert!(!e.contains("a value is required"), "{args:?}: {e}");
        }
        // `-1` alone is still --once.
        assert!(parse(&["-1", "n"]).unwrap().top.session.frames.once);
    }

    #[test]
    fn subcommands_own_their_flags() {
        let c = parse(&["threads", "--once", "-i", "2", "-s", "vcs", "demo"]).unwrap();
        match &c.command {
            Some(Command::Threads {
                node,
                sort,
                pid,
                frames,
                ..
            }) => {
                assert_eq!(node.as_deref(), Some("demo"));
                assert_eq!(*sort, ThreadSort::Vcs);
                assert_eq!(*pid, None);
                assert!(frames.once);
                assert_eq!(frames.interval_secs(), 2.0);
            }
            other => panic!("{other:?}"),
        }
        let c = parse(&["nodes", "--format", "json"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Nodes {
                format: Format::Json,
                ..
            })
        ));
        let c = parse(&[]).unwrap();
        assert!(c.command.is_none() && c.top.session.node.is_none());
        assert!(parse(&["threads", "--pid", "5", "demo"]).is_err());
        // What a subcommand does not take, it refuses.
        for bad in [
            &["nodes", "--cookie", "x"][..],
            &["nodes", "--once"],
            &["nodes", "-i", "2"],
            &["threads", "--port", "4000"],
            &["msacc", "--once", "demo"],
            &["--format", "json", "nodes"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subcommand_help_speaks_of_its_own_rows() {
        let mut cmd = Cli::command();
        let help = |cmd: &mut clap::Command, sub: &str| {
            cmd.find_subcommand_mut(sub)
                .unwrap_or_else(|| panic!("no subcommand {sub}"))
                .render_long_help()
                .to_string()
        };
        let ports = help(&mut cmd, "ports");
        assert!(ports.contains("How many ports to show"), "{ports}");
        assert!(!ports.contains("processes to show"), "{ports}");
        let nodes = help(&mut cmd, "nodes");
        for flag in [
            "--port",
            "--cookie",
            "--cookie-file",
            "--once",
            "--interval",
        ] {
            assert!(
                !nodes.contains(flag),
                "etop nodes --help lists {flag}:\n{nodes}"
            );
        }
    }

    #[test]
    fn watch_takes_conditions_a_duration_and_two_formats() {
        let c = parse(&[
            "watch",
            "--fail-if",
            "mq>500",
            "--fail-if",
            "mq.grows>=3",
            "--for",
            "10m",
            "-i",
            "0.5",
            "--format",
            "json",
            "demo",
        ])
        .unwrap();
        let Some(Command::Watch(w)) = c.command else {
            panic!("{:?}", c.command)
        };
        assert_eq!(w.fail_if, ["mq>500", "mq.grows>=3"]);
        assert_eq!(w.duration, Some(600.0));
        assert_eq!((w.interval, w.lines), (0.5, 20));
        assert_eq!(w.format, WatchFormat::Json);
        assert_eq!(w.node.as_deref(), Some("demo"));
        assert!(parse(&["watch", "demo"]).is_err(), "--fail-if is required");
        for bad in [
            &["--format", "csv"][..],
            &["--for", "soon"],
            &["--for", "0"],
        ] {
            let mut args = vec!["watch", "--fail-if", "mq>1"];
            args.extend(bad);
            assert!(parse(&args).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("5"), Ok(5.0));
        assert_eq!(parse_duration("90s"), Ok(90.0));
        assert_eq!(parse_duration("1.5h"), Ok(5400.0));
    }

    #[test]
    fn heap_ceiling_sizes() {
        assert_eq!(parse_size("64"), Ok(64 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5gb"), Ok(3 << 29));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("lots").is_err());
        let c = parse(&["--agent-max-heap", "256", "n"]).unwrap();
        assert_eq!(c.top.session.conn.agent_max_heap, Some(256 << 20));
    }

    #[test]
    fn our_name_is_what_erl_accepts_before_the_at() {
        for ok in ["etop_ops", "a-b", "1x", "X_2"] {
            assert_eq!(
                parse(&["--name", ok, "n"])
                    .unwrap()
                    .top
                    .session
                    .conn
                    .name
                    .as_deref(),
                Some(ok)
            );
        }
        for (bad, why) in [
            ("", "the name is empty"),
            ("me@host", "give only the part before '@'"),
            ("../x", "'.' cannot appear in a node name"),
            ("a/b", "'/' cannot appear in a node name"),
            ("a b", "' ' cannot appear"),
            ("caf\u{e9}", "'\u{e9}' cannot appear"),
            ("x\x1b[2J", "'\\e' cannot appear"),
        ] {
            let e = parse(&["--name", bad, "n"]).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(parse(&["--name", &"a".repeat(201), "n"]).is_err());
        assert!(parse(&["--name", &"a".repeat(200), "n"]).is_ok());
    }

    #[test]
    fn several_nodes_and_whole_clusters() {
        let s = parse(&["a@h"]).unwrap().top.session;
        assert!(!s.is_cluster() && s.nodes.more_nodes.is_empty());
        let s = parse(&["--cluster", "a@h", "--once"]).unwrap().top.session;
        assert!(s.is_cluster() && s.nodes.cluster && !s.nodes.cluster_hidden);
        assert_eq!(s.node.as_deref(), Some("a@h"));
        let s = parse(&["--cluster-hidden", "a@h"]).unwrap().top.session;
        assert!(s.is_cluster() && s.nodes.cluster_hidden);
        let s = parse(&["a@h", "b@h", "c@h"]).unwrap().top.session;
        assert!(s.is_cluster());
        assert_eq!(s.node.as_deref(), Some("a@h"));
        assert_eq!(s.nodes.more_nodes, ["b@h", "c@h"]);
        for sub in ["ports", "ets"] {
            let c = parse(&[sub, "--cluster", "a@h"]).unwrap();
            match c.command {
                Some(Command::Ports { session, .. } | Command::Ets { session, .. }) => {
                    assert!(session.nodes.cluster)
                }
                other => panic!("{other:?}"),
            }
            let c = parse(&[sub, "a@h", "b@h"]).unwrap();
            match c.command {
                Some(Command::Ports { session, .. } | Command::Ets { session, .. }) => {
                    assert_eq!(session.nodes.more_nodes, ["b@h"])
                }
                other => panic!("{other:?}"),
            }
        }
        // A cluster comes from one entry node; a command name is not a node.
        assert!(parse(&["--cluster", "a@h", "b@h"]).is_err());
        let e = parse(&["a@h", "ports"]).unwrap_err().to_string();
        assert!(e.contains("'ports' is a command"), "{e}");
        for single in [
            &["msacc", "a@h", "b@h"][..],
            &["threads", "a", "b"],
            &["msacc", "--cluster", "a"],
        ] {
            assert!(parse(single).is_err(), "{single:?}");
        }
    }

    #[test]
    fn formats_and_flags() {
        let t = parse(&["--format", "json", "-n", "3", "-b", "-a", "n"])
            .unwrap()
            .top;
        let c = &t.session;
        assert_eq!(c.out.format, Format::Json);
        assert_eq!(c.frames.iterations, Some(3));
        assert!(c.frames.batch && t.procs.accumulate);
        assert!(parse(&["--format", "xml", "n"]).is_err());
    }
}
