//! The core crate's one error type.

/// What can go wrong in pure domain code.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A field of a request or record does not hold a valid value.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A payload does not match its event type's JSON schema.
    #[error("payload does not match the schema of {event_type}: {message}")]
    Schema { event_type: String, message: String },
    /// A secret could not be decrypted: wrong master key or a damaged value.
    #[error("secret cannot be decrypted (wrong master key or damaged value)")]
    Decrypt,
}

impl CoreError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
