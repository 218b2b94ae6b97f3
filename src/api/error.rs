//! The one error type of the API: a stable [`ErrorCode`] that the CLI, the
//! control socket and the app branch on (never on the message), and a message
//! for the person that says what to do.

use serde::{Deserialize, Serialize};

use crate::oauth::agents::RevokeError;
use crate::oauth::consent::DecisionError;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Nothing matches (no such pending item, agent, grant or server).
    NotFound,
    /// The request itself is wrong (a bad choice of tools, a malformed id).
    BadRequest,
    /// A name matches more than one agent or request.
    Ambiguous,
    /// What the decision names is not what was shown (it changed, or it was
    /// never listed): look again, then decide.
    Conflict,
    /// Allow came before the consent window had been shown for a second.
    TooSoon,
    /// Gatehouse failed (its store, a file): not the caller's fault.
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS, thiserror::Error)]
#[error("{message}")]
#[ts(rename = "ApiError")]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::NotFound, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::BadRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::Internal, message)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        tracing::error!(error = %e, "store failure");
        Error::internal(e.to_string())
    }
}

impl From<DecisionError> for Error {
    fn from(e: DecisionError) -> Error {
        match e {
            DecisionError::NotPending(_) => Error::not_found(e.to_string()),
            DecisionError::BadChoice(_) => Error::bad_request(e.to_string()),
            DecisionError::Store(e) => e.into(),
        }
    }
}

impl From<RevokeError> for Error {
    fn from(e: RevokeError) -> Error {
        match e {
            RevokeError::NoSuchAgent(_) | RevokeError::NoSuchGrant(_) => {
                Error::not_found(e.to_string())
            }
            RevokeError::Ambiguous(..) => Error::new(ErrorCode::Ambiguous, e.to_string()),
            RevokeError::Store(e) => e.into(),
        }
    }
}
