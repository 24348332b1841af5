//! Fault-class coverage: which fault classes a seed drew, and how many faults of each kind
//! fired; summed over a hunt into a [`Tally`] that prints as a compact table.
//!
//! A class drawn on by many seeds that never fires, or a class no seed draws, is a hole in
//! the search that passing seeds would not show.

use core::fmt;

use crate::config::Config;
use crate::overrides::Class;

const N: usize = Class::ALL.len();

/// Classes that are a setting, not events: drawn or not, nothing "fires".
fn is_setting(c: Class) -> bool {
    matches!(
        c,
        Class::Drift
            | Class::WallOffset
            | Class::RandomOrigin
            | Class::Codios
            | Class::RestartAll
            | Class::LeaveDown
    )
}

/// One seed's coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    drawn: [bool; N],
    fired: [u64; N],
}

impl Coverage {
    /// The classes `cfg` has on, none fired yet.
    pub fn new(cfg: &Config) -> Self {
        let mut drawn = [false; N];
        for c in Class::ALL {
            drawn[c as usize] = c.is_on(cfg);
        }
        Coverage {
            drawn,
            fired: [0; N],
        }
    }

    /// A fault of `class` fired.
    pub(crate) fn fire(&mut self, class: Class) {
        self.add(class, 1);
    }

    /// `n` faults of `class` fired.
    pub(crate) fn add(&mut self, class: Class, n: u64) {
        self.fired[class as usize] += n;
    }

    /// Whether the seed drew `class` on.
    pub fn drawn(&self, class: Class) -> bool {
        self.drawn[class as usize]
    }

    /// How many faults of `class` fired.
    pub fn fired(&self, class: Class) -> u64 {
        self.fired[class as usize]
    }
}

/// Coverage summed over seeds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Seeds counted.
    pub seeds: u64,
    drew: [u64; N],
    fired: [u64; N],
}

impl Tally {
    /// Counts one seed.
    pub fn add(&mut self, c: &Coverage) {
        self.seeds += 1;
        for i in 0..N {
            self.drew[i] += u64::from(c.drawn[i]);
            self.fired[i] += c.fired[i];
        }
    }

    /// Seeds that drew `class` on.
    pub fn drew(&self, class: Class) -> u64 {
        self.drew[class as usize]
    }

    /// Faults of `class` fired across all seeds.
    pub fn fired(&self, class: Class) -> u64 {
        self.fired[class as usize]
    }
}

impl fmt::Display for Tally {
    /// Two fault classes a line: name, seeds that drew it (and their share), faults fired
    /// (`-` for a setting, which does not fire).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<String> = Class::ALL
            .into_iter()
            .filter(|c| c.is_fault())
            .map(|c| {
                let drew = self.drew(c);
                let share = 100.0 * drew as f64 / self.seeds.max(1) as f64;
                let fired = if is_setting(c) {
                    "-".to_string()
                } else {
                    self.fired(c).to_string()
                };
                format!("{:<16}{drew:>8} {share:>3.0}%{fired:>10}", c.name())
            })
            .collect();
        let head = format!(
            "{:<16}{:>8} {:>4}{:>10}",
            "fault class", "seeds", "", "fired"
        );
        write!(
            f,
            "coverage over {} seeds (seeds that drew each class, faults fired):\n{head}  |  {head}",
            self.seeds
        )?;
        for pair in rows.chunks(2) {
            write!(f, "\n{}", pair.join("  |  "))?;
        }
        Ok(())
    }
}
