//! `floodwall bench ingest` (filled in once the encoders land).
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct IngestArgs {}
#[derive(Args, Debug)]
pub struct SendArgs {}

pub fn ingest(_args: IngestArgs) -> Result<()> {
    Ok(())
}
pub fn send(_args: SendArgs) -> Result<()> {
    Ok(())
}
