//! What a warning says: its kind, whom it is about and the observations
//! behind it, as the table, the footer and JSON show it. `warn` computes
//! them from the frames.

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A mailbox longer in each of the last frames.
    Mailbox,
    /// A process whose memory grew in each of the last frames.
    Memory,
    /// More runnable processes than schedulers, frame after frame.
    RunQueue,
    /// A count above 80% of its limit.
    Limit,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Warning {
    pub kind: Kind,
    /// The process it is about, if any.
    pub pid: Option<String>,
    /// The process's name, or the count's (`processes`, `atoms`, …).
    pub name: Option<String>,
    /// The observations it is based on, oldest first; for a limit, the
    /// count and the limit.
    pub values: Vec<u64>,
}

impl Warning {
    /// One line for a terminal: `<0.91.0> worker: mailbox 1020 → 4310 over 3 frames`.
    pub fn line(&self) -> String {
        let (first, last) = (
            self.values.first().copied().unwrap_or(0),
            self.values.last().copied().unwrap_or(0),
        );
        let who = match (&self.pid, &self.name) {
            (Some(p), Some(n)) if !n.is_empty() => format!("{p} {n}: "),
            (Some(p), _) => format!("{p}: "),
            _ => String::new(),
        };
        let frames = self.values.len().saturating_sub(1);
        match self.kind {
            Kind::Mailbox => format!(
                "{who}mailbox {} → {} over {frames} frames",
                group(first),
                group(last)
            ),
            Kind::Memory => format!(
                "{who}memory {} → {} over {frames} frames",
                crate::text::human_bytes(first),
                crate::text::human_bytes(last)
            ),
            Kind::RunQueue => format!(
                "run queue {} over {} frames, more than the {} schedulers",
                self.values[..self.values.len().saturating_sub(1)]
                    .iter()
                    .map(|v| group(*v))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.values.len().saturating_sub(1),
                last
            ),
            Kind::Limit => {
                let name = self.name.as_deref().unwrap_or("");
                // Since OTP 20 the number of tables is bounded by memory;
                // `ets_limit` is kept as a guide only.
                let advisory = if name == "ets tables" {
                    ", an advisory limit"
                } else {
                    ""
                };
                format!(
                    "{name} {} of limit {} ({:.0}%{advisory})",
                    group(first),
                    group(last),
                    if last == 0 {
                        0.0
                    } else {
                        first as f64 / last as f64 * 100.0
                    }
                )
            }
        }
    }
}

/// `4310` → `4,310`.
pub fn group(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
