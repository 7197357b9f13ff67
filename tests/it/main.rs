//! etop's integration tests, one binary, a module per subject. Each test
//! starts the real `erl` nodes it needs (with random names and cookies) and
//! runs the real etop binary in a hermetic environment (`util`).

mod util;

mod agent; // the agent's top-N selection against a full sort
mod attach; // reaching a node: EPMD, names, ports, sessions; failing clearly
mod cluster; // several nodes in one view: merged tables, the strip, nodes coming and going
mod cookies; // where the cookie comes from; cookie files refused at once
mod discovery; // the BEAMs on this host (`etop nodes`)
mod ets; // `etop ets`
mod golden; // rendered frames of recorded samples, in every format
mod hostile_peers; // peers that send what they should not
mod hostile_text; // names that are escape sequences
mod msacc; // `etop msacc`, and its flag always put back
mod other_users; // an ordinary user and nodes of other users
mod ports; // `etop ports`
mod procs; // the process table: sorts, formats, headers
mod releases; // release shells, releases with their own erts, private EPMDs
mod restarts; // a node that restarts under etop's eyes
mod safety; // the node is left as it was: long runs, the heap ceiling
mod ship; // the static binary in an empty root, make install, completions, NO_COLOR
mod terminal; // repaint, keys, signals, stale marks, restore
mod threads; // `etop threads`
mod tls; // TLS distribution: certificates, the node's own options, each refusal
mod top; // the interactive top: keys, filter, detail, warnings
mod usage; // --help, --version, the man page, usage errors
mod watch; // `etop watch`: the load-test gate and its exit codes
mod wire_props; // the wire parsers against thousands of mutated inputs
