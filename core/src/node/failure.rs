//! Why a call the node asked for (a push, probe, page fetch, copy, announcement or Codios
//! question) ended without the answer it wanted, typed so the node can tell a timeout from a
//! refusal and every shell reports the same cause the same way.

use core::fmt;

/// Why a call failed. Shells build it; [`Call::failed`](super::Call::failed) carries it into
/// the node's input. `Display` is the operator's one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No whole answer within the call's timeout.
    TimedOut,
    /// No connection could be made (refused, unreachable, a name that does not resolve, a
    /// certificate the CA did not sign), in the innermost error's words.
    Unreachable(String),
    /// The connection broke before a whole answer, or what came back was not HTTP.
    Broken(String),
    /// The far side answered `code`: `call` names the call, `message` its words (an agent's
    /// JSON error as `code: message`), possibly empty.
    Status {
        /// The call, as an operator knows it ("probe", "export", "Codios").
        call: &'static str,
        /// The HTTP status code.
        code: u16,
        /// What the answer said.
        message: String,
    },
    /// The far side refused in its own words (a new node that will not join as asked).
    Refused(String),
    /// The answer could not be read as `what`.
    Garbled {
        /// What was expected ("probe answer", "export page", "Codios answer").
        what: &'static str,
        /// Why it could not be read.
        why: String,
    },
    /// The answer was longer than the call allows.
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
    /// An answer, but not one this call can use (a gap to a copy, a membership update to a
    /// probe, a page block the chain refuses).
    Unfit(String),
    /// This node's own storage failed, so what the call brought cannot be kept.
    LocalStorage(String),
    /// The shell could not make the call (no Codios configured, a bad URL, its own block
    /// unreadable, the call's task failed).
    NotSent(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TimedOut => f.write_str("timed out"),
            Failure::Unreachable(why) => write!(f, "connection failed: {why}"),
            Failure::Status {
                call,
                code,
                message,
            } if message.is_empty() => {
                write!(f, "{call} answered {code}")
            }
            Failure::Status {
                call,
                code,
                message,
            } => write!(f, "{call} answered {code}: {message}"),
            Failure::Garbled { what, why } => write!(f, "garbled {what}: {why}"),
            Failure::TooLarge { limit } => write!(f, "answer over {limit} bytes"),
            Failure::LocalStorage(why) => write!(f, "local storage failed: {why}"),
            Failure::Broken(why)
            | Failure::Refused(why)
            | Failure::Unfit(why)
            | Failure::NotSent(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_reads_as_one_line_naming_its_cause() {
        let cases = [
            (Failure::TimedOut, "timed out"),
            (
                Failure::Unreachable("invalid peer certificate: UnknownIssuer".into()),
                "connection failed: invalid peer certificate: UnknownIssuer",
            ),
            (
                Failure::Status {
                    call: "export",
                    code: 500,
                    message: "storage_failed: disk".into(),
                },
                "export answered 500: storage_failed: disk",
            ),
            (
                Failure::Status {
                    call: "Codios",
                    code: 503,
                    message: String::new(),
                },
                "Codios answered 503",
            ),
            (
                Failure::Garbled {
                    what: "probe answer",
                    why: "EOF".into(),
                },
                "garbled probe answer: EOF",
            ),
            (
                Failure::TooLarge { limit: 65_536 },
                "answer over 65536 bytes",
            ),
            (Failure::Refused("no".into()), "no"),
        ];
        for (failure, line) in cases {
            assert_eq!(failure.to_string(), line);
        }
    }
}
