//! TODO: being written.

use crate::*;

pub fn verify(_: &Inbound, _: &SourceSettings, _: &dyn KeyStore) -> Result<Outcome, Refusal> {
    Err(Refusal::Unsupported("not implemented yet".into()))
}

pub fn sign(_: &SignRequest) -> Result<SignedRequest, Refusal> {
    Err(Refusal::Unsupported("not implemented yet".into()))
}

pub fn normalize(_: &NativeEvent) -> Normalized {
    Normalized::default()
}
